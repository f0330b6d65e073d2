package pake

import (
	"bytes"
	"testing"
)

func TestDeriveKeyLengths(t *testing.T) {
	key := []byte("k")
	if got := DeriveKey(key, "p", 0); len(got) != 0 {
		t.Fatalf("length 0 gave %d bytes", len(got))
	}
	long := DeriveKey(key, "p", MaxDeriveLength)
	if len(long) != MaxDeriveLength {
		t.Fatalf("max length gave %d bytes", len(long))
	}
	// HKDF output is a stream: shorter outputs are prefixes of longer ones.
	if !bytes.Equal(DeriveKey(key, "p", 100), long[:100]) {
		t.Fatal("DeriveKey(100) is not a prefix of DeriveKey(max)")
	}
	if bytes.Equal(DeriveKey(key, "p", 32), DeriveKey(key, "q", 32)) {
		t.Fatal("different purposes gave the same key")
	}
	for _, n := range []int{-1, MaxDeriveLength + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("DeriveKey length %d did not panic", n)
				}
			}()
			DeriveKey(key, "p", n)
		}()
	}
}

func TestDerivePhaseKeyDistinct(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	seen := map[string]string{}
	for _, side := range []string{"aaaaaaaaaa", "bbbbbbbbbb"} {
		for _, phase := range []string{"pake", "version", "0", "1", "dilate-0"} {
			k := string(DerivePhaseKey(key, side, phase))
			if prev, ok := seen[k]; ok {
				t.Fatalf("%s/%s collides with %s", side, phase, prev)
			}
			seen[k] = side + "/" + phase
		}
	}
	// The sender's side is part of the key: the side/phase boundary is
	// hashed, so "ab"+"c" differs from "a"+"bc".
	if bytes.Equal(DerivePhaseKey(key, "ab", "c"), DerivePhaseKey(key, "a", "bc")) {
		t.Fatal("side/phase boundary not separated")
	}
}

func TestPasswordNotAliased(t *testing.T) {
	pw := []byte("4-purple-sausages")
	id := []byte("appid")
	a, _ := NewSymmetric(pw, id, nil)
	b, _ := NewSymmetric([]byte("4-purple-sausages"), []byte("appid"), nil)
	pw[0], id[0] = 'X', 'X' // caller reuses its buffers
	ka, err1 := a.Finish(b.Message())
	kb, err2 := b.Finish(a.Message())
	if err1 != nil || err2 != nil || !bytes.Equal(ka, kb) {
		t.Fatalf("keys differ after caller modified its password buffer: %v %v", err1, err2)
	}
}
