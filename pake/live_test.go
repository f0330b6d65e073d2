package pake

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"filippo.io/edwards25519"
	"golang.org/x/text/unicode/norm"
)

// Live tests: every value is compared with what Debian's python3-spake2
// 0.8, magic-wormhole 0.12.0 (wormhole._key, wormhole.util) and PyNaCl
// compute, via testdata/pyhelper.py.

func TestLiveVersions(t *testing.T) {
	py := startPy(t)
	r := py.call(map[string]any{"op": "versions"})
	if r["spake2"] != "0.8" || r["wormhole"] != "0.12.0" {
		t.Fatalf("unexpected python versions %v (tests were written against spake2 0.8, wormhole 0.12.0)", r)
	}
	t.Logf("python peers: %v", r)
}

// TestLiveAppendixA recomputes Appendix A with the live Python libraries.
func TestLiveAppendixA(t *testing.T) {
	py := startPy(t)
	v := loadVectors(t)
	el := py.call(map[string]any{"op": "elements"})
	for name, want := range map[string]string{"symmetric": v.S, "M": v.M, "N": v.N} {
		if el[name] != want {
			t.Errorf("python arbitrary_element(%s) = %v, vector %s", name, el[name], want)
		}
	}
	pw, id := hx(NFC(v.Code)), hx(NFC(v.AppID))
	ra := py.call(map[string]any{"op": "spake_start", "h": 1, "pw": pw, "id": id, "entropy": v.AliceEntropy})
	rb := py.call(map[string]any{"op": "spake_start", "h": 2, "pw": pw, "id": id, "entropy": v.BobEntropy})
	eqHex(t, "python alice msg", ra.bytes(t, "msg"), v.AliceMsg)
	eqHex(t, "python bob msg", rb.bytes(t, "msg"), v.BobMsg)
	ka := py.call(map[string]any{"op": "spake_finish", "h": 1, "msg": v.BobMsg}).bytes(t, "key")
	kb := py.call(map[string]any{"op": "spake_finish", "h": 2, "msg": v.AliceMsg}).bytes(t, "key")
	eqHex(t, "python alice key", ka, v.SharedKey)
	eqHex(t, "python bob key", kb, v.SharedKey)

	dk := func(key, purpose string) []byte {
		return py.call(map[string]any{"op": "derive_key", "key": key, "purpose": hx([]byte(purpose))}).bytes(t, "key")
	}
	eqHex(t, "python verifier", dk(v.SharedKey, VerifierPurpose), v.Verifier)
	for _, d := range v.Derived {
		eqHex(t, "python derive "+d.Purpose, dk(v.SharedKey, d.Purpose), d.Key)
	}
	for _, pk := range v.PhaseKeys {
		got := py.call(map[string]any{"op": "derive_phase_key", "key": v.SharedKey, "side": pk.Side, "phase": pk.Phase}).bytes(t, "key")
		eqHex(t, "python phase key "+pk.Phase, got, pk.Key)
	}
	vb := v.VersionBody
	pkey := py.call(map[string]any{"op": "derive_phase_key", "key": v.SharedKey, "side": vb.Side, "phase": vb.Phase}).bytes(t, "key")
	sealed := py.call(map[string]any{"op": "secretbox_nonce", "key": hx(pkey), "pt": hx([]byte(vb.Plaintext)), "nonce": vb.Nonce}).bytes(t, "ct")
	eqHex(t, "pynacl version body", sealed, vb.Sealed)

	r := v.Rust
	eqHex(t, "python rust derive_key", dk(r.DeriveKey.Key, r.DeriveKey.Purpose), r.DeriveKey.Out)
	for _, pk := range r.PhaseKeys {
		got := py.call(map[string]any{"op": "derive_phase_key", "key": pk.Key, "side": pk.Side, "phase": pk.Phase}).bytes(t, "key")
		eqHex(t, "python rust phase key "+pk.Side, got, pk.Out)
	}
	sb := r.Secretbox
	got := py.call(map[string]any{"op": "secretbox_nonce", "key": sb.Key, "pt": sb.Plaintext, "nonce": sb.Nonce}).bytes(t, "ct")
	eqHex(t, "pynacl rust secretbox", got, sb.Sealed)
}

