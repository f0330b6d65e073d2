package wormhole

import (
	"context"
	"encoding/json"
)

// mailboxClient is what the wormhole needs from the mailbox (rendezvous)
// client. The production implementation adapts package rendezvous
// (rendezvous_client.go); tests may substitute an in-memory one.
//
// Errors: a server "error" message is returned as *ServerError, a welcome
// with an error as *WelcomeError; anything else means the client died.
type mailboxClient interface {
	// Welcome waits for the server's welcome message.
	Welcome(ctx context.Context) (Welcome, error)
	List(ctx context.Context) ([]string, error)
	Allocate(ctx context.Context) (string, error)
	Claim(ctx context.Context, nameplate string) (mailbox string, err error)
	Release(ctx context.Context, nameplate string) error
	Open(ctx context.Context, mailbox string) error
	// Add stores a message in the opened mailbox. body is raw bytes (the
	// client hex-encodes it on the wire).
	Add(ctx context.Context, phase string, body []byte) error
	// Next returns the next peer message (each phase once, never our own
	// side's echoes). It fails when ctx ends or the client died.
	Next(ctx context.Context) (inbound, error)
	CloseMailbox(ctx context.Context, mailbox, mood string) error
	// Done is closed when the client stopped for good; Err says why.
	Done() <-chan struct{}
	Err() error
	Close() error
}

// inbound is one peer message from the mailbox.
type inbound struct {
	Side  string
	Phase string
	Body  []byte
}

// Welcome is the mailbox server's welcome message.
type Welcome struct {
	// MOTD is the server's message of the day ("" if none).
	MOTD string
	// CurrentCLIVersion is the newest CLI version the server knows ("" if
	// the server does not say).
	CurrentCLIVersion string
	// Raw is the whole welcome dict, undecoded.
	Raw map[string]json.RawMessage
}
