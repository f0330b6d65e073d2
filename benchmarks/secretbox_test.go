package benchmarks

import (
	"fmt"
	"testing"

	xbox "golang.org/x/crypto/nacl/secretbox"

	"github.com/wormhole-go/wormhole/internal/secretbox"
)

// BenchmarkSecretbox compares internal/secretbox (AVX-512 XSalsa20 where
// the CPU has it) with x/crypto's nacl/secretbox, Seal and Open, for
// Transit's 16 KiB records and 64 KiB. MB/s is plaintext bytes; both
// should report 0 allocs with room in out. cpu-ns/B (process CPU time
// per byte) is the steadier figure on a shared machine.
func BenchmarkSecretbox(b *testing.B) {
	type sealFn func(out, msg []byte, n *[24]byte, k *[32]byte) []byte
	type openFn func(out, box []byte, n *[24]byte, k *[32]byte) ([]byte, bool)
	impls := []struct {
		name string
		seal sealFn
		open openFn
	}{
		{"internal", secretbox.Seal, secretbox.Open},
		{"xcrypto", xbox.Seal, xbox.Open},
	}
	var key [32]byte
	var nonce [24]byte
	for _, size := range []int{16 << 10, 64 << 10} {
		msg := make([]byte, size)
		box := xbox.Seal(nil, msg, &nonce, &key)
		for _, im := range impls {
			b.Run(fmt.Sprintf("Seal/%s/%dKiB", im.name, size>>10), func(b *testing.B) {
				out := make([]byte, 0, size+secretbox.Overhead)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				cpu0 := transitCPU()
				for b.Loop() {
					im.seal(out, msg, &nonce, &key)
				}
				reportCPU(b, cpu0, int64(b.N)*int64(size))
			})
			b.Run(fmt.Sprintf("Open/%s/%dKiB", im.name, size>>10), func(b *testing.B) {
				out := make([]byte, 0, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				cpu0 := transitCPU()
				for b.Loop() {
					if _, ok := im.open(out, box, &nonce, &key); !ok {
						b.Fatal("open failed")
					}
				}
				reportCPU(b, cpu0, int64(b.N)*int64(size))
			})
		}
	}
}
