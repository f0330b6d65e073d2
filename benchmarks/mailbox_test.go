package benchmarks

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// BenchmarkMailboxSideBySide builds benchmarks/cmd/mailboxload and runs
// its -compare mode once: our server as a separate child process holding
// WH_MAILBOX_IDLE idle clients (default 19000; memory per client measured
// in the server process), then pairings; then the same against Debian's
// Python server (WH_MAILBOX_PYIDLE idle clients, default 2000, and fewer
// pairings: it is ~100x slower). The table is logged; the figures are
// reported as metrics. b.N is ignored (one run is the measurement).
func BenchmarkMailboxSideBySide(b *testing.B) {
	interop.NeedPython(b)
	interop.NeedCommand(b, "twistd3")
	env := func(k string, def int) string {
		if v := os.Getenv(k); v != "" {
			if _, err := strconv.Atoi(v); err == nil {
				return v
			}
		}
		return strconv.Itoa(def)
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "mailboxload")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/mailboxload").CombinedOutput(); err != nil {
		b.Fatalf("build mailboxload: %v\n%s", err, out)
	}
	js := filepath.Join(dir, "out.json")
	cmd := exec.Command(bin, "-compare", "-idle", env("WH_MAILBOX_IDLE", 19000), "-pyidle", env("WH_MAILBOX_PYIDLE", 2000),
		"-n", "2000", "-c", "16", "-pyn", "60", "-pyc", "8", "-json", js)
	out, err := cmd.CombinedOutput()
	b.Logf("%s %v\n%s", filepath.Base(bin), cmd.Args[1:], out)
	if err != nil {
		b.Fatal(err)
	}
	raw, err := os.ReadFile(js)
	if err != nil {
		b.Fatal(err)
	}
	var res struct {
		Idle []struct {
			Go               bool
			Clients          int
			HeapStackPerConn float64 `json:"heap_stack_per_conn"`
			RSSPerConn       float64 `json:"rss_per_conn"`
		}
		Pairings []struct {
			PerSecond float64 `json:"pairings_per_s"`
			P50ms     float64 `json:"p50_ms"`
			P99ms     float64 `json:"p99_ms"`
		}
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		b.Fatal(err)
	}
	for i, r := range res.Idle {
		who := map[bool]string{true: "go", false: "py"}[r.Go]
		if r.Go {
			b.ReportMetric(r.HeapStackPerConn, who+"-idle-heap+stack-B/conn")
		}
		b.ReportMetric(r.RSSPerConn, who+"-idle-rss-B/conn")
		b.ReportMetric(float64(r.Clients), who+"-idle-clients")
		if i < len(res.Pairings) {
			p := res.Pairings[i]
			b.ReportMetric(p.PerSecond, who+"-pairings/s")
			b.ReportMetric(p.P50ms, who+"-p50-ms")
			b.ReportMetric(p.P99ms, who+"-p99-ms")
		}
	}
	b.ReportMetric(0, "ns/op")
}
