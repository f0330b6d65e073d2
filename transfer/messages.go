// Package transfer implements the messages and the message-level logic of the
// magic-wormhole "file-transfer v1" application protocol: the one spoken by
// `wormhole send` / `wormhole receive` (Python 0.12+) and wormhole-william.
//
// Every message is a UTF-8 JSON object sent as one wormhole message (one
// phase). The sender sends an optional {"transit": …} and then one
// {"offer": …}; the receiver answers with {"answer": …} or {"error": …}.
// Decoding is lenient in the way Python is: unknown top-level keys are
// ignored, unknown or malformed connection hints are skipped, but a message
// that is not a JSON object, or an offer/answer with the wrong shape, is a
// *ProtocolError.
package transfer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"strings"
)

// Message is one decoded file-transfer message. Python looks at each key
// independently, so more than one field may be set; a sender handles them in
// the order Error, Transit, Answer, and a receiver in the order Error,
// Transit, Offer.
type Message struct {
	// Error is the text of an {"error": …} message (non-string values are
	// kept as their JSON text). HasError reports whether the key was present.
	Error    string
	HasError bool
	Transit  *Transit
	Offer    *Offer
	Answer   *Answer
}

// Transit is the {"transit": {"abilities-v1": …, "hints-v1": …}} message.
type Transit struct {
	Abilities []Ability `json:"abilities-v1"`
	Hints     []Hint    `json:"hints-v1"`
}

// Ability is one entry of "abilities-v1", e.g. {"type":"direct-tcp-v1"}.
type Ability struct {
	Type string `json:"type"`
}

// Hint types.
const (
	HintDirectTCP = "direct-tcp-v1"
	HintTorTCP    = "tor-tcp-v1"
	HintRelay     = "relay-v1"
)

// Hint is a connection hint. Direct and Tor hints use Hostname, Port and
// Priority; a relay hint lists, in Hints, the direct/Tor ways to reach one
// relay.
type Hint struct {
	Type     string
	Priority float64
	Hostname string
	Port     int
	Hints    []Hint
}

// Offer is the payload of {"offer": …}: exactly one of Message, File or
// Directory is set, or none (an offer type we do not know; Raw holds it).
type Offer struct {
	Message   *string
	File      *FileOffer
	Directory *DirectoryOffer
	// Raw is the offer's JSON when it is of an unknown type.
	Raw json.RawMessage
}

// FileOffer is {"file": {"filename": …, "filesize": …}}.
type FileOffer struct {
	Filename string `json:"filename"`
	Filesize int64  `json:"filesize"`
}

// DirectoryOffer is {"directory": {…}}: a zip file of the directory.
type DirectoryOffer struct {
	Mode     string `json:"mode"`
	Dirname  string `json:"dirname"`
	Zipsize  int64  `json:"zipsize"`
	Numbytes int64  `json:"numbytes"`
	Numfiles int64  `json:"numfiles"`
}

// DirectoryMode is the only directory mode Python 0.12 accepts.
const DirectoryMode = "zipfile/deflated"

// Answer is the payload of {"answer": …}.
type Answer struct {
	MessageAck string `json:"message_ack,omitempty"`
	FileAck    string `json:"file_ack,omitempty"`
}

// TransitAck is the single record the receiver sends over the transit
// connection after it has all the bytes: {"ack":"ok","sha256":"<hex>"}.
type TransitAck struct {
	Ack    string `json:"ack"`
	SHA256 string `json:"sha256,omitempty"`
}

// Error strings the Python receiver sends.
const (
	ErrTextRejected     = "transfer rejected"
	ErrTextUnknownOffer = "unknown offer type"
	ErrTextUnknownMode  = "unknown mode"
	// ErrTextVerifierRejected is what a sender sends when its user
	// rejects the verifier.
	ErrTextVerifierRejected = "sender rejected verification check, abandoned transfer"
)

// ErrProtocol is matched (errors.Is) by every *ProtocolError.
var ErrProtocol = errors.New("file-transfer protocol error")

// ProtocolError reports a message the peer sent that we cannot use.
type ProtocolError struct {
	Reason string
}

func (e *ProtocolError) Error() string { return "file-transfer protocol error: " + e.Reason }

// Is makes errors.Is(err, ErrProtocol) true.
func (e *ProtocolError) Is(target error) bool { return target == ErrProtocol }

func protoErr(format string, a ...any) error {
	return &ProtocolError{Reason: fmt.Sprintf(format, a...)}
}

// Kind is the kind of an offer.
type Kind int

// Offer kinds.
const (
	KindUnknown Kind = iota
	KindText
	KindFile
	KindDirectory
)

func (k Kind) String() string {
	switch k {
	case KindText:
		return "text"
	case KindFile:
		return "file"
	case KindDirectory:
		return "directory"
	}
	return "unknown"
}

