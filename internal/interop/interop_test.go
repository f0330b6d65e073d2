package interop

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestPythonMailboxRestart proves the harness: the server speaks, and a
// restart on the same port works.
func TestPythonMailboxRestart(t *testing.T) {
	mb := StartPythonMailbox(t)
	read := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, mb.URL(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if w := read(); !strings.Contains(w, `"welcome"`) {
		t.Fatalf("first message %q is not a welcome", w)
	}
	mb.Restart()
	if w := read(); !strings.Contains(w, `"welcome"`) {
		t.Fatalf("after restart: %q", w)
	}
	r := StartPythonRelay(t)
	if err := WaitTCP(r.Addr(), time.Second); err != nil {
		t.Fatal(err)
	}
}
