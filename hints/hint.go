// Package hints implements magic-wormhole connection hints: their JSON forms
// (as exchanged in the file-transfer "transit" message and in Dilation
// "connection-hints" records), local address discovery, listening, and the
// dial race used by Transit and Dilation.
//
// JSON forms (py:_hints.py):
//
//	{"type":"direct-tcp-v1","priority":0.0,"hostname":"192.168.1.5","port":41234}
//	{"type":"tor-tcp-v1","priority":0.0,"hostname":"xxxx.onion","port":80}
//	{"type":"relay-v1","hints":[{"type":"direct-tcp-v1",...}]}
//
// IPv6 hostnames are written without brackets in JSON (Python hands them to
// TCP6ClientEndpoint as is); brackets are added only when dialing, through
// net.JoinHostPort.
package hints

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
)

// Hint type names as they appear in the JSON "type" field.
const (
	TypeDirectTCPV1 = "direct-tcp-v1"
	TypeTorTCPV1    = "tor-tcp-v1"
	TypeRelayV1     = "relay-v1"
)

// Hint is one way to reach a peer. The built-in kinds are DirectTCPV1,
// TorTCPV1, RelayV1 and Unknown; other kinds (ICE, WebSocket relays...) can be
// added through a Registry. Every Hint must marshal to its JSON object form
// (including the "type" field) with encoding/json.
type Hint interface {
	// HintType is the JSON "type" field, e.g. "direct-tcp-v1".
	HintType() string
	// String is a short human description for logs and errors.
	String() string
}

// Prioritized is implemented by hints that carry a priority (higher is
// preferred; Python's default is 0.0).
type Prioritized interface {
	HintPriority() float64
}

// ErrInvalidHint is wrapped by every hint parsing error.
var ErrInvalidHint = errors.New("hints: invalid hint")

// DirectTCPV1 is a plain TCP address ("direct-tcp-v1"). Inside a RelayV1 it
// names the relay server's address.
type DirectTCPV1 struct {
	Hostname string  // DNS name, IPv4 or IPv6 literal (no brackets)
	Port     int     // 1..65535
	Priority float64 // higher is preferred
}

// HintType implements Hint.
func (DirectTCPV1) HintType() string { return TypeDirectTCPV1 }

// HintPriority implements Prioritized.
func (h DirectTCPV1) HintPriority() float64 { return h.Priority }

// Addr is the address to dial, "host:port" or "[v6]:port".
func (h DirectTCPV1) Addr() string { return joinHostPort(h.Hostname, h.Port) }

// String implements Hint ("tcp:host:port").
func (h DirectTCPV1) String() string { return "tcp:" + h.Addr() }

// MarshalJSON writes the Python form.
func (h DirectTCPV1) MarshalJSON() ([]byte, error) {
	return marshalTCP(TypeDirectTCPV1, h.Hostname, h.Port, h.Priority)
}

// TorTCPV1 is an address to reach through Tor ("tor-tcp-v1"), usually an
// onion service. Python parses these but never generates them.
type TorTCPV1 struct {
	Hostname string
	Port     int
	Priority float64
}

// HintType implements Hint.
func (TorTCPV1) HintType() string { return TypeTorTCPV1 }

// HintPriority implements Prioritized.
func (h TorTCPV1) HintPriority() float64 { return h.Priority }

// Addr is the address to ask the Tor proxy for.
func (h TorTCPV1) Addr() string { return joinHostPort(h.Hostname, h.Port) }

// String implements Hint ("tor:host:port").
func (h TorTCPV1) String() string { return "tor:" + h.Addr() }

// MarshalJSON writes the Python form.
func (h TorTCPV1) MarshalJSON() ([]byte, error) {
	return marshalTCP(TypeTorTCPV1, h.Hostname, h.Port, h.Priority)
}

// RelayV1 names one transit relay ("relay-v1") by a set of equally valid
// ways to reach it (normally DirectTCPV1 hints). Nested hints of unknown
// type are skipped when parsing, as Python does.
type RelayV1 struct {
	Hints []Hint
	// Name is an optional label; Rust emits it, Python ignores it.
	Name string
}

// HintType implements Hint.
func (RelayV1) HintType() string { return TypeRelayV1 }

