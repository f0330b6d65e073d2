// Package interop finds and starts the real third-party peers that the
// interoperability tests talk to: Debian's Python magic-wormhole tools, the
// Python mailbox server and transit relay, and wormhole-william.
//
// When WH_INTEROP=1 (as .ci/run sets it), a missing peer fails the test;
// otherwise the test is skipped with a message naming what is missing.
package interop

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Python is the interpreter that can import Debian's python3-* packages. The
// first python3 on PATH on our machines is a different build that cannot.
const Python = "/usr/bin/python3"

// Required reports whether missing peers must fail tests (WH_INTEROP=1).
func Required() bool { return os.Getenv("WH_INTEROP") == "1" }

// missing fails or skips t for a peer that is not installed.
func missing(t testing.TB, what string) {
	t.Helper()
	if Required() {
		t.Fatalf("interop peer missing (WH_INTEROP=1): %s", what)
	}
	t.Skipf("interop peer missing: %s (set WH_INTEROP=1 to make this a failure)", what)
}

// NeedCommand returns the absolute path of a command, or fails/skips.
func NeedCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, name+" not on PATH")
	}
	return p
}

// NeedPython checks that Debian's python3 exists and can import every module
// named, and returns its path.
func NeedPython(t testing.TB, modules ...string) string {
	t.Helper()
	if _, err := os.Stat(Python); err != nil {
		missing(t, Python)
	}
	for _, m := range modules {
		out, err := exec.Command(Python, "-c", "import "+m).CombinedOutput()
		if err != nil {
			missing(t, fmt.Sprintf("python module %s: %v: %s", m, err, bytes.TrimSpace(out)))
		}
	}
	return Python
}

// FreePort returns a currently unused loopback TCP port.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitTCP waits until addr accepts TCP connections or the timeout passes.
func WaitTCP(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting connections after %v: %w", addr, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Twistd is a twistd3 plugin server (the Python mailbox server or transit
// relay) running on a loopback port for the life of a test.
type Twistd struct {
	t      testing.TB
	plugin string
	args   []string
	dir    string
	Port   int

	mu  sync.Mutex
	cmd *exec.Cmd
	n   int
}

func startTwistd(t testing.TB, plugin string, extra ...string) *Twistd {
	t.Helper()
	NeedPython(t)
	NeedCommand(t, "twistd3")
	tw := &Twistd{t: t, plugin: plugin, dir: t.TempDir(), Port: FreePort(t), args: extra}
	if err := tw.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tw.Stop)
	return tw
}

func (tw *Twistd) start() error {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	tw.n++
	log := filepath.Join(tw.dir, fmt.Sprintf("twistd-%d.log", tw.n))
	args := []string{"-n", "--pidfile=", "--logfile=" + log, tw.plugin,
		"--port=tcp:" + strconv.Itoa(tw.Port) + ":interface=127.0.0.1"}
	args = append(args, tw.args...)
	cmd := exec.Command("twistd3", args...)
	cmd.Dir = tw.dir
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	// Pdeathsig: a test binary killed mid-run takes its servers with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start twistd3 %s: %w", tw.plugin, err)
	}
	tw.cmd = cmd
	if err := WaitTCP(fmt.Sprintf("127.0.0.1:%d", tw.Port), 30*time.Second); err != nil {
		b, _ := os.ReadFile(log)
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		tw.cmd = nil
		return fmt.Errorf("twistd3 %s: %w\n%s", tw.plugin, err, b)
	}
	return nil
}

// Stop kills the server (SIGKILL, like a crash) and waits for it.
func (tw *Twistd) Stop() {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.cmd == nil {
		return
	}
	_ = syscall.Kill(-tw.cmd.Process.Pid, syscall.SIGKILL)
	_ = tw.cmd.Wait()
	tw.cmd = nil
}

// Restart stops the server and starts it again on the same port with the
// same state directory (so the mailbox database survives).
func (tw *Twistd) Restart() {
	tw.t.Helper()
	tw.Stop()
	if err := tw.start(); err != nil {
		tw.t.Fatal(err)
	}
}

// Dir is the server's working directory (holds its databases and logs).
func (tw *Twistd) Dir() string { return tw.dir }

// PythonMailbox is Debian's Python mailbox server on loopback.
type PythonMailbox struct{ *Twistd }

// URL is the WebSocket URL clients use.
func (m *PythonMailbox) URL() string { return fmt.Sprintf("ws://127.0.0.1:%d/v1", m.Port) }

// StartPythonMailbox starts `twistd3 wormhole-mailbox` with its channel
// database in a temporary directory. Extra args go to the plugin.
func StartPythonMailbox(t testing.TB, extra ...string) *PythonMailbox {
	t.Helper()
	return &PythonMailbox{startTwistd(t, "wormhole-mailbox", append([]string{"--channel-db=relay.sqlite"}, extra...)...)}
}

// PythonRelay is Debian's Python transit relay on loopback.
type PythonRelay struct{ *Twistd }

// Hint is the relay location in the CLI's form, tcp:127.0.0.1:PORT.
func (r *PythonRelay) Hint() string { return fmt.Sprintf("tcp:127.0.0.1:%d", r.Port) }

// Addr is host:port.
func (r *PythonRelay) Addr() string { return fmt.Sprintf("127.0.0.1:%d", r.Port) }

// StartPythonRelay starts `twistd3 transitrelay`.
func StartPythonRelay(t testing.TB, extra ...string) *PythonRelay {
	t.Helper()
	return &PythonRelay{startTwistd(t, "transitrelay", extra...)}
}
