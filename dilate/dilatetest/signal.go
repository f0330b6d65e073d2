// Package dilatetest provides helpers for testing code that uses package
// dilate without a mailbox server.
package dilatetest

import (
	"context"
	"errors"
	"sync"
)

// ErrClosed is returned by a closed Signaling.
var ErrClosed = errors.New("dilatetest: signaling closed")

// Signaling is one end of an in-memory, ordered, lossless pair standing in
// for the mailbox's dilate-N phases. It implements dilate.Signaling.
type Signaling struct {
	mu     sync.Mutex
	peer   *Signaling
	queue  [][]byte
	notify chan struct{}
	closed bool
	sent   int
	held   bool
	tap    func([]byte)
}

// Pair returns two connected ends.
func Pair() (*Signaling, *Signaling) {
	a := &Signaling{notify: make(chan struct{})}
	b := &Signaling{notify: make(chan struct{})}
	a.peer, b.peer = b, a
	return a, b
}

// Send delivers a copy of record to the peer's Receive queue.
func (s *Signaling) Send(ctx context.Context, record []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.sent++
	tap := s.tap
	s.mu.Unlock()
	if tap != nil {
		tap(record)
	}
	p := s.peer
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil // like a mailbox: the peer may read later, or never
	}
	p.queue = append(p.queue, append([]byte(nil), record...))
	close(p.notify)
	p.notify = make(chan struct{})
	return nil
}

// Receive returns the next record the peer sent, in order.
func (s *Signaling) Receive(ctx context.Context) ([]byte, error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 && !s.held {
			r := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return r, nil
		}
		if s.closed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		ch := s.notify
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Sent is the number of records sent so far (the next phase would be
// dilate-<Sent>).
func (s *Signaling) Sent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

// Tap registers f to see every record this end sends (for tests).
func (s *Signaling) Tap(f func([]byte)) {
	s.mu.Lock()
	s.tap = f
	s.mu.Unlock()
}

// Hold stops Receive on this end from returning records (they stay queued,
// in order) until Release: a slow or disconnected mailbox.
func (s *Signaling) Hold() {
	s.mu.Lock()
	s.held = true
	s.mu.Unlock()
}

// Release undoes Hold.
func (s *Signaling) Release() {
	s.mu.Lock()
	s.held = false
	close(s.notify)
	s.notify = make(chan struct{})
	s.mu.Unlock()
}

// Close makes this end's Send and Receive fail.
func (s *Signaling) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.notify)
		s.notify = make(chan struct{})
	}
	return nil
}
