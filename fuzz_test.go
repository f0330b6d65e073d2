package wormhole

import (
	"encoding/json"
	"errors"
	"strconv"
	"testing"
)

func FuzzDecodeVersions(f *testing.F) {
	for _, s := range []string{
		`{"app_versions": {}}`,
		`{"app_versions":{}}`,
		`{"can-dilate": ["ged"], "dilation-abilities": [{"type": "direct-tcp-v1"}, {"type": "relay-v1"}], "app_versions": {"x": 1}}`,
		`{"abilities": [], "app_versions": {"transfer-v2": {"supported_formats": ["plain", "tar.zst"]}}}`,
		`{}`, `[]`, `null`, `"s"`, `{"app_versions": 7}`, `{"app_versions": null}`,
		`{"a":1} {"b":2}`, `{"a":`, "\xff", `{"app_versions": {"\u00e9": "\ud800"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pv, err := decodeVersions(b)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error not ErrProtocol: %v", err)
			}
			return
		}
		if pv.app == nil || pv.raw == nil {
			t.Fatal("nil maps on success")
		}
		_ = pv.canDilate()
		// What we accept re-encodes as a JSON object.
		out, err := json.Marshal(pv.raw)
		if err != nil || len(out) == 0 || out[0] != '{' {
			t.Fatalf("re-encode: %s %v", out, err)
		}
	})
}

func FuzzEncodeDecodeVersions(f *testing.F) {
	f.Add("k", "v", true)
	f.Add("", "\x00", false)
	f.Fuzz(func(t *testing.T, k, v string, dil bool) {
		var d *DilationVersion
		if dil {
			d = &DilationVersion{CanDilate: []string{"ged"}, Abilities: []map[string]any{{"type": v}}}
		}
		b, err := encodeVersions(map[string]any{k: v}, d)
		if err != nil {
			t.Fatal(err)
		}
		pv, err := decodeVersions(b)
		if err != nil {
			t.Fatalf("decode own encoding %s: %v", b, err)
		}
		if len(pv.app) != 1 {
			t.Fatalf("app_versions %v from %s", pv.app, b)
		}
		if dil && (len(pv.canDilate()) != 1 || pv.canDilate()[0] != "ged") {
			t.Fatalf("can-dilate lost: %s", b)
		}
	})
}

func FuzzParsePakeBody(f *testing.F) {
	for _, s := range []string{
		`{"pake_v1": "53` + "6f00dae87c1be1a73b5922ef431cd8f57879569c222d22b1cd71e8546ab8e6f1" + `"}`,
		`{"pake_v1": ""}`, `{"pake_v1": "zz"}`, `{"pake_v1": 5}`, `{"pake_v2": "00"}`,
		`{}`, `[]`, `null`, ``, `{"pake_v1": "AB"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		msg, err := parsePakeBody(b)
		if err != nil {
			if !errors.Is(err, ErrProtocol) && !errors.Is(err, errNoPakeV1) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if len(msg) > len(b) {
			t.Fatal("decoded more than the input")
		}
	})
}

func FuzzPhaseNumber(f *testing.F) {
	for _, s := range []string{"0", "1", "10", "007", "", "-1", "+1", "1e3", "999999999", "9999999999", "٣", " 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := phaseNumber(s)
		if !ok {
			return
		}
		if n < 0 {
			t.Fatalf("negative %d from %q", n, s)
		}
		for _, c := range s {
			if c < '0' || c > '9' {
				t.Fatalf("accepted non-ASCII-digit %q", s)
			}
		}
		if m, err := strconv.Atoi(s); err != nil || m != n {
			t.Fatalf("%q -> %d", s, n)
		}
	})
}
