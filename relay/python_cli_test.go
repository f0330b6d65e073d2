package relay_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/internal/interop"
	"github.com/wormhole-go/wormhole/relay"
	"github.com/wormhole-go/wormhole/relay/relaytest"
)

// Two Python 0.12 CLIs (both --no-listen, so the relay is the only path)
// transfer a file through our relay.
func TestPythonCLIThroughOurRelay(t *testing.T) {
	wh := interop.NeedCommand(t, "wormhole")
	mb := interop.StartPythonMailbox(t)
	r := relaytest.Start(t)

	dir := t.TempDir()
	src := filepath.Join(dir, "send", "payload.bin")
	os.MkdirAll(filepath.Dir(src), 0o755)
	data := make([]byte, 3<<20+123)
	rand.Read(data)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "recv", "out.bin")
	os.MkdirAll(filepath.Dir(out), 0o755)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const code = "7-guitarist-revenge"
	common := []string{"--relay-url", mb.URL(), "--transit-helper", r.Hint()}
	cmd := func(workdir string, args ...string) (*exec.Cmd, *bytes.Buffer) {
		c := exec.CommandContext(ctx, wh, append(append([]string{}, common...), args...)...)
		c.Dir = workdir
		c.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1")
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		var buf bytes.Buffer
		c.Stdout, c.Stderr = &buf, &buf
		return c, &buf
	}
	send, sendOut := cmd(filepath.Dir(src), "send", "--no-listen", "--hide-progress", "--code", code, src)
	recv, recvOut := cmd(filepath.Dir(out), "receive", "--no-listen", "--hide-progress", "--accept-file", "-o", out, code)
	if err := send.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(-send.Process.Pid, syscall.SIGKILL); send.Wait() }()
	time.Sleep(500 * time.Millisecond) // let the sender claim the nameplate first (not asserted)
	if err := recv.Run(); err != nil {
		t.Fatalf("receive: %v\n%s\nsender:\n%s", err, recvOut, sendOut)
	}
	if err := send.Wait(); err != nil {
		t.Fatalf("send: %v\n%s", err, sendOut)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("received %d bytes, content differs", len(got))
	}
	st := waitStats(t, r, func(s relay.Stats) bool { return s.Current == 0 && s.Moods[relay.MoodHappy] == 1 })
	if st.Bytes < uint64(len(data)) {
		t.Fatalf("relay carried only %d bytes of %d: the transfer did not go through our relay", st.Bytes, len(data))
	}
	t.Logf("relay stats: %+v\nreceiver output:\n%s", st, recvOut)
}
