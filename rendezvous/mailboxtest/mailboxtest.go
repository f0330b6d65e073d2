// Package mailboxtest starts the wormhole-go mailbox server on a loopback
// port for tests of any package.
//
//	mb := mailboxtest.Start(t)
//	url := mb.URL() // ws://127.0.0.1:PORT/v1
//	mb.Restart()    // same port, same SQLite file
package mailboxtest

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/rendezvous/server"
)

// Option configures Start.
type Option func(*config)

type config struct {
	opts   server.Options
	memory bool
}

// WithOptions sets the server options (Store is ignored: the store is chosen
// by Start, see WithMemoryStore).
func WithOptions(o server.Options) Option { return func(c *config) { c.opts = o } }

// WithMemoryStore uses an in-memory store instead of SQLite. Restart then
// loses all state.
func WithMemoryStore() Option { return func(c *config) { c.memory = true } }

// Server is a running mailbox server. It is closed by t.Cleanup.
type Server struct {
	t      testing.TB
	cfg    config
	port   int
	dbPath string

	mu     sync.Mutex
	srv    *server.Server
	store  server.Store
	served chan error
}

// Start starts a server on 127.0.0.1 with an ephemeral port and (unless
// WithMemoryStore) a SQLite database in t.TempDir().
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{t: t}
	for _, o := range opts {
		o(&s.cfg)
	}
	if !s.cfg.memory {
		s.dbPath = filepath.Join(t.TempDir(), "mailbox.sqlite")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailboxtest: listen: %v", err)
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	if err := s.start(l); err != nil {
		l.Close()
		t.Fatalf("mailboxtest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func (s *Server) start(l net.Listener) error {
	var store server.Store
	if s.cfg.memory {
		store = server.NewMemoryStore()
	} else {
		st, err := server.OpenSQLiteStore(s.dbPath)
		if err != nil {
			return err
		}
		store = st
	}
	o := s.cfg.opts
	o.Store = store
	srv, err := server.New(o)
	if err != nil {
		store.Close()
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	s.mu.Lock()
	s.srv, s.store, s.served = srv, store, served
	s.mu.Unlock()
	return nil
}

// URL is the WebSocket URL, ws://127.0.0.1:PORT/v1.
func (s *Server) URL() string { return fmt.Sprintf("ws://127.0.0.1:%d/v1", s.port) }

// Addr is 127.0.0.1:PORT.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// Port is the TCP port, stable across Restart.
func (s *Server) Port() int { return s.port }

// DBPath is the SQLite file ("" with WithMemoryStore).
func (s *Server) DBPath() string { return s.dbPath }

// Server returns the currently running server (it changes on Restart).
func (s *Server) Server() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// Restart closes the server (dropping every client) and starts a new one
// on the same port with the same database file.
func (s *Server) Restart() {
	s.t.Helper()
	s.stop()
	var l net.Listener
	var err error
	for i := 0; i < 100; i++ { // the port may linger briefly
		l, err = net.Listen("tcp", s.Addr())
		if err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("mailboxtest: restart listen: %v", err)
	}
	if err := s.start(l); err != nil {
		l.Close()
		s.t.Fatalf("mailboxtest: restart: %v", err)
	}
}

func (s *Server) stop() {
	s.mu.Lock()
	srv, store, served := s.srv, s.store, s.served
	s.srv, s.store, s.served = nil, nil, nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	if err := srv.Close(); err != nil {
		s.t.Errorf("mailboxtest: close: %v", err)
	}
	if err := <-served; err != nil && !errors.Is(err, server.ErrServerClosed) {
		s.t.Errorf("mailboxtest: serve: %v", err)
	}
	if err := store.Close(); err != nil {
		s.t.Errorf("mailboxtest: close store: %v", err)
	}
}

// Close stops the server. It is safe to call more than once.
func (s *Server) Close() { s.stop() }
