package server

import (
	"bytes"
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
// needs, so this keeps the raw values (slices of the payload).
type clientMessage struct {
	fields []rawField
	orig   json.RawMessage // the whole message, echoed in errors
}

type rawField struct {
	key string
	val json.RawMessage
}

// decodeClientMessage parses one WebSocket payload. Valid objects whose
// keys have no escapes are split by hand (after json.Valid); anything else
// goes through encoding/json, which also words the errors.
// FuzzDecodeClientMessage checks both paths agree.
func decodeClientMessage(b []byte) (*clientMessage, error) {
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("%w: not valid UTF-8", ErrMalformedMessage)
	}
	if json.Valid(b) {
		if fs, ok := splitObject(b); ok {
			return &clientMessage{fields: fs, orig: json.RawMessage(b)}, nil
		}
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
	fs := make([]rawField, 0, len(f))
	for k, v := range f {
		fs = append(fs, rawField{k, v})
	}
	return &clientMessage{fields: fs, orig: json.RawMessage(b)}, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// splitObject splits valid JSON (json.Valid) that is an object into its
// keys and raw values. ok is false when b is not an object or a key has an
// escape (the caller falls back to encoding/json).
func splitObject(b []byte) (fs []rawField, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	fs = make([]rawField, 0, 8)
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return fs, true
	}
	for i < len(b) {
		if b[i] != '"' {
			return nil, false
		}
		ks := i + 1
		ke := ks
		for ke < len(b) && b[ke] != '"' {
			if b[ke] == '\\' {
				return nil, false
			}
			ke++
		}
		i = skipSpace(b, ke+1)
		if i >= len(b) || b[i] != ':' {
			return nil, false
		}
		vs := skipSpace(b, i+1)
		ve := skipValue(b, vs)
		if ve <= vs {
			return nil, false
		}
		fs = append(fs, rawField{string(b[ks:ke]), json.RawMessage(b[vs:ve:ve])})
		i = skipSpace(b, ve)
		if i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return fs, true
		default:
			return nil, false
		}
	}
	return nil, false
}

// skipValue returns the end of the valid JSON value starting at i.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // number, true, false, null
		for i < len(b) && !isSpace(b[i]) && b[i] != ',' && b[i] != '}' && b[i] != ']' {
			i++
		}
		return i
	}
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	i++
	for i < len(b) {
		switch b[i] {
		case '\\':
			i += 2
		case '"':
			return i + 1
		default:
			i++
		}
	}
	return i
}

// get returns the value of key (the last one if repeated, like
// encoding/json into a map).
func (m *clientMessage) get(key string) (json.RawMessage, bool) {
	for i := len(m.fields) - 1; i >= 0; i-- {
		if m.fields[i].key == key {
			return m.fields[i].val, true
		}
	}
	return nil, false
}

func (m *clientMessage) has(key string) bool {
	_, ok := m.get(key)
	return ok
}

// raw returns the JSON value of key, or JSON null when absent.
func (m *clientMessage) raw(key string) json.RawMessage {
	if v, ok := m.get(key); ok {
		return v
	}
	return json.RawMessage("null")
}

// unquote decodes a JSON string value (v[0] == '"').
func unquote(v json.RawMessage) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(v, '\\') < 0 && v[len(v)-1] == '"' {
		return string(v[1 : len(v)-1]), true // valid JSON: no control characters
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// str returns key as a string. present reports whether the key exists; err
// is set when it exists but is not a JSON string.
func (m *clientMessage) str(key string) (s string, present bool, err error) {
	v, ok := m.get(key)
	if !ok {
		return "", false, nil
	}
	s, ok = unquote(v)
	if !ok {
		return "", true, fmt.Errorf("'%s' must be a string", key)
	}
	return s, true, nil
}

// optStr is str for optional keys where JSON null means absent.
func (m *clientMessage) optStr(key string) (s string, present bool, err error) {
	v, ok := m.get(key)
	if !ok || string(v) == "null" {
		return "", false, nil
	}
	return m.str(key)
}

// typ returns the message type; ok is false when "type" is missing. A type
// that is not a string is returned as its JSON text, which matches no
// command (the reference compares it with strings).
func (m *clientMessage) typ() (t string, ok bool) {
	v, ok := m.get("type")
	if !ok {
		return "", false
	}
	s, ok := unquote(v)
	if !ok {
		return "\x00" + string(v), true
	}
	return s, true
}

// clientVersion decodes bind's optional client_version ([impl, version]);
// anything else is recorded as unknown.
func (m *clientMessage) clientVersion() (impl, version *string) {
	v, ok := m.get("client_version")
	if !ok {
		return nil, nil
	}
	var cv []*string
	if json.Unmarshal(v, &cv) != nil || len(cv) < 2 {
		return nil, nil
	}
	return cv[0], cv[1]
}