// String implements Hint ("relay[tcp:host:port,...]").
func (h RelayV1) String() string {
	parts := make([]string, 0, len(h.Hints))
	for _, n := range h.Hints {
		parts = append(parts, n.String())
	}
	return "relay[" + strings.Join(parts, ",") + "]"
}

// MarshalJSON writes {"type":"relay-v1","hints":[...]} (plus "name" when
// set).
func (h RelayV1) MarshalJSON() ([]byte, error) {
	inner, err := MarshalHints(h.Hints)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(`{"type":"relay-v1",`)
	if h.Name != "" {
		n, _ := json.Marshal(h.Name)
		b.WriteString(`"name":`)
		b.Write(n)
		b.WriteByte(',')
	}
	b.WriteString(`"hints":`)
	b.Write(inner)
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Unknown is a hint whose type this side does not know. It is kept (so it
// can be logged or re-sent) and otherwise ignored.
type Unknown struct {
	Type string          // the "type" field ("" if absent or not a string)
	Raw  json.RawMessage // the whole JSON object
}

// HintType implements Hint.
func (u Unknown) HintType() string { return u.Type }

// String implements Hint.
func (u Unknown) String() string { return "unknown:" + strconv.Quote(u.Type) }

// MarshalJSON writes the original JSON back.
func (u Unknown) MarshalJSON() ([]byte, error) {
	if len(u.Raw) == 0 {
		return []byte("null"), nil
	}
	return u.Raw, nil
}

func joinHostPort(host string, port int) string {
	return net.JoinHostPort(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), strconv.Itoa(port))
}

func marshalTCP(typ, host string, port int, prio float64) ([]byte, error) {
	if math.IsNaN(prio) || math.IsInf(prio, 0) {
		return nil, fmt.Errorf("%w: priority %v not representable in JSON", ErrInvalidHint, prio)
	}
	// Field order follows Python's encode_hint.
	return json.Marshal(struct {
		Type     string  `json:"type"`
		Priority float64 `json:"priority"`
		Hostname string  `json:"hostname"`
		Port     int     `json:"port"`
	}{typ, prio, strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), port})
}

// A Decoder turns one JSON hint object (whose "type" it was registered for)
// into a Hint. Returning (nil, nil) or an error drops the hint.
type Decoder func(raw json.RawMessage, r *Registry) (Hint, error)

// Registry maps hint type names to decoders. The zero value and nil both
// know only the built-in types (direct-tcp-v1, tor-tcp-v1, relay-v1).
// Registries are not safe for concurrent Register calls; build one up front
// and pass it in options.
type Registry struct {
	decoders map[string]Decoder
}

// NewRegistry returns a registry with the built-in types.
func NewRegistry() *Registry { return &Registry{} }

// Register adds or replaces the decoder for a hint type (e.g. an ICE or
// WebSocket-relay hint). Registering a built-in name overrides it.
func (r *Registry) Register(typ string, d Decoder) {
	if r.decoders == nil {
		r.decoders = make(map[string]Decoder)
	}
	r.decoders[typ] = d
}

func (r *Registry) overrides(typ string) bool {
	if r == nil {
		return false
	}
	_, ok := r.decoders[typ]
	return ok
}

func (r *Registry) decoder(typ string) Decoder {
	if r != nil {
		if d, ok := r.decoders[typ]; ok {
			return d
		}
	}
	switch typ {
	case TypeDirectTCPV1:
		return decodeDirect
	case TypeTorTCPV1:
		return decodeTor
	case TypeRelayV1:
		return decodeRelay
	}
	return nil
}

// ParseHints parses a JSON array of hint objects with the built-in types.
// See (*Registry).Parse.
func ParseHints(data json.RawMessage) ([]Hint, error) {
	return (*Registry)(nil).Parse(data)
}

// MaxHints bounds how many hints one Parse call returns (including nested
// relay hints); the rest are dropped.
const MaxHints = 1000

