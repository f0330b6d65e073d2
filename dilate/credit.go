package dilate

import (
	"errors"
	"fmt"
	"os"
)

// CreditVersion is a Go-only Dilation mode, ranked first in GoVersions()
// and ExtendedVersions(): "ged"'s records and durable L4 queue, plus
// per-subchannel credit-based flow control, so that a subchannel nobody
// reads stalls only itself (as in YamuxVersion mode) while bulk data keeps
// ged's cost per byte (no second framing layer).
//
// Wire: exactly "ged" (KCM, PING, PONG, OPEN, DATA, CLOSE, ACK), plus one
// record, CREDIT = tag 0x07, be32 subchannel id, be32 seqnum, be32 grant
// (13 bytes). CREDIT is sequenced like OPEN/DATA/CLOSE: it takes a seqnum,
// is acked, re-sent on every new connection until acked and processed
// exactly once, in order, so the accounting stays exact across reconnects.
//
// Rules, per subchannel direction: the sender starts with 256 KiB of
// credit (creditInitial, fixed by this version) and may send DATA payload
// bytes only while it has credit; Write blocks (honouring write deadlines,
// Close and Dilation close) when it has none. Each CREDIT adds grant bytes.
// A receiver whose window (Options.CreditWindow) is larger grants the
// difference right after its own OPEN, or for the peer's OPEN once the
// application has accepted the subchannel (one waiting for Accept or for a
// listener holds at most creditInitial), then grants back what the
// application consumed once half a window has been read. After Close,
// DATA still arriving is dropped and granted back at once, so the peer's
// Writes never hang on a subchannel we no longer read (as in "ged", where
// such writes succeed and the data is dropped).
//
// The connection reader never waits for a subchannel in this mode: DATA
// beyond the granted credit is a protocol violation, handled as a reset of
// that subchannel only: it is logged, its buffered data is dropped, our
// CLOSE is sent, further DATA for it is dropped, and Read and Write fail
// with an error wrapping ErrCreditExceeded. The connection itself is kept:
// dropping it would not help, since the same records would be re-sent on
// the next one.
const CreditVersion = "wormhole-go-credit-1"

// ErrCreditExceeded is wrapped by Read and Write errors of a subchannel
// whose peer sent more DATA than it was granted (CreditVersion mode).
var ErrCreditExceeded = errors.New("dilate: peer exceeded its subchannel credit")

const (
	// creditInitial is the credit each subchannel direction starts with
	// (part of CreditVersion: both sides must agree).
	creditInitial = 256 << 10
	// defaultCreditWindow is Options.CreditWindow's default (measured in
	// docs/performance.md, "Dilation").
	defaultCreditWindow = 4 << 20
	// maxCreditWindow keeps a grant within 32 bits and sane memory.
	maxCreditWindow = 1 << 30
	// maxSendCredit caps accumulated credit (a peer may grant without end).
	maxSendCredit = 1 << 50
)

// topUpCredit grants the peer the part of our window above the initial
// credit, right after our OPEN or when Accept hands the peer's subchannel to
// the application (CreditVersion mode only; called once per subchannel).
func (s *Subchannel) topUpCredit() {
	if !s.credit {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if extra := s.window - creditInitial; extra > 0 {
		s.grantLocked(extra)
	}
}

// grantLocked queues a CREDIT for n more bytes; s.mu must be held (so
// grants of one subchannel are queued in order).
func (s *Subchannel) grantLocked(n int64) {
	if n <= 0 || s.remoteClosed || s.cerr != nil {
		return // the peer sends no more DATA
	}
	s.recvLimit += n
	_ = s.d.out.send(false, 0, sendWait{}, func(seq uint32) []byte {
		return appendRecord(make([]byte, 0, 13), record{tag: tagCredit, scid: s.id, seq: seq, grant: uint32(n)})
	})
}

// consumedLocked accounts n bytes read (or dropped) and grants them back
// once half a window is due; s.mu must be held.
func (s *Subchannel) consumedLocked(n int) {
	s.unGranted += int64(n)
	if s.unGranted >= s.window/2 {
		s.grantLocked(s.unGranted)
		s.unGranted = 0
	}
}

// addCredit handles the peer's CREDIT.
func (s *Subchannel) addCredit(n uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.credit {
		return
	}
	if n == 0 {
		// Refusal marker (Dilation.refuseOpen): only meaningful for a
		// subchannel we opened; a CLOSE follows.
		s.d.mu.Lock()
		ours := !s.d.peerIDLocked(s.id)
		s.d.mu.Unlock()
		if ours && s.cerr == nil {
			s.cerr = fmt.Errorf("%w: subchannel %d (%q)", ErrSubchannelRefused, s.id, s.name)
			s.d.log.Debug("dilate: peer refused our subchannel", "scid", s.id, "subprotocol", s.name)
			for _, b := range s.rbuf {
				s.d.putRbuf(b)
			}
			s.rbuf, s.rlen, s.roff = nil, 0, 0
			s.changed()
		}
		return
	}
	s.sendCredit = min(s.sendCredit+int64(n), maxSendCredit)
	s.changed()
}

// takeCredit waits until there is send credit and takes up to want bytes
// of it.
func (s *Subchannel) takeCredit(want int, w sendWait) (int, error) {
	for {
		s.mu.Lock()
		if s.cerr != nil {
			err := s.cerr
			s.mu.Unlock()
			return 0, err
		}
		if s.sendCredit > 0 {
			n := min(int64(want), s.sendCredit)
			s.sendCredit -= n
			s.mu.Unlock()
			return int(n), nil
		}
		ch := s.notify
		s.mu.Unlock()
		select {
		case <-ch:
		case <-w.deadline:
			return 0, os.ErrDeadlineExceeded
		case <-w.closed:
			return 0, errSubchannelClosed
		case <-w.stopped:
			return 0, errDilationClosed
		}
	}
}

// returnCredit gives back credit taken for DATA that was not queued.
func (s *Subchannel) returnCredit(n int) {
	s.mu.Lock()
	s.sendCredit += int64(n)
	s.changed()
	s.mu.Unlock()
}

// deliverCredit is deliver in CreditVersion mode: it never waits.
func (s *Subchannel) deliverCredit(data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cerr != nil || s.remoteClosed {
		return
	}
	n := int64(len(data))
	if s.recvTotal+n > s.recvLimit {
		s.cerr = fmt.Errorf("%w: subchannel %d: %d bytes received, %d granted", ErrCreditExceeded, s.id, s.recvTotal+n, s.recvLimit)
		s.d.log.Warn("dilate: peer exceeded subchannel credit; resetting the subchannel", "scid", s.id, "err", s.cerr)
		for _, b := range s.rbuf {
			s.d.putRbuf(b)
		}
		s.rbuf, s.rlen, s.roff = nil, 0, 0
		s.changed()
		s.sendCloseLocked()
		return
	}
	s.recvTotal += n
	if s.localClosed {
		s.consumedLocked(len(data)) // dropped: granted back
		return
	}
	s.rbuf = append(s.rbuf, append(s.d.getRbuf(len(data)), data...))
	s.rlen += len(data)
	s.changed()
}
