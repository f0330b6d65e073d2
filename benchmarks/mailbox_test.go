package benchmarks

import (
	"context"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/internal/interop"
	"github.com/wormhole-go/wormhole/rendezvous/mailboxtest"
)

// BenchmarkMailboxPairing measures complete two-client pairings (bind,
// allocate, claim, open, add, replay, release, close on both sides: 2
// WebSocket connections and 16 client messages each) per second through
// our mailbox server in-process, with each store, and through the Python
// reference server for comparison. "seq" runs pairings one at a time;
// "par" runs 8 per CPU concurrently.
func BenchmarkMailboxPairing(b *testing.B) {
	servers := []struct {
		name  string
		start func(b *testing.B) string
	}{
		{"go-memory", func(b *testing.B) string {
			return mailboxtest.Start(b, mailboxtest.WithMemoryStore()).URL()
		}},
		{"go-sqlite", func(b *testing.B) string { return mailboxtest.Start(b).URL() }},
		{"python", func(b *testing.B) string { return interop.StartPythonMailbox(b).URL() }},
	}
	for _, srv := range servers {
		for _, par := range []bool{false, true} {
			mode := "seq"
			if par {
				mode = "par"
			}
			b.Run(srv.name+"/"+mode, func(b *testing.B) {
				url := srv.start(b)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				defer cancel()
				if err := mailboxtest.Pair(ctx, url, "bench"); err != nil { // warm up
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				if par {
					b.SetParallelism(8)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := mailboxtest.Pair(ctx, url, "bench"); err != nil {
								b.Error(err)
								return
							}
						}
					})
				} else {
					for i := 0; i < b.N; i++ {
						if err := mailboxtest.Pair(ctx, url, "bench"); err != nil {
							b.Fatal(err)
						}
					}
				}
				el := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(b.N)/el.Seconds(), "pairings/s")
			})
		}
	}
}
