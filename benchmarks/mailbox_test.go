package benchmarks

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
// its -compare mode once: our server as a separate child process (memory
// store, then SQLite store) holding WH_MAILBOX_IDLE idle clients (default
// 19000; memory per client measured in the server process), then
// pairings at concurrency 8, 16 and 32; then the same against Debian's
// Python server (WH_MAILBOX_PYIDLE idle clients, default 2000, and fewer
// pairings, at concurrency 1, 4, 8 and 16). The load tool is a separate
// process using raw WebSocket frames. The table is logged; each server's
// best pairings/s (and the ratio to Python's best) are reported as
// metrics. b.N is ignored (one run is the measurement).
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
	cmd := exec.Command(bin, "-compare", "-stores", "memory,sqlite", "-idle", env("WH_MAILBOX_IDLE", 19000), "-pyidle", env("WH_MAILBOX_PYIDLE", 2000),
		"-n", "2000", "-cs", "8,16,32", "-pyn", "60", "-pycs", "1,4,8,16", "-json", js)
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
			Server           string
			Go               bool
			Clients          int
			HeapStackPerConn float64 `json:"heap_stack_per_conn"`
			RSSPerConn       float64 `json:"rss_per_conn"`
		}
		Pairings []struct {
			Server    string
			Go        bool
			Failed    int
			PerSecond float64 `json:"pairings_per_s"`
			P50ms     float64 `json:"p50_ms"`
			P99ms     float64 `json:"p99_ms"`
		}
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		b.Fatal(err)
	}
	short := func(server string, goServer bool) string {
		switch {
		case !goServer:
			return "py"
		case strings.Contains(server, "sqlite"):
			return "go-sqlite"
		}
		return "go-memory"
	}
	for _, r := range res.Idle {
		who := short(r.Server, r.Go)
		if r.Go {
			b.ReportMetric(r.HeapStackPerConn, who+"-idle-heap+stack-B/conn")
		}
		b.ReportMetric(r.RSSPerConn, who+"-idle-rss-B/conn")
		b.ReportMetric(float64(r.Clients), who+"-idle-clients")
	}
	best := map[string]float64{}
	for _, p := range res.Pairings {
		if who := short(p.Server, p.Go); p.Failed == 0 && p.PerSecond > best[who] {
			best[who] = p.PerSecond
		}
	}
	for who, v := range best {
		b.ReportMetric(v, who+"-best-pairings/s")
	}
	if py := best["py"]; py > 0 {
		b.ReportMetric(best["go-memory"]/py, "go-memory/py")
		b.ReportMetric(best["go-sqlite"]/py, "go-sqlite/py")
	}
	b.ReportMetric(0, "ns/op")
}
