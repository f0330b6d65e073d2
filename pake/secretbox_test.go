package pake

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealOpen(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	for _, n := range []int{0, 1, 16, 1000} {
		pt := bytes.Repeat([]byte{'x'}, n)
		ct, err := Seal(key, pt, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != n+Overhead {
			t.Fatalf("len %d, want %d", len(ct), n+Overhead)
		}
		got, err := Open(key, ct)
		if err != nil || !bytes.Equal(got, pt) || got == nil {
			t.Fatalf("Open = %q, %v", got, err)
		}
		ct2, _ := Seal(key, pt, nil)
		if bytes.Equal(ct[:NonceSize], ct2[:NonceSize]) {
			t.Fatal("nonce repeated")
		}
		for i := range ct {
			bad := bytes.Clone(ct)
			bad[i] ^= 1
			if _, err := Open(key, bad); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("flipped byte %d: %v", i, err)
			}
		}
	}
	other := bytes.Repeat([]byte{8}, 32)
	ct, _ := Seal(key, []byte("hi"), nil)
	if _, err := Open(other, ct); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong key: %v", err)
	}
	for n := range Overhead {
		if _, err := Open(key, make([]byte, n)); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("short %d: %v", n, err)
		}
	}
	if _, err := Seal(key[:31], nil, nil); !errors.Is(err, ErrKeySize) {
		t.Fatalf("short key Seal: %v", err)
	}
	if _, err := Open(key[:31], ct); !errors.Is(err, ErrKeySize) {
		t.Fatalf("short key Open: %v", err)
	}
}
