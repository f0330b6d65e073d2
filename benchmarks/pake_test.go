package benchmarks

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/wormhole-go/wormhole/pake"
)

// BenchmarkSPAKE2Handshake measures one complete symmetric SPAKE2 exchange
// (both sides: two NewSymmetric and two Finish) per op.
func BenchmarkSPAKE2Handshake(b *testing.B) {
	pw := pake.NFC("4-purple-sausages")
	id := pake.NFC(pake.FileTransferAppID)
	b.ReportAllocs()
	for b.Loop() {
		a, err := pake.NewSymmetric(pw, id, nil)
		if err != nil {
			b.Fatal(err)
		}
		c, err := pake.NewSymmetric(pw, id, nil)
		if err != nil {
			b.Fatal(err)
		}
		ka, err := a.Finish(c.Message())
		if err != nil {
			b.Fatal(err)
		}
		kc, err := c.Finish(a.Message())
		if err != nil {
			b.Fatal(err)
		}
		if !bytes.Equal(ka, kc) {
			b.Fatal("keys differ")
		}
	}
}

// BenchmarkSealOpen measures Seal followed by Open of one message.
func BenchmarkSealOpen(b *testing.B) {
	key := bytes.Repeat([]byte{7}, pake.KeySize)
	for _, size := range []int{64, 1 << 10, 16 << 10, 256 << 10} {
		b.Run(pakeSizeName(size), func(b *testing.B) {
			pt := bytes.Repeat([]byte{'x'}, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				ct, err := pake.Seal(key, pt, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := pake.Open(key, ct); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDerivePhaseKey measures the per-message key derivation.
func BenchmarkDerivePhaseKey(b *testing.B) {
	key := bytes.Repeat([]byte{7}, pake.KeySize)
	b.ReportAllocs()
	for b.Loop() {
		pake.DerivePhaseKey(key, "0123456789", "12")
	}
}

// pakeSizeName names a sub-benchmark by payload size (unique name: the
// benchmarks package is shared by every layer).
func pakeSizeName(n int) string {
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}
