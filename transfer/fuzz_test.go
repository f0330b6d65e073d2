package transfer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzSafeName: whatever the sender suggests, SafeName gives one local
// path element (no separator, not "." or "..", no NUL) or an error.
func FuzzSafeName(f *testing.F) {
	for _, s := range []string{"a.txt", "../../etc/passwd", "/abs/x", `..\..\win.ini`, "dir/", "", ".", "..", "x\x00y", "a/..", "\u00e9t\u00e9.pdf", "C:\\x", "..."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got, err := SafeName(name)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v is not ErrProtocol", err)
			}
			return
		}
		if got == "" || got == "." || got == ".." || strings.ContainsAny(got, "/\\\x00") {
			t.Fatalf("SafeName(%q) = %q", name, got)
		}
		if !filepath.IsLocal(got) || filepath.Base(got) != got {
			t.Fatalf("SafeName(%q) = %q is not one local element", name, got)
		}
	})
}

// scriptConn replays messages, then fails with io.EOF; it records what
// was sent.
type scriptConn struct {
	in   [][]byte
	sent [][]byte
}

func (c *scriptConn) Send(_ context.Context, b []byte) error {
	c.sent = append(c.sent, append([]byte(nil), b...))
	return nil
}

func (c *scriptConn) Receive(context.Context) ([]byte, error) {
	if len(c.in) == 0 {
		return nil, io.EOF
	}
	b := c.in[0]
	c.in = c.in[1:]
	return b, nil
}

// FuzzFlows drives the receiver's and the sender's loops with an
// arbitrary peer (messages separated by newlines): they end (no message
// is read past an offer or answer; at most MaxIgnoredMessages are
// skipped), never panic, and fail only with a peer error, a protocol
// error or the end of input.
func FuzzFlows(f *testing.F) {
	for _, s := range pythonMessages {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"transit": {"abilities-v1": [], "hints-v1": []}}` + "\n" + `{"offer": {"file": {"filename": "a", "filesize": 3}}}`))
	f.Add([]byte("{}\n{}\n{\"answer\": {\"file_ack\": \"ok\"}}"))
	f.Add([]byte(`{"error": "transfer rejected"}`))
	f.Add(bytes.Repeat([]byte("{\"x\":1}\n"), MaxIgnoredMessages+3))
	f.Fuzz(func(t *testing.T, script []byte) {
		msgs := bytes.Split(script, []byte("\n"))
		ok := func(err error) {
			var re *RemoteError
			if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, ErrProtocol) && !errors.As(err, &re) {
				t.Fatalf("unexpected error %v", err)
			}
		}
		transits := 0
		c := &scriptConn{in: msgs}
		o, err := ReceiveOffer(context.Background(), c, func(*Transit) error { transits++; return nil })
		ok(err)
		if transits > 1 {
			t.Fatalf("onTransit called %d times", transits)
		}
		if err == nil && o == nil {
			t.Fatal("no offer and no error")
		}
		c = &scriptConn{in: msgs}
		a, err := AwaitAnswer(context.Background(), c, nil)
		ok(err)
		if err == nil && a == nil {
			t.Fatal("no answer and no error")
		}
		c = &scriptConn{in: msgs}
		_, err = ReceiveText(context.Background(), c)
		var ue *UnexpectedOfferError
		if !errors.As(err, &ue) {
			ok(err)
		}
		if len(c.sent) > 1 {
			t.Fatalf("ReceiveText sent %d messages", len(c.sent))
		}
	})
}
