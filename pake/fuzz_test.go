package pake

import (
	"bytes"
	"errors"
	"testing"

	"filippo.io/edwards25519"
)

// FuzzFinish feeds arbitrary peer messages to Finish: it must never panic,
// must return either a 32-byte key or an ErrBadMessage/ErrReflection error,
// and must reject anything that is not 'S' plus a prime-order point.
func FuzzFinish(f *testing.F) {
	peer, _ := NewSymmetric([]byte("pw"), []byte("id"), bytes.NewReader(bytes.Repeat([]byte{1}, 64)))
	good := peer.Message()
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte("S"))
	f.Add(append([]byte{'A'}, good[1:]...))
	f.Add(append([]byte{'S'}, edwards25519.NewIdentityPoint().Bytes()...))
	f.Add(append([]byte{'S'}, bytes.Repeat([]byte{0xff}, 32)...))
	f.Add(append(bytes.Clone(good), 0))
	f.Fuzz(func(t *testing.T, msg []byte) {
		s, err := NewSymmetric([]byte("pw"), []byte("id"), bytes.NewReader(bytes.Repeat([]byte{2}, 64)))
		if err != nil {
			t.Fatal(err)
		}
		key, err := s.Finish(msg)
		if err != nil {
			if key != nil {
				t.Fatal("key returned with an error")
			}
			if !errors.Is(err, ErrBadMessage) && !errors.Is(err, ErrReflection) {
				t.Fatalf("unexpected error type: %v", err)
			}
			return
		}
		if len(key) != 32 {
			t.Fatalf("key length %d", len(key))
		}
		// Accepted: must be well formed and a prime-order point.
		if len(msg) != MessageSize || msg[0] != 'S' {
			t.Fatalf("accepted malformed message %x", msg)
		}
		p, perr := new(edwards25519.Point).SetBytes(msg[1:])
		if perr != nil || p.Equal(edwards25519.NewIdentityPoint()) == 1 {
			t.Fatalf("accepted non-point or identity %x", msg)
		}
		// Finish with the same message is deterministic for this state.
		s2, _ := NewSymmetric([]byte("pw"), []byte("id"), bytes.NewReader(bytes.Repeat([]byte{2}, 64)))
		key2, err := s2.Finish(msg)
		if err != nil || !bytes.Equal(key, key2) {
			t.Fatalf("nondeterministic: %x %x %v", key, key2, err)
		}
	})
}

// FuzzOpen feeds arbitrary ciphertexts to Open: no panic, and only
// ErrDecrypt for anything not produced by Seal with the key; a box built
// from the fuzz input as plaintext must round-trip.
func FuzzOpen(f *testing.F) {
	key := bytes.Repeat([]byte{9}, 32)
	sealed, _ := Seal(key, []byte(`{"app_versions": {}}`), nil)
	f.Add(sealed)
	f.Add([]byte{})
	f.Add(make([]byte, Overhead-1))
	f.Add(make([]byte, Overhead))
	f.Add(make([]byte, Overhead+10))
	f.Fuzz(func(t *testing.T, data []byte) {
		pt, err := Open(key, data)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) || pt != nil {
				t.Fatalf("Open: %x, %v", pt, err)
			}
		} else if len(pt) != len(data)-Overhead {
			t.Fatalf("plaintext length %d for %d bytes", len(pt), len(data))
		}
		ct, err := Seal(key, data, nil)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Open(key, ct)
		if err != nil || !bytes.Equal(back, data) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