// Parse parses a JSON array of hint objects. Like Python it is lenient per
// element: malformed direct/tor hints (missing hostname, non-integer port,
// non-number priority, ...) and relay hints with no usable nested hint are
// dropped, elements that are not objects are dropped, and objects of an
// unknown type are returned as Unknown. Only input that is not a JSON array
// (or is not valid JSON) is an error.
func (r *Registry) Parse(data json.RawMessage) ([]Hint, error) {
	var elems []json.RawMessage
	if err := json.Unmarshal(data, &elems); err != nil {
		return nil, fmt.Errorf("%w: hints must be a JSON array: %v", ErrInvalidHint, err)
	}
	out := make([]Hint, 0, min(len(elems), MaxHints))
	budget := MaxHints
	for _, e := range elems {
		if budget <= 0 {
			break
		}
		h := r.parseOne(e, false, &budget)
		if h != nil {
			out = append(out, h)
			budget--
		}
	}
	return out, nil
}

// ParseHint parses a single JSON hint object. It returns an error wrapping
// ErrInvalidHint for a malformed or dropped hint; unknown types give Unknown.
func (r *Registry) ParseHint(data json.RawMessage) (Hint, error) {
	typ, ok := hintType(data)
	if !ok {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidHint)
	}
	d := r.decoder(typ)
	if d == nil {
		return Unknown{Type: typ, Raw: append(json.RawMessage(nil), data...)}, nil
	}
	h, err := d(data, r)
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("%w: %s hint dropped", ErrInvalidHint, typ)
	}
	return h, nil
}

func hintType(data json.RawMessage) (string, bool) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		return "", false
	}
	var typ string
	if t, ok := obj["type"]; ok {
		_ = json.Unmarshal(t, &typ) // non-string type => ""
	}
	return typ, true
}

// parseOne returns nil for a dropped hint. Nested (inside relay-v1) unknown
// types are dropped rather than kept.
func (r *Registry) parseOne(data json.RawMessage, nested bool, budget *int) Hint {
	typ, ok := hintType(data)
	if !ok {
		return nil
	}
	if nested && typ == TypeRelayV1 {
		return nil // no relays inside relays
	}
	d := r.decoder(typ)
	if d == nil {
		if nested {
			return nil
		}
		return Unknown{Type: typ, Raw: append(json.RawMessage(nil), data...)}
	}
	var h Hint
	var err error
	if typ == TypeRelayV1 && !r.overrides(TypeRelayV1) {
		h, err = decodeRelayBudget(data, r, budget)
	} else {
		h, err = d(data, r)
	}
	if err != nil {
		return nil
	}
	return h
}

type tcpJSON struct {
	Hostname *string         `json:"hostname"`
	Port     json.RawMessage `json:"port"`
	Priority json.RawMessage `json:"priority"`
}

func decodeTCP(data json.RawMessage) (host string, port int, prio float64, err error) {
	var t tcpJSON
	if err := json.Unmarshal(data, &t); err != nil {
		return "", 0, 0, fmt.Errorf("%w: %v", ErrInvalidHint, err)
	}
	if t.Hostname == nil || *t.Hostname == "" {
		return "", 0, 0, fmt.Errorf("%w: missing hostname", ErrInvalidHint)
	}
	host = strings.TrimSuffix(strings.TrimPrefix(*t.Hostname, "["), "]")
	if host == "" || strings.ContainsAny(host, "\x00/ \t\r\n") {
		return "", 0, 0, fmt.Errorf("%w: bad hostname %q", ErrInvalidHint, *t.Hostname)
	}
	// Python requires an int: 5.0 and "5" are rejected.
	p, perr := strconv.ParseInt(string(t.Port), 10, 64)
	if perr != nil || p < 1 || p > 65535 {
		return "", 0, 0, fmt.Errorf("%w: bad port %s", ErrInvalidHint, t.Port)
	}
	if len(t.Priority) > 0 && string(t.Priority) != "null" {
		if err := json.Unmarshal(t.Priority, &prio); err != nil {
			return "", 0, 0, fmt.Errorf("%w: bad priority %s", ErrInvalidHint, t.Priority)
		}
	}
	return host, int(p), prio, nil
}

func decodeDirect(data json.RawMessage, _ *Registry) (Hint, error) {
	host, port, prio, err := decodeTCP(data)
	if err != nil {
		return nil, err
	}
	return DirectTCPV1{Hostname: host, Port: port, Priority: prio}, nil
}

