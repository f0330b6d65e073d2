package transit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Handshake errors.
var (
	// ErrBadHandshake: the peer (or relay) sent something other than the
	// expected bytes, or hung up during negotiation.
	ErrBadHandshake = errors.New("transit: bad handshake")
	// ErrNevermind: the sender chose another connection ("nevermind\n").
	ErrNevermind = errors.New("transit: sender chose another connection")
	// ErrNotChosen: as sender, another connection had already won, so
	// this one was told "nevermind\n".
	ErrNotChosen = errors.New("transit: another connection was chosen")
)

var (
	relayOK   = []byte("ok\n")
	goMsg     = []byte("go\n")
	nevermind = []byte("nevermind\n")
)

// expectBytes reads exactly len(want) bytes and fails at the first byte
// that differs, without waiting for the rest (Python's
// _check_and_remove).
func expectBytes(r io.Reader, want []byte, what string) error {
	buf := make([]byte, len(want))
	got := 0
	for got < len(want) {
		n, err := r.Read(buf[got:])
		if n > 0 && !bytes.Equal(buf[got:got+n], want[got:got+n]) {
			return fmt.Errorf("%w: %s: got %q, want %q", ErrBadHandshake, what, buf[:got+n], want)
		}
		got += n
		if err != nil && got < len(want) {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: %s: connection lost after %q", ErrBadHandshake, what, buf[:got])
			}
			return fmt.Errorf("%w: %s: %w", ErrBadHandshake, what, err)
		}
	}
	return nil
}

// negotiation is one connection's handshake, independent of the network
// (fuzzable). claim is consulted by the sender once the peer's handshake
// is complete.
type negotiation struct {
	sender  bool
	relayHS []byte // nil for direct connections
	mine    []byte // our handshake
	theirs  []byte // expected peer handshake
}

func newNegotiation(key []byte, sender bool, relayHS []byte) negotiation {
	n := negotiation{sender: sender, relayHS: relayHS}
	if sender {
		n.mine, n.theirs = SenderHandshake(key), ReceiverHandshake(key)
	} else {
		n.mine, n.theirs = ReceiverHandshake(key), SenderHandshake(key)
	}
	return n
}

// run performs the negotiation on rw. On success the next bytes on rw are
// records.
func (n negotiation) run(rw io.ReadWriter, claim func() bool) error {
	if n.relayHS != nil {
		if _, err := rw.Write(n.relayHS); err != nil {
			return fmt.Errorf("transit: write relay handshake: %w", err)
		}
		if err := expectBytes(rw, relayOK, "relay"); err != nil {
			return err
		}
	}
	if _, err := rw.Write(n.mine); err != nil {
		return fmt.Errorf("transit: write handshake: %w", err)
	}
	if err := expectBytes(rw, n.theirs, "peer handshake"); err != nil {
		return err
	}
	if n.sender {
		if !claim() {
			rw.Write(nevermind)
			return ErrNotChosen
		}
		if _, err := rw.Write(goMsg); err != nil {
			return fmt.Errorf("transit: write go: %w", err)
		}
		return nil
	}
	// Receiver: wait for exactly "go\n"; "nevermind\n" means another
	// connection won.
	var first [1]byte
	if _, err := io.ReadFull(rw, first[:]); err != nil {
		return fmt.Errorf("%w: waiting for go: %w", ErrBadHandshake, err)
	}
	switch first[0] {
	case 'g':
		if err := expectBytes(rw, goMsg[1:], "go"); err != nil {
			return err
		}
		return nil
	case 'n':
		return ErrNevermind
	}
	return fmt.Errorf("%w: got %q, want \"go\\n\"", ErrBadHandshake, first[:])
}
