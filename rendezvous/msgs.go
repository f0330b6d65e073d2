// Package rendezvous speaks the magic-wormhole mailbox ("rendezvous") server
// protocol: the wire messages (this file), hashcash permission stamps, and a
// reconnecting client.
//
// Wire messages are JSON objects sent as text WebSocket frames. Every message
// has a "type"; clients add a 4-hex-digit "id", servers add "server_tx".
// Message bodies are hex strings on the wire and []byte here.
//
// The Client follows the Python client (magic-wormhole 0.12): the first
// connection failing is fatal (ErrServerConnection); afterwards it
// reconnects forever with the same side and replays what the server needs:
// bind, an unanswered allocate, a claim not yet answered, a pending release,
// open plus every add whose echo it has not seen (or, once closing, only the
// close), and a pending list. Peer messages are de-duplicated by phase.
package rendezvous

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Sentinel decode errors. A *DecodeError wraps exactly one of them, so
// callers can test with errors.Is.
var (
	// ErrMalformedMessage: not valid UTF-8 JSON, or not a JSON object.
	ErrMalformedMessage = errors.New("rendezvous: malformed message")
	// ErrMissingType: the object has no "type" key.
	ErrMissingType = errors.New("rendezvous: message has no type")
	// ErrUnknownType: "type" names no message known in this direction.
	ErrUnknownType = errors.New("rendezvous: unknown message type")
	// ErrMissingField: a required key is absent.
	ErrMissingField = errors.New("rendezvous: missing field")
	// ErrBadField: a key has the wrong JSON type or an invalid value
	// (for example a body that is not hex).
	ErrBadField = errors.New("rendezvous: bad field")
)

// DecodeError describes why a wire message could not be decoded.
type DecodeError struct {
	Type  string // message type, if it was readable
	ID    string // client "id", if it was readable (servers ack it even on errors)
	Field string // offending key, if any
	Kind  error  // one of the Err* sentinels above
	Err   error  // underlying cause, may be nil
}

