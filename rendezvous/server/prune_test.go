package server_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/rendezvous"
	"github.com/wormhole-go/wormhole/rendezvous/mailboxtest"
	"github.com/wormhole-go/wormhole/rendezvous/server"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// storeKinds runs fn against both stores.
func storeKinds(t *testing.T, o server.Options, fn func(t *testing.T, mb *mailboxtest.Server)) {
	for _, kind := range []string{"memory", "sqlite"} {
		t.Run(kind, func(t *testing.T) {
			opts := []mailboxtest.Option{mailboxtest.WithOptions(o)}
			if kind == "memory" {
				opts = append(opts, mailboxtest.WithMemoryStore())
			}
			fn(t, mailboxtest.Start(t, opts...))
		})
	}
}

func usage(t *testing.T, mb *mailboxtest.Server) map[server.UsageKind][]server.Usage {
	t.Helper()
	out := map[server.UsageKind][]server.Usage{}
	err := mb.Server().Store().Update(context.Background(), func(tx server.Tx) error {
		us, err := tx.UsageRecords()
		for _, u := range us {
			out[u.Kind] = append(out[u.Kind], u)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mailboxes(t *testing.T, mb *mailboxtest.Server, app string) []server.Mailbox {
	t.Helper()
	var out []server.Mailbox
	err := mb.Server().Store().Update(context.Background(), func(tx server.Tx) error {
		var err error
		out, err = tx.Mailboxes(app)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPrune(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	storeKinds(t, server.Options{Clock: clk.Now, PruneInterval: -1}, func(t *testing.T, mb *mailboxtest.Server) {
		ctx := context.Background()
		// an abandoned channel: claimed, a message queued, client gone
		a := dial(t, mb.URL())
		a.bind("app", "sa")
		mbA := a.claim("4")
		a.cmd("open", "mailbox", mbA)
		a.cmd("add", "phase", "pake", "body", "00")
		a.message()
		a.close()
		waitConns(t, mb, 0)
		// a channel whose client stays connected and subscribed
		b := dial(t, mb.URL())
		b.bind("app", "sb")
		mbB := b.claim("5")
		b.cmd("open", "mailbox", mbB)
		b.sync()

		clk.Advance(10 * time.Minute)
		if err := mb.Server().Prune(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(mailboxes(t, mb, "app")); n != 2 {
			t.Fatalf("pruned too early: %d mailboxes left", n)
		}
		clk.Advance(2 * time.Minute)
		if err := mb.Server().Prune(ctx); err != nil {
			t.Fatal(err)
		}
		left := mailboxes(t, mb, "app")
		if len(left) != 1 || left[0].ID != mbB {
			t.Fatalf("after prune: %+v, want only the subscribed mailbox %s", left, mbB)
		}
		u := usage(t, mb)
		if len(u[server.UsageNameplate]) != 1 || u[server.UsageNameplate][0].Result != "pruney" ||
			len(u[server.UsageMailbox]) != 1 || u[server.UsageMailbox][0].Result != "pruney" {
			t.Fatalf("usage %+v", u)
		}
		if tt := u[server.UsageMailbox][0].TotalTime; tt != 12*60 {
			t.Fatalf("total_time %v, want 720", tt)
		}
		// the pruned nameplate can be claimed afresh
		a2 := dial(t, mb.URL())
		a2.bind("app", "sa")
		if got := a2.claim("4"); got == mbA {
			t.Fatal("pruned nameplate kept its mailbox")
		}
		// once the subscriber leaves, its mailbox goes too
		b.close()
		waitConns(t, mb, 1)
		clk.Advance(12 * time.Minute)
		if err := mb.Server().Prune(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(mailboxes(t, mb, "app")); n != 0 {
			t.Fatalf("%d mailboxes survive with nobody connected", n)
		}
		var cur server.Current
		mb.Server().Store().Update(ctx, func(tx server.Tx) error {
			var err error
			cur, err = tx.Current()
			return err
		})
		if cur.Updated != float64(clk.Now().Unix()) {
			t.Fatalf("current row %+v", cur)
		}
	})
}

func TestUsageMoods(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	storeKinds(t, server.Options{Clock: clk.Now, PruneInterval: -1, BlurUsage: time.Hour}, func(t *testing.T, mb *mailboxtest.Server) {
		run := func(np string, moods ...string) {
			var cs []*client
			var box string
			for i := range moods {
				c := dial(t, mb.URL())
				c.bind("app", "side"+string(rune('a'+i)))
				box = c.claim(np)
				c.cmd("release")
				c.expect("released")
				clk.Advance(3 * time.Second)
				cs = append(cs, c)
			}
			for i, c := range cs {
				c.cmd("close", "mailbox", box, "mood", moods[i])
				c.expect("closed")
			}
		}
		run("1", "happy", "happy")
		run("2", "happy", "scary")
		run("3", "lonely")
		run("4", "errory", "happy")
		u := usage(t, mb)
		var got []string
		for _, r := range u[server.UsageMailbox] {
			got = append(got, r.Result)
			if r.Started != 1_699_999_200 { // blurred to the hour
				t.Errorf("started %v not blurred", r.Started)
			}
		}
		if strings.Join(got, ",") != "happy,scary,lonely,errory" {
			t.Fatalf("mailbox results %v", got)
		}
		if w := u[server.UsageMailbox][0].WaitingTime; w == nil || *w != 3 {
			t.Fatalf("waiting time %v", w)
		}
		var vs []server.ClientVersion
		mb.Server().Store().Update(context.Background(), func(tx server.Tx) error {
			var err error
			vs, err = tx.ClientVersions()
			return err
		})
		if len(vs) != 7 || *vs[0].Implementation != "go-test" || *vs[0].Version != "0" {
			t.Fatalf("client versions %+v", vs)
		}
	})
}

func TestWelcomeOptions(t *testing.T) {
	mb := startGo(t, server.Options{MOTD: "hi there", Error: "go away", AdvertiseVersion: "9.9"})
	c := dial(t, mb.URL())
	w := c.seen[0]["welcome"].(map[string]any)
	if w["motd"] != "hi there" || w["error"] != "go away" || w["current_cli_version"] != "9.9" {
		t.Fatalf("welcome %v", w)
	}
	plain := dial(t, startGo(t, server.Options{}).URL())
	w = plain.seen[0]["welcome"].(map[string]any)
	if len(w) != 1 || w["your-address"] == nil {
		t.Fatalf("default welcome %v", w)
	}
}

func TestHashcashPermission(t *testing.T) {
	const bits, res = 6, "wh-test"
	mb := startGo(t, server.Options{Hashcash: &server.HashcashOptions{Bits: bits, Resource: res}})
	c := dial(t, mb.URL())
	pr, _ := json.Marshal(c.seen[0]["welcome"].(map[string]any)["permission-required"])
	if string(pr) != `{"hashcash":{"bits":6,"resource":"wh-test"}}` {
		t.Fatalf("permission-required %s", pr)
	}
	// bind without permission: error, then the connection closes
	c.cmdError("permission required", "bind", "appid", "a", "side", "s")
	if _, err := c.recvErr(10 * time.Second); err == nil {
		t.Fatal("connection not closed")
	}
	stamp, err := rendezvous.MintHashcash(bits, res, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for i, typ := range []string{"submit-permissions", "submit-permission"} {
		st := stamp
		if i == 1 {
			if st, err = rendezvous.MintHashcash(bits, res, time.Now(), rand.Reader); err != nil {
				t.Fatal(err)
			}
		}
		c := dial(t, mb.URL())
		c.cmd(typ, "method", "hashcash", "stamp", st)
		c.bind("a", "s")
		c.sync()
	}
	// a replayed or wrong stamp is refused
	for _, st := range []string{stamp, "1:6:260101:other::abc:0"} {
		c := dial(t, mb.URL())
		id := c.send("submit-permissions", "method", "hashcash", "stamp", st)
		c.ack(id)
		if m := c.expect("error", "error", "orig"); !strings.HasPrefix(m["error"].(string), "permission denied") {
			t.Fatalf("stamp %q: %v", st, m)
		}
		if _, err := c.recvErr(10 * time.Second); err == nil {
			t.Fatal("connection not closed")
		}
	}
}
