package mailboxtest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wormhole-go/wormhole/internal/interop"
	"github.com/wormhole-go/wormhole/rendezvous/mailboxtest"
	"github.com/wormhole-go/wormhole/rendezvous/server"
)

func TestPairAndRestart(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t.Run("go", func(t *testing.T) {
		mb := mailboxtest.Start(t)
		for range 3 {
			if err := mailboxtest.Pair(ctx, mb.URL(), "app"); err != nil {
				t.Fatal(err)
			}
		}
		port := mb.Port()
		mb.Restart()
		if mb.Port() != port {
			t.Fatal("port changed")
		}
		if err := mailboxtest.Pair(ctx, mb.URL(), "app"); err != nil {
			t.Fatalf("after restart: %v", err)
		}
		var nameplates []string
		mb.Server().Store().Update(ctx, func(tx server.Tx) error {
			var err error
			nameplates, err = tx.NameplateNames("app")
			return err
		})
		if len(nameplates) != 0 {
			t.Fatalf("nameplates left after happy pairings: %v", nameplates)
		}
		mb.Close()
		mb.Close()
	})
	t.Run("python", func(t *testing.T) {
		py := interop.StartPythonMailbox(t)
		if err := mailboxtest.Pair(ctx, py.URL(), "app"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("server-error", func(t *testing.T) {
		mb := mailboxtest.Start(t, mailboxtest.WithMemoryStore(), mailboxtest.WithOptions(server.Options{MaxMailboxMessages: 1}))
		err := mailboxtest.Pair(ctx, mb.URL(), "app")
		if !errors.Is(err, mailboxtest.ErrServer) {
			t.Fatalf("Pair with a full mailbox: %v, want ErrServer", err)
		}
	})
}
