package benchmarks

import (
	"crypto/rand"
	"fmt"
	"io"
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
		})
	}
}

// BenchmarkTransitStream measures the io.ReadWriteCloser view (Write splits
// into 16 KiB records, Read reuses its buffer) with 64 KiB writes.
func BenchmarkTransitStream(b *testing.B) {
	s, r := transitPair(b)
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	done := make(chan error, 1)
	b.SetBytes(chunk)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for i := 0; i < b.N; i++ {
			if _, err := s.Write(buf); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	if _, err := io.CopyN(io.Discard, r, int64(b.N)*chunk); err != nil {
		b.Fatal(err)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
