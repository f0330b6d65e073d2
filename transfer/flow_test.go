package transfer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// pipeEnd is one end of an in-memory, ordered message pipe.
type pipeEnd struct {
	in  <-chan []byte
	out chan<- []byte
}

func (p pipeEnd) Send(ctx context.Context, b []byte) error {
	select {
	case p.out <- append([]byte(nil), b...):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p pipeEnd) Receive(ctx context.Context) ([]byte, error) {
	select {
	case b := <-p.in:
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func pipe() (pipeEnd, pipeEnd) {
	a, b := make(chan []byte, 16), make(chan []byte, 16)
	return pipeEnd{in: a, out: b}, pipeEnd{in: b, out: a}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // safety net only
	t.Cleanup(cancel)
	return ctx
}

func TestTextRoundTrip(t *testing.T) {
	ctx := testCtx(t)
	s, r := pipe()
	errc := make(chan error, 1)
	go func() { errc <- SendText(ctx, s, "hi <&> \u00e9") }()
	got, err := ReceiveText(ctx, r)
	if err != nil || got != "hi <&> \u00e9" {
		t.Fatalf("ReceiveText = %q, %v", got, err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("SendText: %v", err)
	}
}

// scripted plays a peer: it records what we send and replies from a script.
func scripted(t *testing.T, replies ...string) (pipeEnd, <-chan []byte) {
	us, peer := pipe()
	for _, r := range replies {
		peer.out <- []byte(r)
	}
	return us, peer.in
}

func TestSendTextWire(t *testing.T) {
	ctx := testCtx(t)
	c, sent := scripted(t, `{"transit": {"hints-v1": []}}`, `{"unrelated": 1}`, `{"answer": {"message_ack": "ok"}}`)
	if err := SendText(ctx, c, "x"); err != nil {
		t.Fatal(err)
	}
	if got := string(<-sent); got != `{"offer": {"message":"x"}}` {
		t.Fatalf("sent %s", got)
	}
}

func TestSendTextErrors(t *testing.T) {
	ctx := testCtx(t)
	c, _ := scripted(t, `{"error": "transfer rejected"}`)
	err := SendText(ctx, c, "x")
	var re *RemoteError
	if !errors.As(err, &re) || re.Message != "transfer rejected" || !errors.Is(err, ErrRejected) {
		t.Fatalf("err = %v", err)
	}
	if err.Error() != "remote error, transfer abandoned: transfer rejected" {
		t.Fatalf("message %q", err)
	}

	c, _ = scripted(t, `{"answer": {"file_ack": "ok"}}`)
	err = SendText(ctx, c, "x")
	var ae *AnswerError
	if !errors.As(err, &ae) || !errors.Is(err, ErrProtocol) {
		t.Fatalf("err = %v", err)
	}

	c, _ = scripted(t, `not json`)
	if err := SendText(ctx, c, "x"); !errors.Is(err, ErrProtocol) {
		t.Fatalf("err = %v", err)
	}

	// bounded: a peer that only chatters is cut off
	var junk []string
	for i := 0; i <= MaxIgnoredMessages; i++ {
		junk = append(junk, `{"chatter": 1}`)
	}
	us, peer := pipe()
	go func() {
		for _, j := range junk {
			if peer.Send(ctx, []byte(j)) != nil {
				return
			}
		}
	}()
	go func() { // drain our offer
		_, _ = peer.Receive(ctx)
	}()
	if err := SendText(ctx, us, "x"); !errors.Is(err, ErrProtocol) {
		t.Fatalf("chatter: err = %v", err)
	}

	// cancellation ends the wait
	cctx, cancel := context.WithCancel(ctx)
	c, _ = scripted(t)
	cancel()
	if err := SendText(cctx, c, "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: err = %v", err)
	}
}

func TestReceiveTextRejectsFile(t *testing.T) {
	ctx := testCtx(t)
	var seenTransit int
	c, sent := scripted(t,
		`{"transit": {"abilities-v1": [{"type": "direct-tcp-v1"}], "hints-v1": []}}`,
		`{"transit": {"abilities-v1": [], "hints-v1": []}}`,
		`{"offer": {"file": {"filename": "a", "filesize": 3}}}`)
	o, err := ReceiveOffer(ctx, c, func(*Transit) error { seenTransit++; return nil })
	if err != nil || o.Kind() != KindFile || seenTransit != 1 {
		t.Fatalf("ReceiveOffer = %+v, %v (transit seen %d)", o, err, seenTransit)
	}

	c, sent = scripted(t, `{"offer": {"file": {"filename": "a", "filesize": 3}}}`)
	_, err = ReceiveText(ctx, c)
	var ue *UnexpectedOfferError
	if !errors.As(err, &ue) || ue.Offer.Kind() != KindFile {
		t.Fatalf("err = %v", err)
	}
	if got := string(<-sent); got != `{"error": "transfer rejected"}` {
		t.Fatalf("sent %s", got)
	}

	c, sent = scripted(t, `{"offer": {"pigeon": {}}}`)
	if _, err = ReceiveText(ctx, c); !errors.As(err, &ue) {
		t.Fatalf("err = %v", err)
	}
	if got := string(<-sent); got != `{"error": "unknown offer type"}` {
		t.Fatalf("sent %s", got)
	}

	c, _ = scripted(t, `{"error": "sender rejected verification check, abandoned transfer"}`)
	_, err = ReceiveText(ctx, c)
	var re *RemoteError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "verification") || errors.Is(err, ErrRejected) {
		t.Fatalf("err = %v", err)
	}
}

func TestAcceptWire(t *testing.T) {
	ctx := testCtx(t)
	c, sent := scripted(t)
	if err := AcceptText(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := AcceptFile(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := SendTransit(ctx, c, &Transit{Abilities: []Ability{{HintDirectTCP}}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{"answer": {"message_ack":"ok"}}`,
		`{"answer": {"file_ack":"ok"}}`,
		`{"transit": {"abilities-v1":[{"type":"direct-tcp-v1"}],"hints-v1":[]}}`,
	} {
		if got := string(<-sent); got != want {
			t.Errorf("sent %s, want %s", got, want)
		}
	}
}
