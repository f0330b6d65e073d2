package transfer

import (
	"context"
	"errors"
	"fmt"
)

// Conn is what the transfer logic needs from a wormhole: ordered, reliable,
// encrypted messages to and from the peer. *wormhole.Wormhole satisfies it.
type Conn interface {
	Send(ctx context.Context, msg []byte) error
	Receive(ctx context.Context) ([]byte, error)
}

// MaxIgnoredMessages bounds how many messages without a key we use are
// skipped while waiting for an offer or answer.
const MaxIgnoredMessages = 64

// ErrRejected is matched (errors.Is) by a *RemoteError whose text is
// "transfer rejected", and by a *RejectedError.
var ErrRejected = errors.New("transfer rejected")

// RemoteError is an {"error": …} message from the peer.
type RemoteError struct {
	Message string
}

func (e *RemoteError) Error() string {
	return "remote error, transfer abandoned: " + e.Message
}

// Is makes errors.Is(err, ErrRejected) true for "transfer rejected".
func (e *RemoteError) Is(target error) bool {
	return target == ErrRejected && e.Message == ErrTextRejected
}

// AnswerError is an answer that is not the acknowledgement we wanted.
type AnswerError struct {
	Answer Answer
	Want   string // "message_ack" or "file_ack"
}

func (e *AnswerError) Error() string {
	return fmt.Sprintf("unexpected answer from peer (wanted %s \"ok\"): message_ack=%q file_ack=%q",
		e.Want, e.Answer.MessageAck, e.Answer.FileAck)
}

// Is makes errors.Is(err, ErrProtocol) true.
func (e *AnswerError) Is(target error) bool { return target == ErrProtocol }

// SendMessage encodes and sends one message.
func SendMessage(ctx context.Context, c Conn, m *Message) error {
	b, err := Encode(m)
	if err != nil {
		return err
	}
	return c.Send(ctx, b)
}

// SendError sends {"error": text}.
func SendError(ctx context.Context, c Conn, text string) error {
	return SendMessage(ctx, c, &Message{Error: text, HasError: true})
}

// SendOffer sends {"offer": o}.
func SendOffer(ctx context.Context, c Conn, o *Offer) error {
	return SendMessage(ctx, c, &Message{Offer: o})
}

// SendTransit sends {"transit": t}.
func SendTransit(ctx context.Context, c Conn, t *Transit) error {
	return SendMessage(ctx, c, &Message{Transit: t})
}

// SendAnswer sends {"answer": a}.
func SendAnswer(ctx context.Context, c Conn, a *Answer) error {
	return SendMessage(ctx, c, &Message{Answer: a})
}

// AwaitAnswer is the sender's loop after the offer: it returns the peer's
// answer. A peer {"error": …} becomes a *RemoteError; transit messages are
// passed to onTransit (which may be nil); messages with no key we know are
// skipped (at most MaxIgnoredMessages of them).
func AwaitAnswer(ctx context.Context, c Conn, onTransit func(*Transit) error) (*Answer, error) {
	for ignored := 0; ignored <= MaxIgnoredMessages; {
		b, err := c.Receive(ctx)
		if err != nil {
			return nil, err
		}
		m, err := Decode(b)
		if err != nil {
			return nil, err
		}
		if m.HasError {
			return nil, &RemoteError{Message: m.Error}
		}
		recognized := false
		if m.Transit != nil {
			recognized = true
			if onTransit != nil {
				if err := onTransit(m.Transit); err != nil {
					return nil, err
				}
			}
		}
		if m.Answer != nil {
			return m.Answer, nil
		}
		if !recognized {
			ignored++
		}
	}
	return nil, protoErr("peer sent %d messages without an answer", MaxIgnoredMessages+1)
}

// SendText offers text and waits for the receiver's {"message_ack":"ok"}.
// It fails with a *RemoteError if the receiver answers {"error": …} and an
// *AnswerError for any other answer.
func SendText(ctx context.Context, c Conn, text string) error {
	if err := SendOffer(ctx, c, TextOffer(text)); err != nil {
		return err
	}
	a, err := AwaitAnswer(ctx, c, nil)
	if err != nil {
		return err
	}
	if a.MessageAck != "ok" {
		return &AnswerError{Answer: *a, Want: "message_ack"}
	}
	return nil
}

// ReceiveOffer is the receiver's loop: it returns the first offer. A peer
// {"error": …} becomes a *RemoteError. Only the first transit message is
// passed to onTransit (which may be nil), as Python does; later ones are
// ignored.
func ReceiveOffer(ctx context.Context, c Conn, onTransit func(*Transit) error) (*Offer, error) {
	sawTransit := false
	for ignored := 0; ignored <= MaxIgnoredMessages; {
		b, err := c.Receive(ctx)
		if err != nil {
			return nil, err
		}
		m, err := Decode(b)
		if err != nil {
			return nil, err
		}
		if m.HasError {
			return nil, &RemoteError{Message: m.Error}
		}
		recognized := false
		if m.Transit != nil {
			recognized = true
			if !sawTransit && onTransit != nil {
				if err := onTransit(m.Transit); err != nil {
					return nil, err
				}
			}
			sawTransit = true
		}
		if m.Offer != nil {
			return m.Offer, nil
		}
		if !recognized {
			ignored++
		}
	}
	return nil, protoErr("peer sent %d messages without an offer", MaxIgnoredMessages+1)
}

// UnexpectedOfferError is returned by ReceiveText for a non-text offer,
// after it has told the peer so.
type UnexpectedOfferError struct {
	Offer *Offer
}

func (e *UnexpectedOfferError) Error() string {
	return "peer offered a " + e.Offer.Kind().String() + ", not a text message"
}

// ReceiveText waits for a text offer, acknowledges it and returns the text.
// A file or directory offer is refused with {"error":"transfer rejected"}
// (an unknown one with "unknown offer type") and returned as an
// *UnexpectedOfferError.
func ReceiveText(ctx context.Context, c Conn) (string, error) {
	o, err := ReceiveOffer(ctx, c, nil)
	if err != nil {
		return "", err
	}
	if o.Kind() != KindText {
		reason := ErrTextRejected
		if o.Kind() == KindUnknown {
			reason = ErrTextUnknownOffer
		}
		if err := SendError(ctx, c, reason); err != nil {
			return "", err
		}
		return "", &UnexpectedOfferError{Offer: o}
	}
	if err := AcceptText(ctx, c); err != nil {
		return "", err
	}
	return *o.Message, nil
}

// AcceptText sends {"answer":{"message_ack":"ok"}}.
func AcceptText(ctx context.Context, c Conn) error {
	return SendAnswer(ctx, c, &Answer{MessageAck: "ok"})
}

// AcceptFile sends {"answer":{"file_ack":"ok"}}; the sender then connects
// transit.
func AcceptFile(ctx context.Context, c Conn) error {
	return SendAnswer(ctx, c, &Answer{FileAck: "ok"})
}