// Kind says which kind of offer o is.
func (o *Offer) Kind() Kind {
	switch {
	case o.Message != nil:
		return KindText
	case o.File != nil:
		return KindFile
	case o.Directory != nil:
		return KindDirectory
	}
	return KindUnknown
}

// TextOffer returns an offer of a text message.
func TextOffer(text string) *Offer { return &Offer{Message: &text} }

// marshal encodes v as JSON without HTML escaping and without a trailing
// newline.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// MarshalJSON encodes exactly one offer kind.
func (o Offer) MarshalJSON() ([]byte, error) {
	switch {
	case o.Message != nil:
		return marshal(map[string]string{"message": *o.Message})
	case o.File != nil:
		return marshal(map[string]*FileOffer{"file": o.File})
	case o.Directory != nil:
		return marshal(map[string]*DirectoryOffer{"directory": o.Directory})
	case len(o.Raw) > 0:
		return o.Raw, nil
	}
	return nil, errors.New("transfer: empty offer")
}

// UnmarshalJSON decodes an offer. Like Python it looks for "message", then
// "file", then "directory"; an object with none of them is an unknown offer
// (Kind() == KindUnknown), not an error.
func (o *Offer) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return protoErr("offer is not a JSON object")
	}
	*o = Offer{}
	if raw, ok := m["message"]; ok {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return protoErr("offer message is not a string")
		}
		o.Message = &s
		return nil
	}
	if raw, ok := m["file"]; ok {
		var f FileOffer
		if err := strictObject(raw, &f, "filename", "filesize"); err != nil {
			return protoErr("file offer: %v", err)
		}
		if f.Filesize < 0 {
			return protoErr("file offer: negative filesize %d", f.Filesize)
		}
		o.File = &f
		return nil
	}
	if raw, ok := m["directory"]; ok {
		var d DirectoryOffer
		if err := strictObject(raw, &d, "mode", "dirname", "zipsize", "numbytes", "numfiles"); err != nil {
			return protoErr("directory offer: %v", err)
		}
		if d.Zipsize < 0 || d.Numbytes < 0 || d.Numfiles < 0 {
			return protoErr("directory offer: negative size or count")
		}
		o.Directory = &d
		return nil
	}
	o.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// strictObject decodes an object into v and checks that every named key is
// present (Python indexes them with [] and would fail otherwise).
func strictObject(raw json.RawMessage, v any, required ...string) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return errors.New("not a JSON object")
	}
	for _, k := range required {
		if _, ok := m[k]; !ok {
			return fmt.Errorf("missing %q", k)
		}
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("bad field: %v", err)
	}
	return nil
}

// MarshalJSON encodes a hint the way Python does.
func (h Hint) MarshalJSON() ([]byte, error) {
	if h.Type == HintRelay {
		hints := h.Hints
		if hints == nil {
			hints = []Hint{}
		}
		return marshal(struct {
			Type  string `json:"type"`
			Hints []Hint `json:"hints"`
		}{h.Type, hints})
	}
	if math.IsNaN(h.Priority) || math.IsInf(h.Priority, 0) {
		return nil, errors.New("transfer: hint priority is not finite")
	}
	return marshal(struct {
		Type     string  `json:"type"`
		Priority float64 `json:"priority"`
		Hostname string  `json:"hostname"`
		Port     int     `json:"port"`
	}{h.Type, h.Priority, h.Hostname, h.Port})
}

// parseHint parses one hint leniently, like Python's parse_tcp_v1_hint and
// add_connection_hints: it reports ok=false for hints to be skipped.
func parseHint(raw json.RawMessage, nested bool) (Hint, bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return Hint{}, false
	}
	var h Hint
	if t, ok := m["type"]; ok {
		if json.Unmarshal(t, &h.Type) != nil {
			return Hint{}, false
		}
	}
	switch h.Type {
	case HintDirectTCP, HintTorTCP:
		if json.Unmarshal(m["hostname"], &h.Hostname) != nil || m["hostname"] == nil {
			return Hint{}, false
		}
		// Python requires a JSON integer: digits only, no fraction or exponent.
		p, ok := jsonInt(m["port"])
		if !ok || p < 0 || p > 65535 {
			return Hint{}, false
		}
		h.Port = int(p)
		if pr, ok := m["priority"]; ok {
			if json.Unmarshal(pr, &h.Priority) != nil {
				return Hint{}, false
			}
		}
		return h, true
	case HintRelay:
		if nested {
			return Hint{}, false
		}
		var subs []json.RawMessage
		if hs, ok := m["hints"]; ok {
			if json.Unmarshal(hs, &subs) != nil {
				return Hint{}, false
			}
		}
		for _, s := range subs {
			if sh, ok := parseHint(s, true); ok {
				h.Hints = append(h.Hints, sh)
			}
		}
		return h, len(h.Hints) > 0
	}
	return Hint{}, false
}