func decodeTor(data json.RawMessage, _ *Registry) (Hint, error) {
	host, port, prio, err := decodeTCP(data)
	if err != nil {
		return nil, err
	}
	return TorTCPV1{Hostname: host, Port: port, Priority: prio}, nil
}

func decodeRelay(data json.RawMessage, r *Registry) (Hint, error) {
	budget := MaxHints
	return decodeRelayBudget(data, r, &budget)
}

func decodeRelayBudget(data json.RawMessage, r *Registry, budget *int) (Hint, error) {
	var obj struct {
		Hints []json.RawMessage `json:"hints"`
		Name  json.RawMessage   `json:"name"`
	}
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("%w: relay-v1: %v", ErrInvalidHint, err)
	}
	rh := RelayV1{}
	var name string
	if json.Unmarshal(obj.Name, &name) == nil {
		rh.Name = name
	}
	for _, n := range obj.Hints {
		if *budget <= 1 {
			break
		}
		if h := r.parseOne(n, true, budget); h != nil {
			rh.Hints = append(rh.Hints, h)
			*budget--
		}
	}
	if len(rh.Hints) == 0 {
		// Python's add_connection_hints ignores a relay with no usable way
		// to reach it.
		return nil, fmt.Errorf("%w: relay-v1 without usable hints", ErrInvalidHint)
	}
	return rh, nil
}

// MarshalHints writes hints as a JSON array. A nil slice gives "[]".
func MarshalHints(hs []Hint) (json.RawMessage, error) {
	if hs == nil {
		hs = []Hint{}
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, h := range hs {
		if h == nil {
			return nil, fmt.Errorf("%w: nil hint at %d", ErrInvalidHint, i)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		j, err := json.Marshal(h)
		if err != nil {
			return nil, fmt.Errorf("marshal %s hint: %w", h.HintType(), err)
		}
		b.Write(j)
	}
	b.WriteByte(']')
	return b.Bytes(), nil
}

// ParseTCPLocation parses the CLI form "tcp:HOST:PORT[:priority=F]" (Python's
// parse_hint_argv) into a DirectTCPV1. An IPv6 host may be given in
// brackets: "tcp:[::1]:4001". Unknown ":key=value" suffixes are ignored, as
// in Python.
func ParseTCPLocation(s string) (DirectTCPV1, error) {
	bad := func(why string) (DirectTCPV1, error) {
		return DirectTCPV1{}, fmt.Errorf("%w: %q: %s", ErrInvalidHint, s, why)
	}
	typ, rest, ok := strings.Cut(s, ":")
	if !ok || typ == "" {
		return bad("unparseable hint")
	}
	if typ != "tcp" {
		return bad("unknown hint type " + strconv.Quote(typ))
	}
	var host string
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 {
			return bad("missing ]")
		}
		host, rest = rest[1:end], rest[end+1:]
		if !strings.HasPrefix(rest, ":") {
			return bad("need more colons")
		}
		rest = rest[1:]
	} else {
		var ok bool
		host, rest, ok = strings.Cut(rest, ":")
		if !ok {
			return bad("need more colons")
		}
	}
	if host == "" {
		return bad("empty host")
	}
	pieces := strings.Split(rest, ":")
	for _, c := range pieces[0] {
		if c < '0' || c > '9' {
			return bad("non-numeric port")
		}
	}
	port, err := strconv.Atoi(pieces[0])
	if err != nil || port < 1 || port > 65535 {
		return bad("bad port")
	}
	h := DirectTCPV1{Hostname: host, Port: port}
	for _, more := range pieces[1:] {
		if v, ok := strings.CutPrefix(more, "priority="); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return bad("non-float priority=")
			}
			h.Priority = f
		}
	}
	return h, nil
}

// ParseRelayLocation parses a --transit-helper value
// "tcp:HOST:PORT[:priority=F]" into a relay hint with one nested
// DirectTCPV1.
func ParseRelayLocation(s string) (RelayV1, error) {
	d, err := ParseTCPLocation(s)
	if err != nil {
		return RelayV1{}, err
	}
	return RelayV1{Hints: []Hint{d}}, nil
}
