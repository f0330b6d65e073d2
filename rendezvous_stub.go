//go:build !rendezvousclient

package wormhole

import (
	"context"
	"errors"
)

// ErrServerConnection wraps a failure to make the first connection to the
// mailbox server (Python: ServerConnectionError).
var ErrServerConnection = errors.New("wormhole: cannot connect to the mailbox server")

func newRendezvousMailbox(ctx context.Context, side string, o *Options) (mailboxClient, error) {
	return nil, errors.Join(ErrServerConnection, errors.New("rendezvous client not built in yet"))
}
