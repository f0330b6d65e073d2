package server_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/internal/interop"
	"github.com/wormhole-go/wormhole/rendezvous/mailboxtest"
	"github.com/wormhole-go/wormhole/rendezvous/server"
)

const textApp = "lothar.com/wormhole/text-or-file-xfer"

// peer builds the command line of one real client.
type peer struct {
	name string
	cmd  string
	send func(url, code, text string) []string
	recv func(url, code string) []string
}

func pythonPeer(t *testing.T) peer {
	interop.NeedPython(t)
	return peer{
		name: "python",
		cmd:  interop.NeedCommand(t, "wormhole"),
		send: func(url, code, text string) []string {
			return []string{"--relay-url", url, "send", "--text", text, "--code", code}
		},
		recv: func(url, code string) []string {
			return []string{"--relay-url", url, "receive", code}
		},
	}
}

func williamPeer(t *testing.T) peer {
	return peer{
		name: "wormhole-william",
		cmd:  interop.NeedCommand(t, "wormhole-william"),
		send: func(url, code, text string) []string {
			return []string{"send", "--relay-url", url, "--text", text, "--code", code}
		},
		recv: func(url, code string) []string {
			return []string{"receive", "--relay-url", url, code}
		},
	}
}

type proc struct {
	cmd    *exec.Cmd
	out    bytes.Buffer
	done   chan error
	cancel context.CancelFunc
}

func startPeer(t *testing.T, path string, args []string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	p := &proc{cancel: cancel, done: make(chan error, 1)}
	p.cmd = exec.CommandContext(ctx, path, args...)
	p.cmd.Dir = t.TempDir()
	p.cmd.Env = append(os.Environ(), "HOME="+p.cmd.Dir, "PYTHONDONTWRITEBYTECODE=1", "WORMHOLE_RELAY_URL=")
	p.cmd.Stdout = &p.out
	p.cmd.Stderr = &p.out
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", path, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-p.done
	})
	return p
}

func (p *proc) wait(t *testing.T, what string) string {
	t.Helper()
	err := <-p.done
	p.done <- err // for cleanup
	if err != nil {
		t.Fatalf("%s failed: %v\n%s", what, err, p.out.String())
	}
	return p.out.String()
}

// exchange runs a text transfer sender→receiver through url; between
// starting the sender and the receiver, it waits until the sender's first
// message is queued and calls between (if not nil).
func exchange(t *testing.T, mb *mailboxtest.Server, sender, receiver peer, between func()) {
	t.Helper()
	code := "5-hamburger-ragtime"
	text := "hello from " + sender.name + " " + t.Name()
	s := startPeer(t, sender.cmd, sender.send(mb.URL(), code, text))
	waitForMessage(t, mb, "5")
	if between != nil {
		between()
	}
	r := startPeer(t, receiver.cmd, receiver.recv(mb.URL(), code))
	out := r.wait(t, receiver.name+" receive")
	if !strings.Contains(out, text) {
		t.Fatalf("receiver output %q does not contain %q", out, text)
	}
	s.wait(t, sender.name+" send")
}

// waitForMessage polls the store until the nameplate's mailbox holds a
// message (the sender's pake).
func waitForMessage(t *testing.T, mb *mailboxtest.Server, name string) {
	t.Helper()
	for i := 0; i < 600; i++ {
		n := 0
		err := mb.Server().Store().Update(context.Background(), func(tx server.Tx) error {
			np, ok, err := tx.Nameplate(textApp, name)
			if err != nil || !ok {
				return err
			}
			n, _, err = tx.MessageStats(textApp, np.MailboxID)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("sender never queued a message on nameplate %s", name)
}

// TestCLIInterop: real clients exchange text through our server.
func TestCLIInterop(t *testing.T) {
	py, ww := pythonPeer(t), williamPeer(t)
	for _, pair := range [][2]peer{{py, py}, {ww, py}, {py, ww}, {ww, ww}} {
		t.Run(pair[0].name+"-to-"+pair[1].name, func(t *testing.T) {
			mb := mailboxtest.Start(t)
			exchange(t, mb, pair[0], pair[1], nil)
			// wormhole-william alone does not always close its mailbox
			// side before exiting, so the mailbox waits for pruning.
			checkHappyUsage(t, mb, pair[0].name == "python" && pair[1].name == "python")
		})
	}
}

// TestCLIInteropRestart: our server (SQLite store) restarts on the same
// port after the sender queued its first message; the Python sender
// reconnects and the exchange completes.
func TestCLIInteropRestart(t *testing.T) {
	py, ww := pythonPeer(t), williamPeer(t)
	for _, recv := range []peer{py, ww} {
		t.Run("python-to-"+recv.name, func(t *testing.T) {
			mb := mailboxtest.Start(t)
			exchange(t, mb, py, recv, mb.Restart)
		})
	}
}

// checkHappyUsage waits for the usage records of a finished exchange.
func checkHappyUsage(t *testing.T, mb *mailboxtest.Server, mailboxToo bool) {
	t.Helper()
	var us []server.Usage
	for i := 0; i < 100; i++ {
		err := mb.Server().Store().Update(context.Background(), func(tx server.Tx) error {
			var err error
			us, err = tx.UsageRecords()
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(us) >= 2 || (!mailboxToo && len(us) >= 1) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !mailboxToo {
		_ = mb.Server().Store().Update(context.Background(), func(tx server.Tx) error {
			mbs, _ := tx.Mailboxes(textApp)
			for _, m := range mbs {
				sides, _ := tx.MailboxSides(m.ID)
				t.Logf("mailbox %s still open, sides %+v", m.ID, sides)
			}
			return nil
		})
	}
	got := map[server.UsageKind]string{}
	for _, u := range us {
		got[u.Kind] = u.Result
		if u.App != textApp || u.WaitingTime == nil {
			t.Errorf("usage %+v", u)
		}
	}
	if got[server.UsageNameplate] != "happy" || (mailboxToo && got[server.UsageMailbox] != "happy") {
		t.Fatalf("usage records %+v, want happy nameplate and mailbox", us)
	}
}

// TestCLIWelcome: real clients honour our welcome: an error makes both
// fail with the operator's text; a motd is shown by Python.
func TestCLIWelcome(t *testing.T) {
	py, ww := pythonPeer(t), williamPeer(t)
	const msg = "closed for maintenance 42"
	mb := mailboxtest.Start(t, mailboxtest.WithMemoryStore(), mailboxtest.WithOptions(server.Options{Error: msg}))
	for _, p := range []peer{py, ww} {
		s := startPeer(t, p.cmd, p.send(mb.URL(), "3-foo-bar", "x"))
		err := <-s.done
		s.done <- err
		// wormhole-william 1.0.x fails but prints "server error: %!s(<nil>)"
		// instead of the text, against the Python reference server too.
		want := msg
		if p.name == "wormhole-william" {
			want = "server error"
		}
		if err == nil || !strings.Contains(s.out.String(), want) {
			t.Errorf("%s with welcome error: err %v, output %q", p.name, err, s.out.String())
		}
	}
	mb2 := mailboxtest.Start(t, mailboxtest.WithMemoryStore(), mailboxtest.WithOptions(server.Options{MOTD: "motd-xyzzy"}))
	r := startPeer(t, py.cmd, py.recv(mb2.URL(), "9-foo-bar"))
	s := startPeer(t, py.cmd, py.send(mb2.URL(), "9-foo-bar", "hi"))
	if out := r.wait(t, "python receive"); !strings.Contains(out, "motd-xyzzy") {
		t.Errorf("python did not show the motd: %q", out)
	}
	s.wait(t, "python send")
}
