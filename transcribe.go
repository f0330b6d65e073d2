package wormhole

import (
	"context"
	"errors"
)

// TranscribeInitiate is the simplest use of a wormhole, from the early
// README: allocate a code (two words) for the user to read out, and later
// exchange one blob each with whoever types it in (TranscribeRespond).
//
// It returns the code at once; result then sends blob, waits for the
// peer's blob and closes the wormhole. result must be called exactly once
// (with a cancelled context if the exchange is abandoned) so the
// connection is closed.
func TranscribeInitiate(ctx context.Context, opts Options, blob []byte) (code string, result func(context.Context) ([]byte, error), err error) {
	w, err := New(ctx, opts)
	if err != nil {
		return "", nil, err
	}
	code, err = w.AllocateCode(ctx, 2)
	if err != nil {
		return "", nil, errors.Join(err, ignoreLonely(w.Close(ctx)))
	}
	blob = clone(blob)
	return code, func(ctx context.Context) ([]byte, error) {
		return exchange(ctx, w, blob)
	}, nil
}

// TranscribeRespond is the other side of TranscribeInitiate: it uses the
// code it was given, sends blob, and returns the initiator's blob.
func TranscribeRespond(ctx context.Context, opts Options, code string, blob []byte) ([]byte, error) {
	w, err := New(ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := w.SetCode(code); err != nil {
		return nil, errors.Join(err, ignoreLonely(w.Close(ctx)))
	}
	return exchange(ctx, w, blob)
}

// exchange sends blob and receives one message, then closes w.
func exchange(ctx context.Context, w *Wormhole, blob []byte) ([]byte, error) {
	sendErr := make(chan error, 1)
	go func() { sendErr <- w.Send(ctx, blob) }()
	got, rerr := w.Receive(ctx)
	serr := <-sendErr
	cerr := w.Close(ctx)
	if rerr == nil && serr == nil {
		return got, cerr
	}
	// The close error (e.g. ErrWrongPassword) explains the others best.
	if cerr != nil && !errors.Is(cerr, ErrLonely) {
		return nil, cerr
	}
	return nil, errors.Join(rerr, serr, cerr)
}

func ignoreLonely(err error) error {
	if errors.Is(err, ErrLonely) {
		return nil
	}
	return err
}
