package mailboxtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/coder/websocket"
)

// ErrServer is wrapped by Pair when the server answers with an error message.
var ErrServer = errors.New("mailbox server error")

// Pair runs one complete exchange between two fresh clients on the mailbox
// server at url, the way real clients do it: A binds, allocates, claims,
// opens and adds its "pake"; B binds, claims the same nameplate, opens
// (getting A's message replayed) and adds its own; each sees the other's
// message; both release and close with mood happy. It works against any
// server speaking the protocol (ours or the Python reference).
func Pair(ctx context.Context, url, appID string) error {
	a, err := dialClient(ctx, url)
	if err != nil {
		return err
	}
	defer a.c.CloseNow()
	b, err := dialClient(ctx, url)
	if err != nil {
		return err
	}
	defer b.c.CloseNow()

	if err := a.send(ctx, `{"type":"bind","appid":%q,"side":"aaaa","id":"0001"}`, appID); err != nil {
		return err
	}
	if err := a.send(ctx, `{"type":"allocate","id":"0002"}`); err != nil {
		return err
	}
	m, err := a.await(ctx, "allocated")
	if err != nil {
		return err
	}
	np, _ := m["nameplate"].(string)
	mbox, err := a.claim(ctx, np)
	if err != nil {
		return err
	}
	if err := a.send(ctx, `{"type":"open","mailbox":%q,"id":"0004"}{"type":"add","phase":"pake","body":"aa","id":"0005"}`, mbox); err != nil {
		return err
	}
	if _, err := a.await(ctx, "message"); err != nil { // echo
		return err
	}

	if err := b.send(ctx, `{"type":"bind","appid":%q,"side":"bbbb","id":"0001"}`, appID); err != nil {
		return err
	}
	mboxB, err := b.claim(ctx, np)
	if err != nil {
		return err
	}
	if mboxB != mbox {
		return fmt.Errorf("mailboxtest: sides got mailboxes %q and %q", mbox, mboxB)
	}
	if err := b.send(ctx, `{"type":"open","mailbox":%q,"id":"0004"}`, mbox); err != nil {
		return err
	}
	if m, err := b.await(ctx, "message"); err != nil || m["side"] != "aaaa" {
		return fmt.Errorf("mailboxtest: B's first message %v: %w", m, err)
	}
	if err := b.send(ctx, `{"type":"add","phase":"pake","body":"bb","id":"0005"}`); err != nil {
		return err
	}
	for _, c := range []*client{b, a} { // B first: an error for its add goes to B
		if m, err := c.await(ctx, "message"); err != nil || m["side"] != "bbbb" {
			return fmt.Errorf("mailboxtest: B's pake %v: %w", m, err)
		}
	}
	for _, c := range []*client{a, b} {
		if err := c.send(ctx, `{"type":"release","nameplate":%q,"id":"0006"}`, np); err != nil {
			return err
		}
		if _, err := c.await(ctx, "released"); err != nil {
			return err
		}
		if err := c.send(ctx, `{"type":"close","mailbox":%q,"mood":"happy","id":"0007"}`, mbox); err != nil {
			return err
		}
		if _, err := c.await(ctx, "closed"); err != nil {
			return err
		}
	}
	a.c.Close(websocket.StatusNormalClosure, "")
	b.c.Close(websocket.StatusNormalClosure, "")
	return nil
}

type client struct{ c *websocket.Conn }

func dialClient(ctx context.Context, url string) (*client, error) {
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("mailboxtest: dial %s: %w", url, err)
	}
	c.SetReadLimit(1 << 20)
	cl := &client{c}
	if _, err := cl.await(ctx, "welcome"); err != nil {
		c.CloseNow()
		return nil, err
	}
	return cl, nil
}

// send writes one frame per JSON object in the formatted text (objects are
// concatenated without separators).
func (c *client) send(ctx context.Context, format string, args ...any) error {
	dec := json.NewDecoder(strings.NewReader(fmt.Sprintf(format, args...)))
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("mailboxtest: bad frame template: %w", err)
		}
		if err := c.c.Write(ctx, websocket.MessageText, raw); err != nil {
			return fmt.Errorf("mailboxtest: write: %w", err)
		}
	}
	return nil
}

func (c *client) claim(ctx context.Context, np string) (string, error) {
	if err := c.send(ctx, `{"type":"claim","nameplate":%q,"id":"0003"}`, np); err != nil {
		return "", err
	}
	m, err := c.await(ctx, "claimed")
	if err != nil {
		return "", err
	}
	mb, _ := m["mailbox"].(string)
	return mb, nil
}

// await reads until a message of type typ, skipping acks and anything
// else; an error message fails.
func (c *client) await(ctx context.Context, typ string) (map[string]any, error) {
	for range 1000 {
		_, b, err := c.c.Read(ctx)
		if err != nil {
			return nil, fmt.Errorf("mailboxtest: waiting for %s: %w", typ, err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("mailboxtest: bad server frame %q: %w", b, err)
		}
		switch m["type"] {
		case typ:
			return m, nil
		case "error":
			return nil, fmt.Errorf("%w: %v (waiting for %s)", ErrServer, m["error"], typ)
		}
	}
	return nil, fmt.Errorf("mailboxtest: no %s in 1000 messages", typ)
}
