package dilate

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wormhole-go/wormhole/hints"
)

// Version is the Dilation protocol version this package speaks (Python
// magic-wormhole >= 0.20: named OPEN, no control channel).
const Version = "ged"

// Errors of the negotiation layer.
var (
	// ErrPeerCannotDilate means the peer's version message shares no
	// Dilation version with ours (Python: OldPeerCannotDilateError).
	ErrPeerCannotDilate = errors.New("dilate: peer cannot dilate")
	// ErrBadL1 is wrapped by every error decoding a mailbox Dilation record.
	ErrBadL1 = errors.New("dilate: malformed dilation record")
	// ErrReflection means the peer's Dilation side equals ours.
	ErrReflection = errors.New("dilate: peer uses our own dilation side (reflection?)")
)

// Versions is the "can-dilate" list that matches Python: ["ged"].
func Versions() []string { return []string{Version} }

// ExtendedVersions is the "can-dilate" list for Go applications that want
// a flow-controlled mode with Go peers (and "ged" with everyone else):
// [CreditVersion, YamuxVersion, "ged"], best first, the same as
// GoVersions. A mode is used only when both sides' please records ask for
// it. Callers that relied on "a Go peer means YamuxVersion" should test
// (*Dilation).FlowControlled instead.
func ExtendedVersions() []string { return GoVersions() }

// GoVersions is the "can-dilate" list with every mode this package speaks,
// best first: [CreditVersion, YamuxVersion, "ged"]. Python and fowl peers
// share only "ged" and get exactly that.
func GoVersions() []string { return []string{CreditVersion, YamuxVersion, Version} }

// Abilities is the "dilation-abilities" list Python advertises (never consumed).
func Abilities() []map[string]string {
	return []map[string]string{{"type": "direct-tcp-v1"}, {"type": "relay-v1"}}
}

// VersionFields returns the keys to merge into the wormhole version message:
// "can-dilate" (Versions(), or ExtendedVersions() if extended) and
// "dilation-abilities".
func VersionFields(extended bool) map[string]any {
	v := Versions()
	if extended {
		v = ExtendedVersions()
	}
	return map[string]any{"can-dilate": v, "dilation-abilities": Abilities()}
}

// PeerVersions extracts "can-dilate" from a peer's decoded version message
// (nil when absent or malformed).
func PeerVersions(versionMsg map[string]any) []string {
	raw, ok := versionMsg["can-dilate"].([]any)
	if !ok {
		return nil
	}
	var out []string
	for _, v := range raw {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// SharedVersion picks the best version both sides support, ranked by our
// own list (py:_dilation/manager.py _find_shared_versions).
func SharedVersion(ours, theirs []string) (string, bool) {
	for _, v := range ours {
		for _, t := range theirs {
			if v == t {
				return v, true
			}
		}
	}
	return "", false
}

// l1 record types.
const (
	l1Please       = "please"
	l1Hints        = "connection-hints"
	l1Reconnect    = "reconnect"
	l1Reconnecting = "reconnecting"
)

// l1Record is one Dilation record sent through the mailbox (phase dilate-N).
type l1Record struct {
	Type       string
	Side       string       // please
	UseVersion string       // please (may be empty)
	Hints      []hints.Hint // connection-hints
}

// marshalL1 encodes a record with Python's key order.
func marshalL1(r l1Record) []byte {
	var b []byte
	switch r.Type {
	case l1Please:
		type please struct {
			Type       string `json:"type"`
			Side       string `json:"side"`
			UseVersion string `json:"use-version,omitempty"`
		}
		b, _ = json.Marshal(please{r.Type, r.Side, r.UseVersion})
	case l1Hints:
		hs, err := hints.MarshalHints(r.Hints)
		if err != nil {
			hs = json.RawMessage("[]")
		}
		type hintsRec struct {
			Type  string          `json:"type"`
			Hints json.RawMessage `json:"hints"`
		}
		b, _ = json.Marshal(hintsRec{r.Type, hs})
	default:
		b, _ = json.Marshal(map[string]string{"type": r.Type})
	}
	return b
}

const maxL1 = 1 << 20

// parseL1 decodes a mailbox Dilation record. Unknown types are returned
// with only Type set (the caller ignores them, as Python does).
func parseL1(b []byte) (l1Record, error) {
	if len(b) > maxL1 {
		return l1Record{}, fmt.Errorf("%w: %d bytes", ErrBadL1, len(b))
	}
	var raw struct {
		Type       *string         `json:"type"`
		Side       *string         `json:"side"`
		UseVersion *string         `json:"use-version"`
		Hints      json.RawMessage `json:"hints"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return l1Record{}, fmt.Errorf("%w: %w", ErrBadL1, err)
	}
	if raw.Type == nil {
		return l1Record{}, fmt.Errorf("%w: no type", ErrBadL1)
	}
	r := l1Record{Type: *raw.Type}
	switch r.Type {
	case l1Please:
		if raw.Side == nil || !validSide(*raw.Side) {
			return l1Record{}, fmt.Errorf("%w: please without a valid side", ErrBadL1)
		}
		r.Side = *raw.Side
		if raw.UseVersion != nil {
			r.UseVersion = *raw.UseVersion
		}
	case l1Hints:
		if len(raw.Hints) > 0 && string(raw.Hints) != "null" {
			hs, err := hints.ParseHints(raw.Hints)
			if err != nil {
				return l1Record{}, fmt.Errorf("%w: %w", ErrBadL1, err)
			}
			r.Hints = hs
		}
	}
	return r, nil
}

// validSide accepts what the relay accepts for a side: 1..64 word characters
// (Python sends 16 hex digits).
func validSide(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_') {
			return false
		}
	}
	return true
}
