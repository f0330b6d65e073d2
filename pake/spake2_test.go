package pake

import (
	"bytes"
	"errors"
	"testing"

	"filippo.io/edwards25519"
)

func pair(t *testing.T, pwA, pwB, id string) ([]byte, []byte) {
	t.Helper()
	a, err := NewSymmetric([]byte(pwA), []byte(id), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSymmetric([]byte(pwB), []byte(id), nil)
	if err != nil {
		t.Fatal(err)
	}
	ka, err := a.Finish(b.Message())
	if err != nil {
		t.Fatal(err)
	}
	kb, err := b.Finish(a.Message())
	if err != nil {
		t.Fatal(err)
	}
	if len(ka) != 32 || len(kb) != 32 {
		t.Fatalf("key lengths %d %d", len(ka), len(kb))
	}
	return ka, kb
}

func TestHandshakeRandom(t *testing.T) {
	ka, kb := pair(t, "7-opulent-preclude", "7-opulent-preclude", "appid")
	if !bytes.Equal(ka, kb) {
		t.Fatalf("keys differ: %x %x", ka, kb)
	}
	ka2, _ := pair(t, "7-opulent-preclude", "7-opulent-preclude", "appid")
	if bytes.Equal(ka, ka2) {
		t.Fatal("two runs with fresh randomness gave the same key")
	}
}

func TestWrongPassword(t *testing.T) {
	ka, kb := pair(t, "7-opulent-preclude", "7-opulent-preclud", "appid")
	if bytes.Equal(ka, kb) {
		t.Fatal("different passwords gave the same key")
	}
}

func TestWrongAppID(t *testing.T) {
	a, _ := NewSymmetric([]byte("1-a-b"), []byte("app1"), nil)
	b, _ := NewSymmetric([]byte("1-a-b"), []byte("app2"), nil)
	ka, err1 := a.Finish(b.Message())
	kb, err2 := b.Finish(a.Message())
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if bytes.Equal(ka, kb) {
		t.Fatal("different appids gave the same key")
	}
}

func TestMessageIsCopy(t *testing.T) {
	a, _ := NewSymmetric([]byte("pw"), nil, nil)
	m := a.Message()
	if len(m) != MessageSize || m[0] != 'S' {
		t.Fatalf("message %x", m)
	}
	m[5] ^= 0xff
	if bytes.Equal(m, a.Message()) {
		t.Fatal("Message returned internal storage")
	}
}

func TestFinishErrors(t *testing.T) {
	peer, _ := NewSymmetric([]byte("pw"), nil, nil)
	good := peer.Message()
	identity := append([]byte{'S'}, edwards25519.NewIdentityPoint().Bytes()...)
	// A point of order 2 (0, -1) and an order-8 torsion point.
	order2 := append([]byte{'S'}, unhex(t, "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")...)
	order8 := append([]byte{'S'}, unhex(t, "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")...)
	// Base + an order-8 point: on the curve, not in the prime-order subgroup.
	t8, err := new(edwards25519.Point).SetBytes(order8[1:])
	if err != nil {
		t.Fatal(err)
	}
	mixed := append([]byte{'S'}, new(edwards25519.Point).Add(edwards25519.NewGeneratorPoint(), t8).Bytes()...)
	// y = 2 is not on the curve.
	notOnCurve := make([]byte, 33)
	notOnCurve[0], notOnCurve[1] = 'S', 2

	cases := []struct {
		name string
		msg  []byte
		want error
	}{
		{"empty", nil, ErrBadMessage},
		{"short", good[:32], ErrBadMessage},
		{"long", append(bytes.Clone(good), 0), ErrBadMessage},
		{"side A", append([]byte{'A'}, good[1:]...), ErrBadMessage},
		{"side B", append([]byte{'B'}, good[1:]...), ErrBadMessage},
		{"side x", append([]byte{'x'}, good[1:]...), ErrBadMessage},
		{"identity", identity, ErrBadMessage},
		{"order 2", order2, ErrBadMessage},
		{"order 8", order8, ErrBadMessage},
		{"mixed order", mixed, ErrBadMessage},
		{"not on curve", notOnCurve, ErrBadMessage},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := NewSymmetric([]byte("pw"), nil, nil)
			k, err := s.Finish(c.msg)
			if !errors.Is(err, c.want) || k != nil {
				t.Fatalf("Finish = %x, %v; want %v", k, err, c.want)
			}
			if _, err := s.Finish(good); !errors.Is(err, ErrFinished) {
				t.Fatalf("second Finish: %v, want ErrFinished", err)
			}
		})
	}
	s, _ := NewSymmetric([]byte("pw"), nil, nil)
	if _, err := s.Finish(s.Message()); !errors.Is(err, ErrReflection) {
		t.Fatalf("reflection: %v", err)
	}
}

// Non-canonical encodings (y+Q with y < 19, either sign bit). Run through
// python-spake2 0.8's bytes_to_element, all are rejected except y=1 (the
// identity), which Python accepts because it only compares the raw bytes
// with the canonical identity encoding. Go deliberately rejects it too: it
// is the identity, which python-spake2 means to refuse, and no honest peer
// can produce it. Every other prime-order element has a canonical-only
// encoding, so the raw-vs-canonical distinction in Python's reflection
// check and transcript never matters for accepted messages.
func TestNonCanonicalEncodings(t *testing.T) {
	for y := 0; y < 19; y++ {
		for sign := 0; sign < 2; sign++ {
			enc := make([]byte, 32)
			// y + Q = y + 2^255 - 19, little-endian
			enc[0] = byte(0xed + y) // low byte of Q is 0xed; no carry for y < 19
			for i := 1; i < 31; i++ {
				enc[i] = 0xff
			}
			enc[31] = 0x7f | byte(sign<<7)
			if _, err := decodeElement(enc); err == nil {
				t.Errorf("y=%d sign=%d (%x): accepted", y, sign, enc)
			}
			s, _ := NewSymmetric([]byte("pw"), nil, nil)
			if _, err := s.Finish(append([]byte{'S'}, enc...)); !errors.Is(err, ErrBadMessage) {
				t.Errorf("y=%d sign=%d: Finish error %v", y, sign, err)
			}
		}
	}
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

func TestRandFailure(t *testing.T) {
	if _, err := NewSymmetric([]byte("pw"), nil, failReader{}); err == nil {
		t.Fatal("NewSymmetric with failing rand succeeded")
	}
	if _, err := NewSymmetric([]byte("pw"), nil, bytes.NewReader(make([]byte, 63))); err == nil {
		t.Fatal("NewSymmetric with 63 bytes of rand succeeded")
	}
	if _, err := Seal(make([]byte, 32), nil, failReader{}); err == nil {
		t.Fatal("Seal with failing rand succeeded")
	}
}
