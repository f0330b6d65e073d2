package wormhole

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// DefaultRendezvousURL is the public mailbox server the Python CLI uses.
const DefaultRendezvousURL = "ws://relay.magic-wormhole.io:4000/v1"

// Version is this library's version, sent to the mailbox server as the
// second element of client_version.
const Version = "0.1.0"

// Options configure a Wormhole. AppID and RendezvousURL are required.
type Options struct {
	// AppID separates applications on the mailbox server and is mixed into
	// the PAKE; both peers must use the same one, e.g.
	// "lothar.com/wormhole/text-or-file-xfer" for the CLI's file transfer.
	AppID string
	// RendezvousURL is the mailbox server's WebSocket URL, e.g.
	// DefaultRendezvousURL.
	RendezvousURL string
	// AppVersions is sent to the peer as "app_versions" in the version
	// message; the peer's arrives via PeerVersions / VersionsEvent. It must
	// be JSON-encodable. nil sends {}.
	AppVersions map[string]any
	// Dilation, when non-nil, advertises Dilation in the version message
	// ("can-dilate" and "dilation-abilities").
	Dilation *DilationVersion
	// Events enables event mode: everything that happens is delivered, in
	// order, on Events(), which must then be drained until it is closed.
	// Messages are then only delivered as MessageEvents (Receive fails).
	Events bool
	// Logger receives debug logs; nil is silent.
	Logger *slog.Logger
	// ClientVersion is sent to the server in "bind"; the zero value sends
	// {"wormhole-go", Version}.
	ClientVersion [2]string
	// Rand is the randomness source (side, PAKE, nonces, code words); nil
	// means crypto/rand.
	Rand io.Reader
	// ReconnectMin and ReconnectMax bound the mailbox client's reconnect
	// back-off; zero values take the client's defaults.
	ReconnectMin, ReconnectMax time.Duration
	// HTTPClient is used for the WebSocket dial; nil uses the default.
	HTTPClient *http.Client

	// newMailbox overrides the mailbox client (tests).
	newMailbox func(ctx context.Context, side string, o *Options) (mailboxClient, error)
}

// DilationVersion is what a Dilation-capable wormhole advertises in its
// version message, e.g. CanDilate ["ged"] and Abilities
// [{"type":"direct-tcp-v1"},{"type":"relay-v1"}].
type DilationVersion struct {
	CanDilate []string         `json:"can-dilate"`
	Abilities []map[string]any `json:"dilation-abilities"`
}

func (o *Options) validate() error {
	if o.AppID == "" {
		return errors.New("wormhole: Options.AppID is required")
	}
	if o.RendezvousURL == "" && o.newMailbox == nil {
		return errors.New("wormhole: Options.RendezvousURL is required")
	}
	return nil
}

func (o *Options) rand() io.Reader {
	if o.Rand != nil {
		return o.Rand
	}
	return rand.Reader
}

func (o *Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (o *Options) clientVersion() [2]string {
	if o.ClientVersion == ([2]string{}) {
		return [2]string{"wormhole-go", Version}
	}
	return o.ClientVersion
}
