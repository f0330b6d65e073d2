package wormhole

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// maxVersionSize bounds the version message we are willing to parse.
const maxVersionSize = 1 << 20

// encodeVersions builds the plaintext of our "version" message, like
// Python's create(): {"can-dilate": ..., "dilation-abilities": ...,
// "app_versions": {...}}.
func encodeVersions(app map[string]any, d *DilationVersion) ([]byte, error) {
	type withDilation struct {
		CanDilate []string         `json:"can-dilate"`
		Abilities []map[string]any `json:"dilation-abilities"`
		App       map[string]any   `json:"app_versions"`
	}
	type plain struct {
		App map[string]any `json:"app_versions"`
	}
	if app == nil {
		app = map[string]any{}
	}
	var v any = plain{App: app}
	if d != nil {
		ab := d.Abilities
		if ab == nil {
			ab = []map[string]any{}
		}
		cd := d.CanDilate
		if cd == nil {
			cd = []string{}
		}
		v = withDilation{CanDilate: cd, Abilities: ab, App: app}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("wormhole: encoding version message: %w", err)
	}
	return b, nil
}

// peerVersions is the decoded version message of the peer.
type peerVersions struct {
	// raw holds every top-level key of the dict, undecoded.
	raw map[string]json.RawMessage
	// app is "app_versions" ({} when missing or not an object, as Python's
	// .get("app_versions", {}) would give to a typed consumer).
	app map[string]any
}

// decodeVersions parses the plaintext of the peer's "version" message. The
// top level must be a JSON object (Python's bytes_to_dict asserts that).
func decodeVersions(b []byte) (*peerVersions, error) {
	if len(b) > maxVersionSize {
		return nil, fmt.Errorf("%w: version message too large (%d bytes)", ErrProtocol, len(b))
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: version message is not a JSON object: %v", ErrProtocol, err)
	}
	if raw == nil { // the JSON was null
		return nil, fmt.Errorf("%w: version message is null, not an object", ErrProtocol)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the version object", ErrProtocol)
	}
	pv := &peerVersions{raw: raw, app: map[string]any{}}
	if a, ok := raw["app_versions"]; ok {
		var app map[string]any
		if err := json.Unmarshal(a, &app); err == nil && app != nil {
			pv.app = app
		}
	}
	return pv, nil
}

// canDilate returns the peer's "can-dilate" list (nil if absent or not a
// list of strings).
func (pv *peerVersions) canDilate() []string {
	var l []string
	if r, ok := pv.raw["can-dilate"]; ok {
		if json.Unmarshal(r, &l) != nil {
			return nil
		}
	}
	return l
}