func (e *DecodeError) Error() string {
	s := e.Kind.Error()
	if e.Type != "" {
		s += fmt.Sprintf(" (type %q)", e.Type)
	}
	if e.Field != "" {
		s += fmt.Sprintf(" field %q", e.Field)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the sentinel kind and the cause.
func (e *DecodeError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// ---------------------------------------------------------------------------
// Client -> server messages. Each type's MarshalJSON adds the "type" key.

// BindMsg binds the connection to an application and a side. Required first
// (after an optional SubmitPermissionsMsg).
type BindMsg struct {
	ID            string   `json:"id,omitempty"`
	AppID         string   `json:"appid"`
	Side          string   `json:"side"`
	ClientVersion []string `json:"client_version,omitempty"` // [implementation, version]
}

// ListMsg asks for the nameplates in use ("nameplates" reply).
type ListMsg struct {
	ID string `json:"id,omitempty"`
}

// AllocateMsg asks the server to pick and claim a nameplate ("allocated").
type AllocateMsg struct {
	ID string `json:"id,omitempty"`
}

// ClaimMsg claims a nameplate ("claimed" reply with the mailbox id).
type ClaimMsg struct {
	ID        string `json:"id,omitempty"`
	Nameplate string `json:"nameplate"`
}

// ReleaseMsg releases a nameplate ("released"). An empty Nameplate is
// omitted on the wire (the server then uses the claimed one).
type ReleaseMsg struct {
	ID        string `json:"id,omitempty"`
	Nameplate string `json:"nameplate,omitempty"`
}

// OpenMsg opens (subscribes to) a mailbox; the server replays its messages.
type OpenMsg struct {
	ID      string `json:"id,omitempty"`
	Mailbox string `json:"mailbox"`
}

// AddMsg adds a message to the open mailbox. Body is hex on the wire.
type AddMsg struct {
	ID    string
	Phase string
	Body  []byte
}

// CloseMsg closes the mailbox with a mood ("closed"). Empty fields are
// omitted on the wire.
type CloseMsg struct {
	ID      string `json:"id,omitempty"`
	Mailbox string `json:"mailbox,omitempty"`
	Mood    string `json:"mood,omitempty"`
}

// PingMsg asks for a "pong" echoing Ping. Allowed before bind.
type PingMsg struct {
	ID   string `json:"id,omitempty"`
	Ping int64  `json:"ping"`
}

// SubmitPermissionsMsg answers welcome.permission-required (spec 1.6). The
// decoder also accepts the Rust client's singular "submit-permission".
type SubmitPermissionsMsg struct {
	ID     string `json:"id,omitempty"`
	Method string `json:"method"`
	Stamp  string `json:"stamp,omitempty"`
}

// ---------------------------------------------------------------------------
// Server -> client messages. ServerTX is Unix seconds at send time.

// WelcomeMsg is the first message on every connection.
type WelcomeMsg struct {
	Welcome  Welcome `json:"welcome"`
	ServerTX float64 `json:"server_tx"`
}

// AckMsg acknowledges a client message; ID is copied from it ("" for null).
type AckMsg struct {
	ID       string  `json:"id"`
	ServerTX float64 `json:"server_tx"`
}

// NameplateInfo is one entry of a "nameplates" reply.
type NameplateInfo struct {
	ID string `json:"id"`
}

// NameplatesMsg answers "list".
type NameplatesMsg struct {
	Nameplates []NameplateInfo `json:"nameplates"`
	ServerTX   float64         `json:"server_tx"`
}

// AllocatedMsg answers "allocate".
type AllocatedMsg struct {
	Nameplate string  `json:"nameplate"`
	ServerTX  float64 `json:"server_tx"`
}

// ClaimedMsg answers "claim".
type ClaimedMsg struct {
	Mailbox  string  `json:"mailbox"`
	ServerTX float64 `json:"server_tx"`
}

// ReleasedMsg answers "release".
type ReleasedMsg struct {
	ServerTX float64 `json:"server_tx"`
}

// MessageMsg carries one mailbox message (replayed on open, or live,
// including the echo of our own adds). Body is hex on the wire.
type MessageMsg struct {
	Side     string
	Phase    string
	Body     []byte
	ServerRX float64
	ID       string // the add's id ("" if it had none)
	ServerTX float64
}

// ClosedMsg answers "close".
type ClosedMsg struct {
	ServerTX float64 `json:"server_tx"`
}

// PongMsg answers "ping".
type PongMsg struct {
	Pong     int64   `json:"pong"`
	ServerTX float64 `json:"server_tx"`
}

// ErrorMsg reports a rejected client message. Orig is the message as the
// server decoded it.
type ErrorMsg struct {
	Error    string          `json:"error"`
	Orig     json.RawMessage `json:"orig,omitempty"`
	ServerTX float64         `json:"server_tx"`
}

// Welcome is the content of the server's welcome message (spec 1.5).
// Raw holds every key as received (including unknown ones such as
// "your-address"); when marshalling, the named fields override Raw.
type Welcome struct {
	MOTD               string
	CurrentCLIVersion  string
	Error              string
	PermissionRequired map[string]json.RawMessage
	Raw                map[string]json.RawMessage
}

// ---------------------------------------------------------------------------
// Message type names.

// MsgType returns the wire "type" of each message.
func (BindMsg) MsgType() string              { return "bind" }
func (ListMsg) MsgType() string              { return "list" }
func (AllocateMsg) MsgType() string          { return "allocate" }
func (ClaimMsg) MsgType() string             { return "claim" }
func (ReleaseMsg) MsgType() string           { return "release" }
func (OpenMsg) MsgType() string              { return "open" }
func (AddMsg) MsgType() string               { return "add" }
func (CloseMsg) MsgType() string             { return "close" }
func (PingMsg) MsgType() string              { return "ping" }
func (SubmitPermissionsMsg) MsgType() string { return "submit-permissions" }
func (WelcomeMsg) MsgType() string           { return "welcome" }
func (AckMsg) MsgType() string               { return "ack" }
func (NameplatesMsg) MsgType() string        { return "nameplates" }
func (AllocatedMsg) MsgType() string         { return "allocated" }
func (ClaimedMsg) MsgType() string           { return "claimed" }
func (ReleasedMsg) MsgType() string          { return "released" }
func (MessageMsg) MsgType() string           { return "message" }
func (ClosedMsg) MsgType() string            { return "closed" }
func (PongMsg) MsgType() string              { return "pong" }
func (ErrorMsg) MsgType() string             { return "error" }

// ---------------------------------------------------------------------------
// Encoding. Every message marshals with its "type" key first.

// withType marshals v (a struct without a type key) and prepends "type".
func withType(typ string, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(b)+len(typ)+12)
	out = append(out, `{"type":`...)
	out = strconv.AppendQuote(out, typ)
	if len(b) > 2 { // not "{}"
		out = append(out, ',')
		out = append(out, b[1:]...)
	} else {
		out = append(out, '}')
	}
	return out, nil
}

func (m BindMsg) MarshalJSON() ([]byte, error) {
	type plain BindMsg
	return withType(m.MsgType(), plain(m))
}
func (m ListMsg) MarshalJSON() ([]byte, error) {
	type plain ListMsg
	return withType(m.MsgType(), plain(m))
}
func (m AllocateMsg) MarshalJSON() ([]byte, error) {
	type plain AllocateMsg
	return withType(m.MsgType(), plain(m))
}
func (m ClaimMsg) MarshalJSON() ([]byte, error) {
	type plain ClaimMsg
	return withType(m.MsgType(), plain(m))
}
func (m ReleaseMsg) MarshalJSON() ([]byte, error) {
	type plain ReleaseMsg
	return withType(m.MsgType(), plain(m))
}
func (m OpenMsg) MarshalJSON() ([]byte, error) {
	type plain OpenMsg
	return withType(m.MsgType(), plain(m))
}

// MarshalJSON writes body as lowercase hex. It is hand-written because add
// is the hot path.
func (m AddMsg) MarshalJSON() ([]byte, error) {
	out := make([]byte, 0, 48+len(m.ID)+len(m.Phase)*2+hex.EncodedLen(len(m.Body)))
	out = append(out, `{"type":"add"`...)
	if m.ID != "" {
		out = append(out, `,"id":`...)
		out = appendJSONString(out, m.ID)
	}
	out = append(out, `,"phase":`...)
	out = appendJSONString(out, m.Phase)
	out = append(out, `,"body":"`...)
	out = hex.AppendEncode(out, m.Body)
	out = append(out, `"}`...)
	return out, nil
}
func (m CloseMsg) MarshalJSON() ([]byte, error) {
	type plain CloseMsg
	return withType(m.MsgType(), plain(m))
}
func (m PingMsg) MarshalJSON() ([]byte, error) {
	type plain PingMsg
	return withType(m.MsgType(), plain(m))
}
func (m SubmitPermissionsMsg) MarshalJSON() ([]byte, error) {
	type plain SubmitPermissionsMsg
	return withType(m.MsgType(), plain(m))
}
func (m WelcomeMsg) MarshalJSON() ([]byte, error) {
	type plain WelcomeMsg
	return withType(m.MsgType(), plain(m))
}
func (m AckMsg) MarshalJSON() ([]byte, error) {
	// Python servers send "id": null when the client gave none.
	var id any
	if m.ID != "" {
		id = m.ID
	}
	return withType(m.MsgType(), struct {
		ID       any     `json:"id"`
		ServerTX float64 `json:"server_tx"`
	}{id, m.ServerTX})
}
func (m NameplatesMsg) MarshalJSON() ([]byte, error) {
	type plain NameplatesMsg
	if m.Nameplates == nil {
		m.Nameplates = []NameplateInfo{}
	}
	return withType(m.MsgType(), plain(m))
}
func (m AllocatedMsg) MarshalJSON() ([]byte, error) {
	type plain AllocatedMsg
	return withType(m.MsgType(), plain(m))
}
func (m ClaimedMsg) MarshalJSON() ([]byte, error) {
	type plain ClaimedMsg
	return withType(m.MsgType(), plain(m))
}
func (m ReleasedMsg) MarshalJSON() ([]byte, error) {
	type plain ReleasedMsg
	return withType(m.MsgType(), plain(m))
}
func (m MessageMsg) MarshalJSON() ([]byte, error) {
	var id any
	if m.ID != "" {
		id = m.ID
	}
	return withType(m.MsgType(), struct {
		Side     string  `json:"side"`
		Phase    string  `json:"phase"`
		Body     string  `json:"body"`
		ServerRX float64 `json:"server_rx"`
		ID       any     `json:"id"`
		ServerTX float64 `json:"server_tx"`
	}{m.Side, m.Phase, hex.EncodeToString(m.Body), m.ServerRX, id, m.ServerTX})
}
func (m ClosedMsg) MarshalJSON() ([]byte, error) {
	type plain ClosedMsg
	return withType(m.MsgType(), plain(m))
}
func (m PongMsg) MarshalJSON() ([]byte, error) {
	type plain PongMsg
	return withType(m.MsgType(), plain(m))
}
func (m ErrorMsg) MarshalJSON() ([]byte, error) {
	type plain ErrorMsg
	return withType(m.MsgType(), plain(m))
}

// MarshalJSON writes Raw with the named fields laid over it.
func (w Welcome) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(w.Raw)+4)
	for k, v := range w.Raw {
		m[k] = v
	}
	if w.MOTD != "" {
		m["motd"] = w.MOTD
	}
	if w.CurrentCLIVersion != "" {
		m["current_cli_version"] = w.CurrentCLIVersion
	}
	if w.Error != "" {
		m["error"] = w.Error
	}
	if w.PermissionRequired != nil {
		m["permission-required"] = w.PermissionRequired
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads a welcome dict. Known keys must have the right types.
func (w *Welcome) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if raw == nil {
		return errors.New("welcome is null")
	}
	*w = Welcome{Raw: raw}
	for _, f := range []struct {
		key string
		dst *string
	}{{"motd", &w.MOTD}, {"current_cli_version", &w.CurrentCLIVersion}, {"error", &w.Error}} {
		if v, ok := raw[f.key]; ok {
			if err := json.Unmarshal(v, f.dst); err != nil {
				return fmt.Errorf("welcome %q: %w", f.key, err)
			}
		}
	}
	if v, ok := raw["permission-required"]; ok {
		if err := json.Unmarshal(v, &w.PermissionRequired); err != nil {
			return fmt.Errorf("welcome \"permission-required\": %w", err)
		}
	}
	return nil
}

// appendJSONString appends s as a JSON string (with encoding/json escaping).
func appendJSONString(dst []byte, s string) []byte {
	simple := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			simple = false
			break
		}
	}
	if simple {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	b, _ := json.Marshal(s) // strings always marshal
	return append(dst, b...)
}

