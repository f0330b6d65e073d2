package wormhole

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"github.com/wormhole-go/wormhole/dilate"
)

// ErrDilationDisabled is returned by Dilate when Options.Dilation was not
// set, so Dilation was never advertised (Python raises NotImplementedError
// unless the wormhole was created with dilation enabled).
var ErrDilationDisabled = errors.New("wormhole: Dilation not enabled (set Options.Dilation)")

// Dilate starts Dilation over this wormhole and returns it. It waits (ctx)
// until the peer was verified and its version message arrived. The
// Dilation lives as long as the wormhole: Close stops it. Calling Dilate
// again returns the same Dilation. If the peer's "can-dilate" shares no
// version with ours, a "please" is still sent (as Python does) and the
// error wraps dilate.ErrPeerCannotDilate.
func (w *Wormhole) Dilate(ctx context.Context, opts dilate.Options) (*dilate.Dilation, error) {
	if w.opts.Dilation == nil {
		return nil, ErrDilationDisabled
	}
	w.dilateMu.Lock()
	defer w.dilateMu.Unlock()
	w.mu.Lock()
	d := w.dilation
	w.mu.Unlock()
	if d != nil {
		return d, nil
	}
	if _, err := w.PeerWormholeVersions(ctx); err != nil {
		return nil, err
	}
	key, err := w.DeriveKey(DilationPurpose, 32)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	theirs := w.peerVers.canDilate()
	w.mu.Unlock()
	if theirs == nil {
		theirs = []string{}
	}
	opts.PeerVersions = theirs
	if opts.Logger == nil {
		opts.Logger = w.log
	}
	_, shared := dilate.SharedVersion(dilate.Versions(), theirs)
	ti := w.timing.add("dilate", map[string]any{"peer_versions": theirs})
	d, err = dilate.New(w.ctx, key, dilationMailbox{w}, opts)
	w.timing.finish(ti, nil)
	if err != nil {
		if errors.Is(err, dilate.ErrPeerCannotDilate) {
			return nil, fmt.Errorf("wormhole: peer can-dilate %q, ours %q: %w", theirs, dilate.Versions(), err)
		}
		return nil, fmt.Errorf("wormhole: starting Dilation: %w", err)
	}
	if !shared { // dilate.New should have refused
		_ = d.Close()
		return nil, fmt.Errorf("wormhole: peer can-dilate %q, ours %q: %w", theirs, dilate.Versions(), dilate.ErrPeerCannotDilate)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state >= StateClosing {
		go func() { _ = d.Close() }()
		return nil, w.closedErrLocked()
	}
	w.dilation = d
	return d, nil
}

// DilationPurpose is the derive_key purpose of the Dilation key
// (py:_dilation/manager.py Dilator.got_key).
const DilationPurpose = "dilation-v1"

// dilationMailbox carries Dilation L1 records through the mailbox as
// phases "dilate-0", "dilate-1", ... (our own counter), encrypted with the
// phase key like application messages, held until the peer is verified,
// and delivers the peer's records in strict numeric order. It satisfies
// interface{ Send(ctx, []byte) error; Receive(ctx) ([]byte, error) }.
type dilationMailbox struct{ w *Wormhole }

// Send queues one record and waits until the server accepted it.
func (d dilationMailbox) Send(ctx context.Context, record []byte) error {
	return d.w.send(ctx, true, record)
}

// Receive returns the peer's next dilate-N record.
func (d dilationMailbox) Receive(ctx context.Context) ([]byte, error) {
	return waitQueue(ctx, d.w, &d.w.dilQ)
}

// dilationKey waits for the key and returns DeriveKey("dilation-v1", 32).
func (w *Wormhole) dilationKey(ctx context.Context) ([]byte, error) {
	if _, err := w.UnverifiedKey(ctx); err != nil {
		return nil, err
	}
	return w.DeriveKey(DilationPurpose, 32)
}

// PeerWormholeVersions waits for the peer's version message and returns
// its whole top-level dict, undecoded (e.g. "can-dilate",
// "dilation-abilities", "app_versions").
func (w *Wormhole) PeerWormholeVersions(ctx context.Context) (map[string]json.RawMessage, error) {
	return waitFor(ctx, w, func() (map[string]json.RawMessage, bool) {
		if w.peerVers == nil {
			return nil, false
		}
		return maps.Clone(w.peerVers.raw), true
	})
}
