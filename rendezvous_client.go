package wormhole

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/wormhole-go/wormhole/rendezvous"
)

// ErrServerConnection wraps a failure to make the first connection to the
// mailbox server (Python: ServerConnectionError).
var ErrServerConnection = rendezvous.ErrServerConnection

// rvMailbox adapts *rendezvous.Client to mailboxClient.
type rvMailbox struct{ c *rendezvous.Client }

func newRendezvousMailbox(ctx context.Context, side string, o *Options) (mailboxClient, error) {
	c := rendezvous.New(rendezvous.Options{
		URL:           o.RendezvousURL,
		AppID:         o.AppID,
		Side:          side,
		ClientVersion: o.clientVersion(),
		Logger:        o.logger(),
		ReconnectMin:  o.ReconnectMin,
		ReconnectMax:  o.ReconnectMax,
		HTTPClient:    o.HTTPClient,
	})
	if err := c.Connect(ctx); err != nil {
		_ = c.Close()
		var we *rendezvous.WelcomeError
		if errors.As(err, &we) {
			return nil, convErr(err)
		}
		return nil, fmt.Errorf("wormhole: connecting to %s: %w", o.RendezvousURL, err)
	}
	return rvMailbox{c}, nil
}

// convErr maps the client's error types to ours (keeping them wrapped).
func convErr(err error) error {
	if err == nil {
		return nil
	}
	var we *rendezvous.WelcomeError
	if errors.As(err, &we) {
		return &WelcomeError{Message: we.Msg, Err: err}
	}
	var se *rendezvous.ServerError
	if errors.As(err, &se) {
		return &ServerError{Message: se.Msg, Err: err}
	}
	return err
}

func (m rvMailbox) Welcome(ctx context.Context) (Welcome, error) {
	wel, err := m.c.Welcome(ctx)
	if err != nil {
		return Welcome{}, convErr(err)
	}
	return Welcome{MOTD: wel.MOTD, CurrentCLIVersion: wel.CurrentCLIVersion, Raw: maps.Clone(wel.Raw)}, nil
}

func (m rvMailbox) List(ctx context.Context) ([]string, error) {
	l, err := m.c.List(ctx)
	return l, convErr(err)
}

func (m rvMailbox) Allocate(ctx context.Context) (string, error) {
	n, err := m.c.Allocate(ctx)
	return n, convErr(err)
}

func (m rvMailbox) Claim(ctx context.Context, nameplate string) (string, error) {
	mb, err := m.c.Claim(ctx, nameplate)
	return mb, convErr(err)
}

func (m rvMailbox) Release(ctx context.Context, nameplate string) error {
	return convErr(m.c.Release(ctx, nameplate))
}

func (m rvMailbox) Open(ctx context.Context, mailbox string) error {
	return convErr(m.c.Open(ctx, mailbox))
}

func (m rvMailbox) Add(ctx context.Context, phase string, body []byte) error {
	return convErr(m.c.Add(ctx, phase, body))
}

// Next returns the next peer message. After a server "error" it first
// returns the peer messages that arrived before the error (the client
// buffers them and delivers no later ones), then the *ServerError, so the
// wormhole sees them in wire order as Python's Boss does.
func (m rvMailbox) Next(ctx context.Context) (inbound, error) {
	select {
	case msg, ok := <-m.c.Messages():
		if !ok {
			return inbound{}, m.deadErr()
		}
		return inbound{Side: msg.Side, Phase: msg.Phase, Body: msg.Body}, nil
	case <-m.c.Errored():
		select {
		case msg, ok := <-m.c.Messages():
			if ok {
				return inbound{Side: msg.Side, Phase: msg.Phase, Body: msg.Body}, nil
			}
		default:
		}
		return inbound{}, convErr(m.c.ServerErr())
	case <-m.c.Done():
		return inbound{}, m.deadErr()
	case <-ctx.Done():
		return inbound{}, ctx.Err()
	}
}

// deadErr is why the client stopped: its fatal error, else the server's
// "error" if one arrived (the client keeps running after it, so Err does
// not report it), else a plain stop.
func (m rvMailbox) deadErr() error {
	if err := m.c.Err(); err != nil {
		return convErr(err)
	}
	if err := m.c.ServerErr(); err != nil {
		return convErr(err)
	}
	return errors.New("mailbox client stopped")
}

func (m rvMailbox) CloseMailbox(ctx context.Context, mailbox, mood string) error {
	return convErr(m.c.CloseMailbox(ctx, mailbox, mood))
}

func (m rvMailbox) Done() <-chan struct{} { return m.c.Done() }
func (m rvMailbox) Err() error            { return convErr(m.c.Err()) }
func (m rvMailbox) Close() error          { return m.c.Close() }