// liveCodes are passwords and appids for the handshake tests, including
// non-ASCII and not-yet-normalised (NFD) strings.
var liveCodes = []struct{ code, appid string }{
	{"4-purple-sausages", "lothar.com/wormhole/text-or-file-xfer"},
	{"7-opulent-preclude", "lothar.com/wormhole/ssh-add"},
	{"0-", "lothar.com/wormhole/text-or-file-xfer"},
	{"123-aardvark-adroitness-zulu-yucatan", "x"},
	{"", ""},
	{"5-cafe\u0301-ünïcödé", "app/e\u0301t\u00e9"}, // NFD é in both
	{"9-日本語-コード", "例え/アプリ"},
	{strings.Repeat("long-", 200), strings.Repeat("a", 1000)},
}

// TestLiveSPAKE2 runs Go against python-spake2 in both directions: Go and
// Python each build SPAKE2_Symmetric from the same code and appid (Python
// normalising with wormhole.util.to_bytes), swap messages, and must agree.
func TestLiveSPAKE2(t *testing.T) {
	py := startPy(t)
	for i, c := range liveCodes {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			pyPW := py.call(map[string]any{"op": "to_bytes", "s": c.code}).bytes(t, "b")
			pyID := py.call(map[string]any{"op": "to_bytes", "s": c.appid}).bytes(t, "b")
			if !bytes.Equal(pyPW, NFC(c.code)) || !bytes.Equal(pyID, NFC(c.appid)) {
				t.Fatalf("NFC differs from wormhole.util.to_bytes: %x/%x vs %x/%x", NFC(c.code), NFC(c.appid), pyPW, pyID)
			}
			g, err := NewSymmetric(NFC(c.code), NFC(c.appid), nil)
			if err != nil {
				t.Fatal(err)
			}
			pm := py.call(map[string]any{"op": "spake_start", "h": i, "pw": hx(pyPW), "id": hx(pyID)}).bytes(t, "msg")
			pk := py.call(map[string]any{"op": "spake_finish", "h": i, "msg": hx(g.Message())}).bytes(t, "key")
			gk, err := g.Finish(pm)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(gk, pk) {
				t.Fatalf("keys differ: go %x python %x", gk, pk)
			}
		})
	}
}

// TestLiveSPAKE2Deterministic feeds both implementations the same entropy
// for many passwords and compares the messages themselves.
func TestLiveSPAKE2Deterministic(t *testing.T) {
	py := startPy(t)
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	for i := range 20 {
		pw := make([]byte, rng.IntN(40))
		id := make([]byte, rng.IntN(40))
		ent := make([]byte, 64)
		for _, b := range [][]byte{pw, id, ent} {
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
		}
		if i == 0 {
			clear(ent) // scalar 0: message is w*S alone
		}
		if i == 1 {
			for j := range ent {
				ent[j] = 0xff
			}
		}
		g, err := NewSymmetric(pw, id, bytes.NewReader(ent))
		if err != nil {
			t.Fatal(err)
		}
		pm := py.call(map[string]any{"op": "spake_start", "h": i, "pw": hx(pw), "id": hx(id), "entropy": hx(ent)}).bytes(t, "msg")
		if !bytes.Equal(pm, g.Message()) {
			t.Fatalf("case %d: python msg %x, go %x", i, pm, g.Message())
		}
		py.call(map[string]any{"op": "spake_finish", "h": i, "msg": hx(pm)}) // discard state
	}
}

