package rendezvous

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wormhole-go/wormhole/internal/interop"
)

type frame struct {
	fromClient bool
	data       []byte
}

// recordingProxy forwards WebSocket frames between clients and upstream and
// records them.
type recordingProxy struct {
	upstream string
	mu       sync.Mutex
	frames   []frame
	wg       sync.WaitGroup
}

func (p *recordingProxy) record(fromClient bool, b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frames = append(p.frames, frame{fromClient, append([]byte(nil), b...)})
}

func (p *recordingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.wg.Add(1)
	defer p.wg.Done()
	down, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer down.CloseNow()
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	up, _, err := websocket.Dial(ctx, p.upstream, nil)
	if err != nil {
		return
	}
	defer up.CloseNow()
	pipe := func(from, to *websocket.Conn, fromClient bool) {
		defer cancel()
		for {
			typ, b, err := from.Read(ctx)
			if err != nil {
				return
			}
			p.record(fromClient, b)
			if to.Write(ctx, typ, b) != nil {
				return
			}
		}
	}
	go pipe(up, down, false)
	pipe(down, up, true)
}

// TestPythonTrafficDecodes runs the Debian Python CLI (wormhole send/receive
// --text) through a recording proxy to the Python mailbox server and checks
// that every frame in both directions decodes with our decoders. With
// WH_WRITE_CORPUS=1 it also stores the frames as fuzz seed corpus.
func TestPythonTrafficDecodes(t *testing.T) {
	interop.NeedPython(t, "wormhole")
	wh := interop.NeedCommand(t, "wormhole")
	mb := interop.StartPythonMailbox(t)
	proxy := &recordingProxy{upstream: mb.URL()}
	srv := httptest.NewServer(proxy)
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1"

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	send := exec.CommandContext(ctx, wh, "--relay-url", url, "send", "--text", "hello from python")
	stderr, err := send.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	send.Stdout = send.Stderr
	if err := send.Start(); err != nil {
		t.Fatal(err)
	}
	codeRe := regexp.MustCompile(`Wormhole code is: (\S+)`)
	var code string
	sc := bufio.NewScanner(stderr)
	var out strings.Builder
	for sc.Scan() && code == "" {
		out.WriteString(sc.Text() + "\n")
		if m := codeRe.FindStringSubmatch(sc.Text()); m != nil {
			code = m[1]
		}
	}
	if code == "" {
		t.Fatalf("no code from wormhole send: %s", out.String())
	}
	go func() { // drain
		for sc.Scan() {
		}
	}()
	recv := exec.CommandContext(ctx, wh, "--relay-url", url, "receive", code)
	got, err := recv.CombinedOutput()
	if err != nil {
		t.Fatalf("receive: %v: %s", err, got)
	}
	if !strings.Contains(string(got), "hello from python") {
		t.Fatalf("receive output %q", got)
	}
	if err := send.Wait(); err != nil {
		t.Fatalf("send: %v", err)
	}
	srv.CloseClientConnections()
	proxy.wg.Wait()

	proxy.mu.Lock()
	frames := proxy.frames
	proxy.mu.Unlock()
	seen := map[string]int{}
	for _, f := range frames {
		var m any
		if f.fromClient {
			m, err = DecodeClientMessage(f.data)
		} else {
			m, err = DecodeServerMessage(f.data)
		}
		if err != nil {
			t.Errorf("frame %s (from client %v): %v", f.data, f.fromClient, err)
			continue
		}
		seen[m.(interface{ MsgType() string }).MsgType()]++
	}
	for _, typ := range []string{"bind", "allocate", "claim", "open", "add", "release", "close",
		"welcome", "ack", "allocated", "claimed", "message", "released", "closed"} {
		if seen[typ] == 0 {
			t.Errorf("no %q frame seen (saw %v)", typ, seen)
		}
	}
	t.Logf("decoded %d frames: %v", len(frames), seen)

	if os.Getenv("WH_WRITE_CORPUS") == "1" {
		for i, f := range frames {
			dir := "FuzzDecodeServerMessage"
			if f.fromClient {
				dir = "FuzzDecodeClientMessage"
			}
			dir = filepath.Join("testdata", "fuzz", dir)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			name := filepath.Join(dir, fmt.Sprintf("python-%02d", i))
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", f.data)
			if err := os.WriteFile(name, []byte(body), 0o644); err != nil && !errors.Is(err, os.ErrExist) {
				t.Fatal(err)
			}
		}
	}
}
