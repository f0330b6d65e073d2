package benchmarks

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/internal/interop"
)

// buildWH compiles cmd/wh into a temporary directory.
func buildWH(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "wh")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/wormhole-go/wormhole/cmd/wh").CombinedOutput()
	if err != nil {
		b.Fatalf("go build cmd/wh: %v\n%s", err, out)
	}
	return bin
}

// cliRun runs one command and fails the benchmark on a non-zero exit.
func cliRun(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %v: %v\n%s", name, args, err, errb.String())
	}
	return out.String(), nil
}

// BenchmarkCLITextExchange measures one complete text transfer per op:
// sender and receiver processes started together with a fixed code,
// through Debian's Python mailbox server on loopback, until both exited.
// Process start-up is included (it is what a person waits for):
// wh->wh, python->python, and the mixed pairs.
func BenchmarkCLITextExchange(b *testing.B) {
	wh := buildWH(b)
	py := interop.NeedCommand(b, "wormhole")
	mb := interop.StartPythonMailbox(b)
	url := mb.URL()
	send := map[string]func(code string) []string{
		"wh": func(code string) []string {
			return []string{wh, "send", "--relay-url", url, "--code", code, "--text", "benchmark"}
		},
		"python": func(code string) []string {
			return []string{py, "--relay-url", url, "send", "--code", code, "--text", "benchmark"}
		},
	}
	recv := map[string]func(code string) []string{
		"wh":     func(code string) []string { return []string{wh, "receive", "--relay-url", url, code} },
		"python": func(code string) []string { return []string{py, "--relay-url", url, "receive", code} },
	}
	nameplate := 100
	for _, pair := range [][2]string{{"wh", "wh"}, {"python", "python"}, {"wh", "python"}, {"python", "wh"}} {
		b.Run(pair[0]+"-to-"+pair[1], func(b *testing.B) {
			for b.Loop() {
				nameplate++
				code := fmt.Sprintf("%d-benchmark-code", nameplate)
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // safety net
				var wg sync.WaitGroup
				var serr, rerr error
				var got string
				s, r := send[pair[0]](code), recv[pair[1]](code)
				wg.Add(2)
				go func() { defer wg.Done(); _, serr = cliRun(ctx, s[0], s[1:]...) }()
				go func() { defer wg.Done(); got, rerr = cliRun(ctx, r[0], r[1:]...) }()
				wg.Wait()
				cancel()
				if serr != nil || rerr != nil {
					b.Fatalf("send: %v\nreceive: %v", serr, rerr)
				}
				if got != "benchmark\n" {
					b.Fatalf("received %q", got)
				}
			}
		})
	}
}

// BenchmarkCLIFileTransfer measures sending one 16 MiB file per op between
// two CLI processes through Debian's Python transit relay on loopback (both
// sides --no-listen, so the data always goes through the relay), including
// process start-up and the mailbox exchange. MB/s is file bytes per op time.
func BenchmarkCLIFileTransfer(b *testing.B) {
	wh := buildWH(b)
	py := interop.NeedCommand(b, "wormhole")
	mb := interop.StartPythonMailbox(b)
	relay := interop.StartPythonRelay(b)
	url, hint := mb.URL(), relay.Hint()
	dir := b.TempDir()
	src := filepath.Join(dir, "src.bin")
	data := make([]byte, 16<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		b.Fatal(err)
	}
	send := map[string]func(code string) []string{
		"wh": func(code string) []string {
			return []string{wh, "send", "--relay-url", url, "--transit-helper", hint, "--no-listen", "--hide-progress", "--code", code, src}
		},
		"python": func(code string) []string {
			return []string{py, "--relay-url", url, "--transit-helper", hint, "send", "--no-listen", "--hide-progress", "--code", code, src}
		},
	}
	recv := map[string]func(code, out string) []string{
		"wh": func(code, out string) []string {
			return []string{wh, "receive", "--relay-url", url, "--transit-helper", hint, "--no-listen", "--hide-progress", "--accept-file", "-o", out, code}
		},
		"python": func(code, out string) []string {
			return []string{py, "--relay-url", url, "--transit-helper", hint, "receive", "--no-listen", "--hide-progress", "--accept-file", "-o", out, code}
		},
	}
	nameplate := 500
	for _, pair := range [][2]string{{"wh", "wh"}, {"python", "python"}} {
		b.Run(pair[0]+"-to-"+pair[1], func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				nameplate++
				code := fmt.Sprintf("%d-benchmark-file", nameplate)
				out := filepath.Join(dir, fmt.Sprintf("out-%d.bin", nameplate))
				ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second) // safety net
				var wg sync.WaitGroup
				var serr, rerr error
				s, r := send[pair[0]](code), recv[pair[1]](code, out)
				wg.Add(2)
				go func() { defer wg.Done(); _, serr = cliRun(ctx, s[0], s[1:]...) }()
				go func() { defer wg.Done(); _, rerr = cliRun(ctx, r[0], r[1:]...) }()
				wg.Wait()
				cancel()
				if serr != nil || rerr != nil {
					b.Fatalf("send: %v\nreceive: %v", serr, rerr)
				}
				got, err := os.ReadFile(out)
				if err != nil || !bytes.Equal(got, data) {
					b.Fatalf("received %d bytes (%v)", len(got), err)
				}
				os.Remove(out)
			}
		})
	}
}