func TestLiveWrongPassword(t *testing.T) {
	py := startPy(t)
	id := NFC(FileTransferAppID)
	for i, pair := range [][2]string{
		{"4-purple-sausages", "4-purple-sausage"},
		{"4-purple-sausages", "5-purple-sausages"},
		{"4-purple-sausages", "4-Purple-sausages"}, // case-sensitive
	} {
		g, _ := NewSymmetric(NFC(pair[0]), id, nil)
		pm := py.call(map[string]any{"op": "spake_start", "h": i, "pw": hx(NFC(pair[1])), "id": hx(id)}).bytes(t, "msg")
		pk := py.call(map[string]any{"op": "spake_finish", "h": i, "msg": hx(g.Message())}).bytes(t, "key")
		gk, err := g.Finish(pm)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(gk, pk) {
			t.Errorf("%q vs %q: same key %x", pair[0], pair[1], gk)
		}
		// And the version message sealed with Python's key does not open.
		ct := py.call(map[string]any{"op": "encrypt", "key": hx(DerivePhaseKey(pk, "aaaaaaaaaa", "version")), "pt": hx([]byte(`{"app_versions": {}}`))}).bytes(t, "ct")
		if _, err := Open(DerivePhaseKey(gk, "aaaaaaaaaa", "version"), ct); !errors.Is(err, ErrDecrypt) {
			t.Errorf("wrong-password version opened: %v", err)
		}
	}
}

// TestLiveKeyMachine drives magic-wormhole 0.12's own _key.Key state machine
// (the code path the real client uses): it builds the "pake" body, takes
// ours, computes the key and sends an encrypted "version" message.
func TestLiveKeyMachine(t *testing.T) {
	py := startPy(t)
	const pySide, goSide = "0123456789", "abcdef0123"
	for i, c := range liveCodes[:6] {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			r := py.call(map[string]any{"op": "key_start", "h": i, "appid": c.appid, "side": pySide, "code": c.code})
			if r["phase"] != "pake" {
				t.Fatalf("python queued phase %v, want pake", r["phase"])
			}
			var body struct {
				PakeV1 string `json:"pake_v1"`
			}
			if err := json.Unmarshal(r.bytes(t, "body"), &body); err != nil {
				t.Fatal(err)
			}
			pyMsg, err := hex.DecodeString(body.PakeV1)
			if err != nil {
				t.Fatal(err)
			}
			g, _ := NewSymmetric(NFC(c.code), NFC(c.appid), nil)
			goBody := fmt.Sprintf(`{"pake_v1": "%s"}`, hx(g.Message()))
			r = py.call(map[string]any{"op": "key_pake", "h": i, "body": hx([]byte(goBody))})
			pyKey := r.bytes(t, "key")
			if r["phase"] != "version" {
				t.Fatalf("python queued phase %v, want version", r["phase"])
			}
			gk, err := g.Finish(pyMsg)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(gk, pyKey) {
				t.Fatalf("key: go %x python %x", gk, pyKey)
			}
			pt, err := Open(DerivePhaseKey(gk, pySide, "version"), r.bytes(t, "body"))
			if err != nil {
				t.Fatal(err)
			}
			if string(pt) != `{"app_versions": {}}` {
				t.Fatalf("python version plaintext %q", pt)
			}
			// Go's version message opens with Python's derive_phase_key + decrypt_data.
			ct, err := Seal(DerivePhaseKey(gk, goSide, "version"), pt, nil)
			if err != nil {
				t.Fatal(err)
			}
			pk := py.call(map[string]any{"op": "derive_phase_key", "key": hx(pyKey), "side": goSide, "phase": "version"}).bytes(t, "key")
			back := py.call(map[string]any{"op": "decrypt", "key": hx(pk), "ct": hx(ct)}).bytes(t, "pt")
			if !bytes.Equal(back, pt) {
				t.Fatalf("python decrypted %q", back)
			}
		})
	}
	// A pake body without pake_v1 makes Python scared (WrongPasswordError path).
	py.call(map[string]any{"op": "key_start", "h": 99, "appid": "a", "side": pySide, "code": "1-a-b"})
	if r := py.call(map[string]any{"op": "key_pake", "h": 99, "body": hx([]byte(`{"pake_v2": "00"}`))}); r["scared"] != true {
		t.Fatalf("python not scared by a body without pake_v1: %v", r)
	}
}

