package benchmarks

import (
	"crypto/rand"
	"fmt"
	"io"
	"syscall"
	"testing"

	"github.com/wormhole-go/wormhole/transit"
)

// transitPair returns two record connections over a loopback TCP pair,
// keyed like a real sender/receiver.
func transitPair(b *testing.B) (*transit.Conn, *transit.Conn) {
	key := make([]byte, 32)
	rand.Read(key)
	a, c := tcpPair(b)
	s := transit.NewConn(a, transit.SenderRecordKey(key), transit.ReceiverRecordKey(key))
	r := transit.NewConn(c, transit.ReceiverRecordKey(key), transit.SenderRecordKey(key))
	return s, r
}

// transitCPU is this process's user+system CPU time in nanoseconds.
func transitCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// reportCPU adds "cpu-ns/B": CPU time of both ends (this process) per
// payload byte since cpu0, the figure that matters on a shared machine.
func reportCPU(b *testing.B, cpu0 int64, bytes int64) {
	b.ReportMetric(float64(transitCPU()-cpu0)/float64(bytes), "cpu-ns/B")
}

// BenchmarkTransitRecords measures SendRecord -> ReceiveRecord over loopback
// TCP (encrypt, frame, send, receive, nonce check, decrypt) per record size.
// 16 KiB is what Python's sender uses.
func BenchmarkTransitRecords(b *testing.B) {
	for _, size := range []int{1 << 10, 16 << 10, 64 << 10, 256 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			s, r := transitPair(b)
			rec := make([]byte, size)
			done := make(chan error, 1)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := transitCPU()
			go func() {
				for i := 0; i < b.N; i++ {
					if err := s.SendRecord(rec); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			for i := 0; i < b.N; i++ {
				if _, err := r.ReceiveRecord(); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			reportCPU(b, cpu0, int64(b.N)*int64(size))
		})
	}
}

// BenchmarkTransitStream measures the io.ReadWriteCloser view (Write splits
// into 16 KiB records) with 1 MiB writes, read with 32 KiB reads (what
// io.Copy does) and with 1 MiB reads (what wh's receiver does).
func BenchmarkTransitStream(b *testing.B) {
	for _, rsize := range []int{32 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("read%dKiB", rsize>>10), func(b *testing.B) {
			s, r := transitPair(b)
			const chunk = 1 << 20
			buf := make([]byte, chunk)
			rbuf := make([]byte, rsize)
			done := make(chan error, 1)
			b.SetBytes(chunk)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := transitCPU()
			go func() {
				for i := 0; i < b.N; i++ {
					if _, err := s.Write(buf); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			for left := int64(b.N) * chunk; left > 0; {
				n, err := io.ReadFull(r, rbuf[:min(left, int64(len(rbuf)))])
				if err != nil {
					b.Fatal(err)
				}
				left -= int64(n)
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			reportCPU(b, cpu0, int64(b.N)*chunk)
		})
	}
}
