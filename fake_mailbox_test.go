package wormhole

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
)

// fakeServer is an in-memory mailbox server implementing the semantics
// the wormhole relies on (spec section 1.7): allocate, claim (at most two
// sides), release, open (replaying stored messages), add (echoed to every
// subscriber), close. It lets the state machine be tested without a
// network; the interop tests use real servers.
type fakeServer struct {
	mu         sync.Mutex
	nextNP     int
	nameplates map[string]*fakeNameplate
	mailboxes  map[string]*fakeBox
	welcomeErr string
	addErr     string   // Add fails with this server error
	log        []string // "side op args" for assertions
}

type fakeNameplate struct {
	mailbox  string
	claimers map[string]bool
}

type fakeBox struct {
	msgs []inbound
	subs map[string]*fakeClient
	mood map[string]string
}

func newFakeServer() *fakeServer {
	return &fakeServer{nextNP: 1, nameplates: map[string]*fakeNameplate{}, mailboxes: map[string]*fakeBox{}}
}

func (s *fakeServer) opts(appID string) Options {
	return Options{AppID: appID, newMailbox: func(ctx context.Context, side string, o *Options) (mailboxClient, error) {
		return s.client(side), nil
	}}
}

func (s *fakeServer) record(side, f string, a ...any) {
	s.log = append(s.log, side+" "+fmt.Sprintf(f, a...))
}

func (s *fakeServer) logged() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

func (s *fakeServer) client(side string) *fakeClient {
	return &fakeClient{s: s, side: side, done: make(chan struct{}), notify: make(chan struct{}, 1), seen: map[string]bool{}}
}

type fakeClient struct {
	s      *fakeServer
	side   string
	mu     sync.Mutex
	q      []inbound
	seen   map[string]bool
	notify chan struct{}
	done   chan struct{}
	once   sync.Once
}

func (c *fakeClient) deliver(m inbound) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.Side == c.side || c.seen[m.Phase] {
		return
	}
	c.seen[m.Phase] = true
	c.q = append(c.q, m)
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func (c *fakeClient) alive(ctx context.Context) error {
	select {
	case <-c.done:
		return errors.New("fake client closed")
	default:
	}
	return ctx.Err()
}

func (c *fakeClient) Welcome(ctx context.Context) (Welcome, error) {
	if err := c.alive(ctx); err != nil {
		return Welcome{}, err
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.s.welcomeErr != "" {
		return Welcome{}, &WelcomeError{Message: c.s.welcomeErr}
	}
	return Welcome{MOTD: "fake"}, nil
}

func (c *fakeClient) List(ctx context.Context) ([]string, error) {
	if err := c.alive(ctx); err != nil {
		return nil, err
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	var l []string
	for n := range c.s.nameplates {
		l = append(l, n)
	}
	return l, nil
}

func (c *fakeClient) Allocate(ctx context.Context) (string, error) {
	if err := c.alive(ctx); err != nil {
		return "", err
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	n := strconv.Itoa(c.s.nextNP)
	c.s.nextNP++
	c.s.nameplates[n] = &fakeNameplate{claimers: map[string]bool{}}
	c.s.record(c.side, "allocate %s", n)
	return n, nil
}

func (c *fakeClient) Claim(ctx context.Context, nameplate string) (string, error) {
	if err := c.alive(ctx); err != nil {
		return "", err
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	np := c.s.nameplates[nameplate]
	if np == nil {
		np = &fakeNameplate{claimers: map[string]bool{}}
		c.s.nameplates[nameplate] = np
	}
	if np.mailbox == "" {
		np.mailbox = "mb" + nameplate
	}
	np.claimers[c.side] = true
	if len(np.claimers) > 2 {
		return "", &ServerError{Message: "crowded"}
	}
	c.s.record(c.side, "claim %s", nameplate)
	return np.mailbox, nil
}

func (c *fakeClient) Release(ctx context.Context, nameplate string) error {
	if err := c.alive(ctx); err != nil {
		return err
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.s.record(c.side, "release %s", nameplate)
	if np := c.s.nameplates[nameplate]; np != nil {
		delete(np.claimers, c.side)
		if len(np.claimers) == 0 {
			delete(c.s.nameplates, nameplate)
		}
	}
	return nil
}

func (c *fakeClient) Open(ctx context.Context, mailbox string) error {
	if err := c.alive(ctx); err != nil {
		return err
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.s.record(c.side, "open %s", mailbox)
	b := c.s.mailboxes[mailbox]
	if b == nil {
		b = &fakeBox{subs: map[string]*fakeClient{}, mood: map[string]string{}}
		c.s.mailboxes[mailbox] = b
	}
	b.subs[c.side] = c
	for _, m := range b.msgs {
		c.deliver(m)
	}
	return nil
}

func (c *fakeClient) box() (*fakeBox, error) {
	for _, b := range c.s.mailboxes {
		if b.subs[c.side] == c {
			return b, nil
		}
	}
	return nil, &ServerError{Message: "must open mailbox first"}
}

func (c *fakeClient) Add(ctx context.Context, phase string, body []byte) error {
	if err := c.alive(ctx); err != nil {
		return err
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	b, err := c.box()
	if err != nil {
		return err
	}
	if c.s.addErr != "" {
		return &ServerError{Message: c.s.addErr}
	}
	c.s.record(c.side, "add %s", phase)
	m := inbound{Side: c.side, Phase: phase, Body: append([]byte(nil), body...)}
	b.msgs = append(b.msgs, m)
	for _, sub := range b.subs {
		sub.deliver(m)
	}
	return nil
}

func (c *fakeClient) Next(ctx context.Context) (inbound, error) {
	for {
		c.mu.Lock()
		if len(c.q) > 0 {
			m := c.q[0]
			c.q = c.q[1:]
			c.mu.Unlock()
			return m, nil
		}
		c.mu.Unlock()
		select {
		case <-c.notify:
		case <-c.done:
			return inbound{}, errors.New("fake client closed")
		case <-ctx.Done():
			return inbound{}, ctx.Err()
		}
	}
}

func (c *fakeClient) CloseMailbox(ctx context.Context, mailbox, mood string) error {
	if err := c.alive(ctx); err != nil {
		return err
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.s.record(c.side, "close %s %s", mailbox, mood)
	if b := c.s.mailboxes[mailbox]; b != nil {
		b.mood[c.side] = mood
		delete(b.subs, c.side)
	}
	return nil
}

func (c *fakeClient) Done() <-chan struct{} { return c.done }
func (c *fakeClient) Err() error            { return nil }
func (c *fakeClient) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}