func TestLiveSecretbox(t *testing.T) {
	py := startPy(t)
	rng := rand.New(rand.NewChaCha8([32]byte{2}))
	for _, n := range []int{0, 1, 15, 16, 17, 1000, 65536} {
		key := make([]byte, 32)
		pt := make([]byte, n)
		for _, b := range [][]byte{key, pt} {
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
		}
		ct, err := Seal(key, pt, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := py.call(map[string]any{"op": "decrypt", "key": hx(key), "ct": hx(ct)}).bytes(t, "pt")
		if !bytes.Equal(got, pt) {
			t.Fatalf("n=%d: python decrypted Go's box wrongly", n)
		}
		pct := py.call(map[string]any{"op": "encrypt", "key": hx(key), "pt": hx(pt)}).bytes(t, "ct")
		if len(pct) != n+Overhead {
			t.Fatalf("n=%d: python ciphertext length %d", n, len(pct))
		}
		back, err := Open(key, pct)
		if err != nil || !bytes.Equal(back, pt) {
			t.Fatalf("n=%d: Go Open of python's box: %v", n, err)
		}
		// Tampering is caught on both sides.
		ct[len(ct)-1] ^= 1
		if r := py.call(map[string]any{"op": "decrypt", "key": hx(key), "ct": hx(ct)}); r["error"] != "CryptoError" {
			t.Fatalf("python accepted a tampered box: %v", r)
		}
		pct[NonceSize] ^= 1
		if _, err := Open(key, pct); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("Go accepted a tampered box: %v", err)
		}
	}
}

func TestLiveDerive(t *testing.T) {
	py := startPy(t)
	keys := [][]byte{
		make([]byte, 32),
		[]byte("key"),
		bytes.Repeat([]byte{0xa5}, 32),
		{},
	}
	purposes := []string{
		"", "wormhole:verifier", DilationPurpose, TransitKeyPurpose,
		"ключ", "e\u0301", "\u00e9", "日本語/purpose", "\x00\xff raw",
		strings.Repeat("p", 5000),
	}
	for _, key := range keys {
		for _, p := range purposes {
			for _, n := range []int{1, 16, 32, 64, 100} {
				got := py.call(map[string]any{"op": "derive_key", "key": hx(key), "purpose": hx([]byte(p)), "length": n}).bytes(t, "key")
				if g := DeriveKey(key, p, n); !bytes.Equal(g, got) {
					t.Errorf("DeriveKey(%x, %q, %d) = %x, python %x", key, p, n, g, got)
				}
			}
		}
		// App-level derive_key: the purpose is NFC'd by the caller, like
		// Python's Wormhole.derive_key(to_bytes(purpose)).
		nfd := "caf" + "e\u0301"
		pyb := py.call(map[string]any{"op": "to_bytes", "s": nfd}).bytes(t, "b")
		got := py.call(map[string]any{"op": "derive_key", "key": hx(key), "purpose": hx(pyb)}).bytes(t, "key")
		if g := DeriveKey(key, string(NFC(nfd)), 32); !bytes.Equal(g, got) {
			t.Errorf("NFC purpose: %x vs %x", g, got)
		}
		if !norm.NFC.IsNormal(NFC(nfd)) || string(NFC(nfd)) == nfd {
			t.Errorf("NFC(%q) = %q", nfd, NFC(nfd))
		}
		for _, sp := range [][2]string{
			{"aaaaaaaaaa", "version"}, {"0123456789", "0"}, {"0123456789", "12"},
			{"ffffffffff", "pake"}, {"side1", "dilate-0"}, {"", ""},
		} {
			got := py.call(map[string]any{"op": "derive_phase_key", "key": hx(key), "side": sp[0], "phase": sp[1]}).bytes(t, "key")
			if g := DerivePhaseKey(key, sp[0], sp[1]); !bytes.Equal(g, got) {
				t.Errorf("DerivePhaseKey(%x, %q, %q) = %x, python %x", key, sp[0], sp[1], g, got)
			}
		}
	}
}

