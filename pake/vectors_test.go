package pake

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"filippo.io/edwards25519"
)

// vectors mirrors testdata/vectors.json (Appendix A of the protocol digest).
type vectors struct {
	Code, AppID   string
	S, M, N       string
	PwHKDF48      string `json:"pw_hkdf48"`
	PwScalarLE    string `json:"pw_scalar_le"`
	AliceSeed     string `json:"alice_seed"`
	AliceEntropy  string `json:"alice_entropy"`
	AliceScalarLE string `json:"alice_scalar_le"`
	AliceMsg      string `json:"alice_msg"`
	BobSeed       string `json:"bob_seed"`
	BobEntropy    string `json:"bob_entropy"`
	BobScalarLE   string `json:"bob_scalar_le"`
	BobMsg        string `json:"bob_msg"`
	SharedKey     string `json:"shared_key"`
	PakePlaintext string `json:"pake_plaintext"`
	PakeBodyHex   string `json:"pake_body_hex"`
	Verifier      string
	PhaseKeys     []struct{ Side, Phase, Key string }                    `json:"phase_keys"`
	VersionBody   struct{ Side, Phase, Plaintext, Nonce, Sealed string } `json:"version_body"`
	Derived       []struct{ Purpose, Key string }
	Rust          struct {
		DeriveKey struct{ Key, Purpose, Out string }       `json:"derive_key"`
		PhaseKeys []struct{ Key, Side, Phase, Out string } `json:"phase_keys"`
		Secretbox struct{ Key, Nonce, Plaintext, Sealed string }
	}
}

func loadVectors(t testing.TB) *vectors {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if v.Code == "" || v.SharedKey == "" || len(v.PhaseKeys) == 0 || len(v.Rust.PhaseKeys) == 0 {
		t.Fatal("vectors.json did not decode fully")
	}
	return &v
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func eqHex(t testing.TB, what string, got []byte, want string) {
	t.Helper()
	if g := hex.EncodeToString(got); g != want {
		t.Errorf("%s:\n got %s\nwant %s", what, g, want)
	}
}

// appendixEntropy is SHA256(seed||be32(0)) || SHA256(seed||be32(1)).
func appendixEntropy(seed string) []byte {
	var out []byte
	for i := uint32(0); i < 2; i++ {
		h := sha256.New()
		h.Write([]byte(seed))
		binary.Write(h, binary.BigEndian, i)
		out = h.Sum(out)
	}
	return out
}

func TestVectorElements(t *testing.T) {
	v := loadVectors(t)
	eqHex(t, "S", symmetricS().Bytes(), v.S)
	eqHex(t, "S recomputed", arbitraryElement([]byte("symmetric")).Bytes(), v.S)
	eqHex(t, "M", arbitraryElement([]byte("M")).Bytes(), v.M)
	eqHex(t, "N", arbitraryElement([]byte("N")).Bytes(), v.N)
}

func TestVectorPasswordScalar(t *testing.T) {
	v := loadVectors(t)
	pw := NFC(v.Code)
	eqHex(t, "HKDF(pw)", hkdfExpand(pw, []byte("SPAKE2 pw"), 48), v.PwHKDF48)
	eqHex(t, "pw scalar", passwordScalar(pw).Bytes(), v.PwScalarLE)
}

func TestVectorHandshake(t *testing.T) {
	v := loadVectors(t)
	eqHex(t, "alice entropy", appendixEntropy(v.AliceSeed), v.AliceEntropy)
	eqHex(t, "bob entropy", appendixEntropy(v.BobSeed), v.BobEntropy)
	eqHex(t, "alice x", scalarFromBigEndian(unhex(t, v.AliceEntropy)).Bytes(), v.AliceScalarLE)
	eqHex(t, "bob y", scalarFromBigEndian(unhex(t, v.BobEntropy)).Bytes(), v.BobScalarLE)

	pw, id := NFC(v.Code), NFC(v.AppID)
	a, err := NewSymmetric(pw, id, bytes.NewReader(unhex(t, v.AliceEntropy)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSymmetric(pw, id, bytes.NewReader(unhex(t, v.BobEntropy)))
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "alice msg", a.Message(), v.AliceMsg)
	eqHex(t, "bob msg", b.Message(), v.BobMsg)
	ka, err := a.Finish(b.Message())
	if err != nil {
		t.Fatal(err)
	}
	kb, err := b.Finish(a.Message())
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "alice key", ka, v.SharedKey)
	eqHex(t, "bob key", kb, v.SharedKey)

	// The pake phase body: hex(JSON) of hex(message), two levels of hex.
	body, _ := json.Marshal(map[string]string{"pake_v1": hex.EncodeToString(a.Message())})
	// Python's json.dumps puts a space after ':'.
	body = bytes.Replace(body, []byte(`":"`), []byte(`": "`), 1)
	if string(body) != v.PakePlaintext {
		t.Errorf("pake plaintext %s, want %s", body, v.PakePlaintext)
	}
	eqHex(t, "pake body", []byte(v.PakePlaintext), v.PakeBodyHex)
}

func TestVectorKeySchedule(t *testing.T) {
	v := loadVectors(t)
	key := unhex(t, v.SharedKey)
	eqHex(t, "verifier", Verifier(key), v.Verifier)
	eqHex(t, "verifier via DeriveKey", DeriveKey(key, VerifierPurpose, 32), v.Verifier)
	for _, pk := range v.PhaseKeys {
		eqHex(t, "phase key "+pk.Side+"/"+pk.Phase, DerivePhaseKey(key, pk.Side, pk.Phase), pk.Key)
	}
	for _, d := range v.Derived {
		eqHex(t, "derive "+d.Purpose, DeriveKey(key, d.Purpose, 32), d.Key)
	}
	eqHex(t, "transit purpose", DeriveKey(key, TransitKeyPurpose, 32), v.Derived[0].Key)
	eqHex(t, "dilation purpose", DeriveKey(key, DilationPurpose, 32), v.Derived[1].Key)

	vb := v.VersionBody
	pkey := DerivePhaseKey(key, vb.Side, vb.Phase)
	sealed, err := Seal(pkey, []byte(vb.Plaintext), bytes.NewReader(unhex(t, vb.Nonce)))
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "version body", sealed, vb.Sealed)
	pt, err := Open(pkey, unhex(t, vb.Sealed))
	if err != nil || string(pt) != vb.Plaintext {
		t.Errorf("Open(version body) = %q, %v", pt, err)
	}
}

func TestVectorRust(t *testing.T) {
	v := loadVectors(t)
	r := v.Rust
	eqHex(t, "rust derive_key", DeriveKey(unhex(t, r.DeriveKey.Key), r.DeriveKey.Purpose, 32), r.DeriveKey.Out)
	for _, pk := range r.PhaseKeys {
		eqHex(t, "rust phase key "+pk.Side, DerivePhaseKey(unhex(t, pk.Key), pk.Side, pk.Phase), pk.Out)
	}
	sb := r.Secretbox
	sealed, err := Seal(unhex(t, sb.Key), unhex(t, sb.Plaintext), bytes.NewReader(unhex(t, sb.Nonce)))
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "rust secretbox", sealed, sb.Sealed)
	pt, err := Open(unhex(t, sb.Key), unhex(t, sb.Sealed))
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "rust secretbox open", pt, sb.Plaintext)
}

// Sanity: the base point encoding quoted in the digest.
func TestBaseEncoding(t *testing.T) {
	eqHex(t, "Base", edwards25519.NewGeneratorPoint().Bytes(),
		"5866666666666666666666666666666666666666666666666666666666666666")
}
