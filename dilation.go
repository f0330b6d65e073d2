package wormhole

import (
	"context"
	"encoding/json"
	"maps"
)

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
