package dilate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// L3 record tags (py:_dilation/connection.py).
const (
	tagKCM   byte = 0x00
	tagPing  byte = 0x01
	tagPong  byte = 0x02
	tagOpen  byte = 0x03
	tagData  byte = 0x04
	tagClose byte = 0x05
	tagAck   byte = 0x06
	// tagCredit is CreditVersion mode only (never sent or accepted in
	// "ged" mode): CREDIT(scid, seq, grant) lets the peer send grant more
	// DATA bytes on subchannel scid. It is sequenced like OPEN/DATA/CLOSE
	// (acked, re-sent after a reconnect, processed exactly once).
	tagCredit byte = 0x07
)

// ErrBadRecord is wrapped by every L3 decoding error.
var ErrBadRecord = errors.New("dilate: malformed L3 record")

// record is one decoded L3 record. Fields unused by a kind are zero.
type record struct {
	tag     byte
	pingID  uint32 // PING, PONG
	scid    uint32 // OPEN, DATA, CLOSE
	seq     uint32 // OPEN, DATA, CLOSE, CREDIT, ACK (the acked seqnum)
	grant   uint32 // CREDIT: bytes granted
	name    string // OPEN: subprotocol name
	payload []byte // DATA (aliases the decoded buffer)
}

func (r record) String() string {
	switch r.tag {
	case tagKCM:
		return "KCM"
	case tagPing:
		return fmt.Sprintf("PING(%d)", r.pingID)
	case tagPong:
		return fmt.Sprintf("PONG(%d)", r.pingID)
	case tagOpen:
		return fmt.Sprintf("OPEN(scid=%d seq=%d %q)", r.scid, r.seq, r.name)
	case tagData:
		return fmt.Sprintf("DATA(scid=%d seq=%d len=%d)", r.scid, r.seq, len(r.payload))
	case tagClose:
		return fmt.Sprintf("CLOSE(scid=%d seq=%d)", r.scid, r.seq)
	case tagAck:
		return fmt.Sprintf("ACK(%d)", r.seq)
	case tagCredit:
		return fmt.Sprintf("CREDIT(scid=%d seq=%d grant=%d)", r.scid, r.seq, r.grant)
	}
	return fmt.Sprintf("record(tag=%d)", r.tag)
}

// sequenced reports whether the record takes part in L4 (OPEN, DATA, CLOSE).
func (r record) sequenced() bool {
	return r.tag == tagOpen || r.tag == tagData || r.tag == tagClose || r.tag == tagCredit
}

// appendRecord appends the encoding of r to b.
func appendRecord(b []byte, r record) []byte {
	b = append(b, r.tag)
	switch r.tag {
	case tagKCM:
	case tagPing, tagPong:
		b = binary.BigEndian.AppendUint32(b, r.pingID)
	case tagOpen:
		b = binary.BigEndian.AppendUint32(b, r.scid)
		b = binary.BigEndian.AppendUint32(b, r.seq)
		b = append(b, r.name...)
	case tagData:
		b = binary.BigEndian.AppendUint32(b, r.scid)
		b = binary.BigEndian.AppendUint32(b, r.seq)
		b = append(b, r.payload...)
	case tagClose:
		b = binary.BigEndian.AppendUint32(b, r.scid)
		b = binary.BigEndian.AppendUint32(b, r.seq)
	case tagAck:
		b = binary.BigEndian.AppendUint32(b, r.seq)
	case tagCredit:
		b = binary.BigEndian.AppendUint32(b, r.scid)
		b = binary.BigEndian.AppendUint32(b, r.seq)
		b = binary.BigEndian.AppendUint32(b, r.grant)
	}
	return b
}

// parseRecord decodes one L3 record. DATA payloads alias b.
func parseRecord(b []byte) (record, error) {
	if len(b) == 0 {
		return record{}, fmt.Errorf("%w: empty", ErrBadRecord)
	}
	r := record{tag: b[0]}
	body := b[1:]
	need := func(n int, exact bool) error {
		if len(body) < n || (exact && len(body) != n) {
			return fmt.Errorf("%w: %s record with %d body bytes", ErrBadRecord, r.kind(), len(body))
		}
		return nil
	}
	switch r.tag {
	case tagKCM:
		if err := need(0, true); err != nil {
			return record{}, err
		}
	case tagPing, tagPong:
		if err := need(4, true); err != nil {
			return record{}, err
		}
		r.pingID = binary.BigEndian.Uint32(body)
	case tagOpen:
		if err := need(8, false); err != nil {
			return record{}, err
		}
		r.scid = binary.BigEndian.Uint32(body)
		r.seq = binary.BigEndian.Uint32(body[4:])
		name := body[8:]
		if !utf8.Valid(name) {
			return record{}, fmt.Errorf("%w: OPEN subprotocol name is not UTF-8", ErrBadRecord)
		}
		r.name = string(name)
	case tagData:
		if err := need(8, false); err != nil {
			return record{}, err
		}
		r.scid = binary.BigEndian.Uint32(body)
		r.seq = binary.BigEndian.Uint32(body[4:])
		r.payload = body[8:]
	case tagClose:
		if err := need(8, true); err != nil {
			return record{}, err
		}
		r.scid = binary.BigEndian.Uint32(body)
		r.seq = binary.BigEndian.Uint32(body[4:])
	case tagAck:
		if err := need(4, true); err != nil {
			return record{}, err
		}
		r.seq = binary.BigEndian.Uint32(body)
	case tagCredit:
		if err := need(12, true); err != nil {
			return record{}, err
		}
		r.scid = binary.BigEndian.Uint32(body)
		r.seq = binary.BigEndian.Uint32(body[4:])
		r.grant = binary.BigEndian.Uint32(body[8:])
	default:
		return record{}, fmt.Errorf("%w: unknown tag 0x%02x", ErrBadRecord, r.tag)
	}
	return r, nil
}

func (r record) kind() string {
	switch r.tag {
	case tagKCM:
		return "KCM"
	case tagPing:
		return "PING"
	case tagPong:
		return "PONG"
	case tagOpen:
		return "OPEN"
	case tagData:
		return "DATA"
	case tagClose:
		return "CLOSE"
	case tagAck:
		return "ACK"
	case tagCredit:
		return "CREDIT"
	}
	return "unknown"
}
