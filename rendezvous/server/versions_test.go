package server_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/rendezvous/server"
)

// TestBindVersionsWrittenAtClose: a bind's client version waits for the
// next store transaction; when none comes, Close writes it (SQLite store,
// read back after reopening the file).
func TestBindVersionsWrittenAtClose(t *testing.T) {
	path := t.TempDir() + "/db.sqlite"
	st, err := server.OpenSQLiteStore(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(server.Options{Store: st, PruneInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	url := server.WebSocketURL(l.Addr().String())
	for _, side := range []string{"a", "b", "c"} {
		c := dial(t, url)
		c.bind("app", side)
		c.sync()
		defer c.c.CloseNow()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, server.ErrServerClosed) {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = server.OpenSQLiteStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var vs []server.ClientVersion
	if err := st.Update(context.Background(), func(tx server.Tx) error {
		vs, err = tx.ClientVersions()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(vs) != 3 {
		t.Fatalf("client versions %+v, want 3", vs)
	}
	for i, v := range vs {
		if v.Side != string(rune('a'+i)) || v.Implementation == nil || *v.Implementation != "go-test" {
			t.Fatalf("client version %d: %+v", i, v)
		}
	}
}