// UnmarshalJSON decodes a transit message, skipping hints and abilities it
// does not understand (as Python does).
func (t *Transit) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return protoErr("transit is not a JSON object")
	}
	*t = Transit{}
	if raw, ok := m["abilities-v1"]; ok {
		var abs []json.RawMessage
		if json.Unmarshal(raw, &abs) != nil {
			return protoErr("transit abilities-v1 is not a list")
		}
		for _, a := range abs {
			var ab Ability
			if json.Unmarshal(a, &ab) == nil && ab.Type != "" {
				t.Abilities = append(t.Abilities, ab)
			}
		}
	}
	if raw, ok := m["hints-v1"]; ok {
		var hs []json.RawMessage
		if json.Unmarshal(raw, &hs) != nil {
			return protoErr("transit hints-v1 is not a list")
		}
		for _, h := range hs {
			if hint, ok := parseHint(h, false); ok {
				t.Hints = append(t.Hints, hint)
			}
		}
	}
	return nil
}

// MarshalJSON always writes both lists (empty rather than null).
func (t Transit) MarshalJSON() ([]byte, error) {
	abs, hints := t.Abilities, t.Hints
	if abs == nil {
		abs = []Ability{}
	}
	if hints == nil {
		hints = []Hint{}
	}
	return marshal(struct {
		Abilities []Ability `json:"abilities-v1"`
		Hints     []Hint    `json:"hints-v1"`
	}{abs, hints})
}

// Decode parses one file-transfer message.
func Decode(b []byte) (*Message, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, protoErr("message is not a JSON object")
	}
	msg := &Message{}
	if raw, ok := m["error"]; ok {
		msg.HasError = true
		var s string
		if json.Unmarshal(raw, &s) == nil {
			msg.Error = s
		} else {
			msg.Error = string(raw)
		}
	}
	if raw, ok := m["transit"]; ok {
		var t Transit
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, asProto(err)
		}
		msg.Transit = &t
	}
	if raw, ok := m["offer"]; ok {
		var o Offer
		if err := json.Unmarshal(raw, &o); err != nil {
			return nil, asProto(err)
		}
		msg.Offer = &o
	}
	if raw, ok := m["answer"]; ok {
		var am map[string]json.RawMessage
		if json.Unmarshal(raw, &am) != nil || am == nil {
			return nil, protoErr("answer is not a JSON object")
		}
		var a Answer
		for k, dst := range map[string]*string{"message_ack": &a.MessageAck, "file_ack": &a.FileAck} {
			if v, ok := am[k]; ok {
				if json.Unmarshal(v, dst) != nil {
					*dst = string(v) // keep non-string values visible, never "ok"
				}
			}
		}
		msg.Answer = &a
	}
	return msg, nil
}

// asProto turns an encoding/json error into a *ProtocolError.
func asProto(err error) error {
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return pe
	}
	return protoErr("%v", err)
}

// Encode encodes a message. Exactly the fields set are written.
func Encode(m *Message) ([]byte, error) {
	var parts []string
	add := func(key string, v any) error {
		b, err := marshal(v)
		if err != nil {
			return err
		}
		k, _ := marshal(key)
		parts = append(parts, string(k)+": "+string(b))
		return nil
	}
	if m.HasError {
		if err := add("error", m.Error); err != nil {
			return nil, err
		}
	}
	if m.Transit != nil {
		if err := add("transit", m.Transit); err != nil {
			return nil, err
		}
	}
	if m.Offer != nil {
		if err := add("offer", m.Offer); err != nil {
			return nil, err
		}
	}
	if m.Answer != nil {
		if err := add("answer", m.Answer); err != nil {
			return nil, err
		}
	}
	if len(parts) == 0 {
		return nil, errors.New("transfer: empty message")
	}
	return []byte("{" + strings.Join(parts, ", ") + "}"), nil
}

// SafeName reduces a peer-supplied file or directory name to a single path
// element that is safe to create in the current directory (Python uses
// os.path.basename). It returns an error for names that reduce to nothing.
func SafeName(name string) (string, error) {
	n := strings.ReplaceAll(name, "\\", "/")
	n = path.Base(n)
	if n == "" || n == "." || n == ".." || n == "/" || strings.ContainsRune(n, 0) {
		return "", protoErr("unusable file name %q", name)
	}
	return n, nil
}

// jsonInt parses a JSON integer literal (what Python's json reads as int).
func jsonInt(raw json.RawMessage) (int64, bool) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || len(t) > 18 {
		return 0, false
	}
	neg := false
	if t[0] == '-' {
		neg, t = true, t[1:]
	}
	if len(t) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range t {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}