// ---------------------------------------------------------------------------
// Decoding.

// fields is a decoded JSON object, with helpers that record the first error.
type fields struct {
	typ, id string
	m       map[string]json.RawMessage
}

func (f *fields) err(field string, kind, cause error) error {
	return &DecodeError{Type: f.typ, ID: f.id, Field: field, Kind: kind, Err: cause}
}

func isNull(v json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(v), []byte("null")) }

// str reads a string field. required: absent (or null) is ErrMissingField.
func (f *fields) str(key string, required bool) (string, error) {
	v, ok := f.m[key]
	if !ok || isNull(v) {
		if required {
			return "", f.err(key, ErrMissingField, nil)
		}
		return "", nil
	}
	if raw, ok := simpleString(v); ok {
		return string(raw), nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", f.err(key, ErrBadField, err)
	}
	return s, nil
}

// simpleString returns the contents of a JSON string literal that needs no
// unescaping (the common case: ids, phases, hex bodies). The outer
// json.Unmarshal has already validated the literal.
func simpleString(v json.RawMessage) ([]byte, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return nil, false
	}
	in := v[1 : len(v)-1]
	for _, c := range in {
		if c == '\\' || c == '"' || c < 0x20 || c >= 0x80 {
			return nil, false
		}
	}
	return in, true
}