// TestLiveBadMessages gives both implementations the same hostile peer
// messages. Where Python's behaviour differs from Go's, the test asserts
// the observed Python behaviour too, so a change shows up here.
func TestLiveBadMessages(t *testing.T) {
	py := startPy(t)
	peer, _ := NewSymmetric([]byte("pw"), nil, nil)
	good := peer.Message()
	torsion8 := unhex(t, "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
	t8, _ := new(edwards25519.Point).SetBytes(torsion8)
	mixed := new(edwards25519.Point).Add(edwards25519.NewGeneratorPoint(), t8).Bytes()
	nonCanonicalIdentity := unhex(t, "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	notOnCurve := make([]byte, 32)
	notOnCurve[0] = 2

	cases := []struct {
		name     string
		msg      []byte
		pyAccept bool   // python-spake2 0.8 returns a key
		pyError  string // else the exception class it raises
	}{
		{"side A", append([]byte{'A'}, good[1:]...), false, "OffSides"},
		{"side B", append([]byte{'B'}, good[1:]...), false, "OffSides"},
		{"side x", append([]byte{'x'}, good[1:]...), false, "AssertionError"},
		{"identity", append([]byte{'S'}, edwards25519.NewIdentityPoint().Bytes()...), false, "ValueError"},
		{"order 8", append([]byte{'S'}, torsion8...), false, "ValueError"},
		{"mixed order", append([]byte{'S'}, mixed...), false, "ValueError"},
		{"not on curve", append([]byte{'S'}, notOnCurve...), false, "NotOnCurve"},
		{"empty", nil, false, "AssertionError"},
		// Python does not check the length: decodepoint reads s[:32] and the
		// transcript hashes the whole tail. Go requires exactly 33 bytes.
		{"trailing byte", append(bytes.Clone(good), 0), true, ""},
		// Python only rejects the canonical identity encoding (see
		// TestNonCanonicalEncodings). Go rejects every identity encoding.
		{"non-canonical identity", append([]byte{'S'}, nonCanonicalIdentity...), true, ""},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, _ := NewSymmetric([]byte("pw"), nil, nil)
			if k, err := g.Finish(c.msg); !errors.Is(err, ErrBadMessage) || k != nil {
				t.Fatalf("go Finish = %x, %v; want ErrBadMessage", k, err)
			}
			py.call(map[string]any{"op": "spake_start", "h": i, "pw": hx([]byte("pw")), "id": ""})
			r := py.call(map[string]any{"op": "spake_finish", "h": i, "msg": hx(c.msg)})
			if accepted := r.err() == ""; accepted != c.pyAccept {
				t.Fatalf("python accepted=%v (%v), expected %v", accepted, r, c.pyAccept)
			}
			if !c.pyAccept && r["error"] != c.pyError {
				t.Fatalf("python raised %v, expected %s", r.err(), c.pyError)
			}
		})
	}
	// Reflection: both refuse their own message.
	g, _ := NewSymmetric([]byte("pw"), nil, nil)
	if _, err := g.Finish(g.Message()); !errors.Is(err, ErrReflection) {
		t.Fatalf("go reflection: %v", err)
	}
	m := py.call(map[string]any{"op": "spake_start", "h": 100, "pw": hx([]byte("pw")), "id": ""}).bytes(t, "msg")
	if r := py.call(map[string]any{"op": "spake_finish", "h": 100, "msg": hx(m)}); r["error"] != "ReflectionThwarted" {
		t.Fatalf("python reflection: %v", r)
	}
}
