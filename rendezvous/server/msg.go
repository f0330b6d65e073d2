package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// ErrMalformedMessage is the error class for a client frame that is not a
// UTF-8 JSON object. The reference server drops such connections (its JSON
// decoding raises outside its error handling); this server sends an error
// message and then closes the WebSocket with status 1007.
var ErrMalformedMessage = errors.New("malformed client message")

// clientMessage is a decoded client→server message. The reference server
// treats messages as dictionaries and only checks the keys each command
// needs, so this keeps the raw values.
type clientMessage struct {
	fields map[string]json.RawMessage
	orig   json.RawMessage // the whole message, echoed in errors
}

// decodeClientMessage parses one WebSocket payload.
func decodeClientMessage(b []byte) (*clientMessage, error) {
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("%w: not valid UTF-8", ErrMalformedMessage)
	}
	var f map[string]json.RawMessage
	if err := json.Unmarshal(b, &f); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return nil, fmt.Errorf("%w: not a JSON object", ErrMalformedMessage)
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformedMessage, err)
	}
	if f == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformedMessage)
	}
	return &clientMessage{fields: f, orig: json.RawMessage(b)}, nil
}

func (m *clientMessage) has(key string) bool {
	_, ok := m.fields[key]
	return ok
}

// raw returns the JSON value of key, or JSON null when absent.
func (m *clientMessage) raw(key string) json.RawMessage {
	if v, ok := m.fields[key]; ok {
		return v
	}
	return json.RawMessage("null")
}

// str returns key as a string. present reports whether the key exists; err
// is set when it exists but is not a JSON string.
func (m *clientMessage) str(key string) (s string, present bool, err error) {
	v, ok := m.fields[key]
	if !ok {
		return "", false, nil
	}
	if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return "", true, fmt.Errorf("'%s' must be a string", key)
	}
	return s, true, nil
}

// optStr is str for optional keys where JSON null means absent.
func (m *clientMessage) optStr(key string) (s string, present bool, err error) {
	v, ok := m.fields[key]
	if !ok || string(v) == "null" {
		return "", false, nil
	}
	return m.str(key)
}

// typ returns the message type; ok is false when "type" is missing. A type
// that is not a string is returned as its JSON text, which matches no
// command (the reference compares it with strings).
func (m *clientMessage) typ() (t string, ok bool) {
	v, ok := m.fields["type"]
	if !ok {
		return "", false
	}
	var s string
	if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return "\x00" + string(v), true
	}
	return s, true
}

// clientVersion decodes bind's optional client_version ([impl, version]);
// anything else is recorded as unknown.
func (m *clientMessage) clientVersion() (impl, version *string) {
	v, ok := m.fields["client_version"]
	if !ok {
		return nil, nil
	}
	var cv []*string
	if json.Unmarshal(v, &cv) != nil || len(cv) < 2 {
		return nil, nil
	}
	return cv[0], cv[1]
}