// loose reads an id-like field leniently: strings as-is, null/absent as "",
// anything else as its JSON text. Python servers copy ids without checking.
func (f *fields) loose(key string) string {
	v, ok := f.m[key]
	if !ok || isNull(v) {
		return ""
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(bytes.TrimSpace(v))
}

func (f *fields) num(key string, required bool) (float64, error) {
	v, ok := f.m[key]
	if !ok || isNull(v) {
		if required {
			return 0, f.err(key, ErrMissingField, nil)
		}
		return 0, nil
	}
	var x float64
	if err := json.Unmarshal(v, &x); err != nil {
		return 0, f.err(key, ErrBadField, err)
	}
	return x, nil
}

func (f *fields) int(key string) (int64, error) {
	v, ok := f.m[key]
	if !ok {
		return 0, f.err(key, ErrMissingField, nil)
	}
	var x int64
	if err := json.Unmarshal(v, &x); err != nil {
		return 0, f.err(key, ErrBadField, err)
	}
	return x, nil
}

func (f *fields) hexBody(key string) ([]byte, error) {
	if raw, ok := simpleString(f.m[key]); ok {
		b := make([]byte, hex.DecodedLen(len(raw)))
		if _, err := hex.Decode(b, raw); err != nil {
			return nil, f.err(key, ErrBadField, err)
		}
		return b, nil
	}
	s, err := f.str(key, true)
	if err != nil {
		return nil, err
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, f.err(key, ErrBadField, err)
	}
	return b, nil
}

// envelope parses the object and its "type".
func envelope(data []byte) (*fields, error) {
	if !utf8.Valid(data) {
		return nil, &DecodeError{Kind: ErrMalformedMessage, Err: errors.New("not UTF-8")}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, &DecodeError{Kind: ErrMalformedMessage, Err: err}
	}
	if m == nil {
		return nil, &DecodeError{Kind: ErrMalformedMessage, Err: errors.New("null is not an object")}
	}
	f := &fields{m: m}
	f.id = f.loose("id")
	v, ok := m["type"]
	if !ok {
		return nil, f.err("", ErrMissingType, nil)
	}
	if err := json.Unmarshal(v, &f.typ); err != nil {
		return nil, f.err("type", ErrBadField, err)
	}
	return f, nil
}

// DecodeClientMessage decodes one client->server message. The result is a
// pointer to one of BindMsg, ListMsg, AllocateMsg, ClaimMsg, ReleaseMsg,
// OpenMsg, AddMsg, CloseMsg, PingMsg, SubmitPermissionsMsg. Errors are
// *DecodeError. Unknown keys are ignored. Optional keys that are absent
// decode as "". A non-string "id" is kept as its JSON text.
func DecodeClientMessage(data []byte) (any, error) {
	f, err := envelope(data)
	if err != nil {
		return nil, err
	}
	id := f.id
	switch f.typ {
	case "bind":
		appid, err := f.str("appid", true)
		if err != nil {
			return nil, err
		}
		side, err := f.str("side", true)
		if err != nil {
			return nil, err
		}
		m := &BindMsg{ID: id, AppID: appid, Side: side}
		if v, ok := f.m["client_version"]; ok && !isNull(v) {
			var cv []*string
			if err := json.Unmarshal(v, &cv); err != nil {
				return nil, f.err("client_version", ErrBadField, err)
			}
			m.ClientVersion = make([]string, len(cv))
			for i, s := range cv {
				if s != nil {
					m.ClientVersion[i] = *s
				}
			}
		}
		return m, nil
	case "list":
		return &ListMsg{ID: id}, nil
	case "allocate":
		return &AllocateMsg{ID: id}, nil
	case "claim":
		np, err := f.str("nameplate", true)
		if err != nil {
			return nil, err
		}
		return &ClaimMsg{ID: id, Nameplate: np}, nil
	case "release":
		np, err := f.str("nameplate", false)
		if err != nil {
			return nil, err
		}
		return &ReleaseMsg{ID: id, Nameplate: np}, nil
	case "open":
		mb, err := f.str("mailbox", true)
		if err != nil {
			return nil, err
		}
		return &OpenMsg{ID: id, Mailbox: mb}, nil
	case "add":
		phase, err := f.str("phase", true)
		if err != nil {
			return nil, err
		}
		body, err := f.hexBody("body")
		if err != nil {
			return nil, err
		}
		return &AddMsg{ID: id, Phase: phase, Body: body}, nil
	case "close":
		mb, err := f.str("mailbox", false)
		if err != nil {
			return nil, err
		}
		mood, err := f.str("mood", false)
		if err != nil {
			return nil, err
		}
		return &CloseMsg{ID: id, Mailbox: mb, Mood: mood}, nil
	case "ping":
		p, err := f.int("ping")
		if err != nil {
			return nil, err
		}
		return &PingMsg{ID: id, Ping: p}, nil
	case "submit-permissions", "submit-permission":
		method, err := f.str("method", true)
		if err != nil {
			return nil, err
		}
		stamp, err := f.str("stamp", false)
		if err != nil {
			return nil, err
		}
		return &SubmitPermissionsMsg{ID: id, Method: method, Stamp: stamp}, nil
	}
	return nil, f.err("", ErrUnknownType, nil)
}

// DecodeServerMessage decodes one server->client message. The result is a
// pointer to one of WelcomeMsg, AckMsg, NameplatesMsg, AllocatedMsg,
// ClaimedMsg, ReleasedMsg, MessageMsg, ClosedMsg, PongMsg, ErrorMsg. Errors
// are *DecodeError; an unknown type is ErrUnknownType (clients should ignore
// those). Unknown keys are ignored.
func DecodeServerMessage(data []byte) (any, error) {
	f, err := envelope(data)
	if err != nil {
		return nil, err
	}
	tx, err := f.num("server_tx", false)
	if err != nil {
		return nil, err
	}
	switch f.typ {
	case "welcome":
		v, ok := f.m["welcome"]
		if !ok {
			return nil, f.err("welcome", ErrMissingField, nil)
		}
		m := &WelcomeMsg{ServerTX: tx}
		if err := json.Unmarshal(v, &m.Welcome); err != nil {
			return nil, f.err("welcome", ErrBadField, err)
		}
		return m, nil
	case "ack":
		return &AckMsg{ID: f.id, ServerTX: tx}, nil
	case "nameplates":
		v, ok := f.m["nameplates"]
		if !ok {
			return nil, f.err("nameplates", ErrMissingField, nil)
		}
		var list []map[string]json.RawMessage
		if err := json.Unmarshal(v, &list); err != nil {
			return nil, f.err("nameplates", ErrBadField, err)
		}
		m := &NameplatesMsg{Nameplates: make([]NameplateInfo, 0, len(list)), ServerTX: tx}
		for _, e := range list {
			var id string
			if err := json.Unmarshal(e["id"], &id); err != nil || e == nil {
				if err == nil {
					err = errors.New("entry is null")
				}
				return nil, f.err("nameplates", ErrBadField, fmt.Errorf("entry id: %w", err))
			}
			m.Nameplates = append(m.Nameplates, NameplateInfo{ID: id})
		}
		return m, nil
	case "allocated":
		np, err := f.str("nameplate", true)
		if err != nil {
			return nil, err
		}
		return &AllocatedMsg{Nameplate: np, ServerTX: tx}, nil
	case "claimed":
		mb, err := f.str("mailbox", true)
		if err != nil {
			return nil, err
		}
		return &ClaimedMsg{Mailbox: mb, ServerTX: tx}, nil
	case "released":
		return &ReleasedMsg{ServerTX: tx}, nil
	case "message":
		side, err := f.str("side", true)
		if err != nil {
			return nil, err
		}
		phase, err := f.str("phase", true)
		if err != nil {
			return nil, err
		}
		body, err := f.hexBody("body")
		if err != nil {
			return nil, err
		}
		rx, err := f.num("server_rx", false)
		if err != nil {
			return nil, err
		}
		return &MessageMsg{Side: side, Phase: phase, Body: body, ServerRX: rx, ID: f.id, ServerTX: tx}, nil
	case "closed":
		return &ClosedMsg{ServerTX: tx}, nil
	case "pong":
		p, err := f.int("pong")
		if err != nil {
			return nil, err
		}
		return &PongMsg{Pong: p, ServerTX: tx}, nil
	case "error":
		e, err := f.str("error", true)
		if err != nil {
			return nil, err
		}
		m := &ErrorMsg{Error: e, ServerTX: tx}
		if v, ok := f.m["orig"]; ok {
			m.Orig = v
		}
		return m, nil
	}
	return nil, f.err("", ErrUnknownType, nil)
}
