package server

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
)

// Hand-written encoding of server messages. The output is byte for byte
// what encoding/json.Marshal produces for the same map (keys sorted,
// compact, HTML-escaped strings, floats in json's format); values that the
// fast paths do not cover exactly (strings needing escapes, raw values with
// whitespace or HTML characters, floats outside json's 'f' range) are
// encoded with encoding/json. TestEncodeMatchesMarshal and
// FuzzEncodeServerMessage compare the two.

// field is one key of a server message with its encoded JSON value.
type field struct {
	key string
	val []byte
}

// maxFields bounds the fields of one hand-encoded message (type and
// server_tx included).
const maxFields = 8

// frameHeadroom is the space reserved before a payload for the largest
// server frame header.
const frameHeadroom = 10

// encodeFrame builds a text frame with the JSON object of fields plus
// "type" and "server_tx", keys in sorted order.
func encodeFrame(typ string, serverTx float64, fields ...field) []byte {
	var all [maxFields]field
	n := copy(all[:], fields)
	var txb [32]byte
	all[n] = field{"server_tx", appendFloat(txb[:0], serverTx)}
	n++
	var tb [32]byte
	all[n] = field{"type", appendString(tb[:0], typ)}
	n++
	fs := all[:n]
	for i := 1; i < len(fs); i++ { // insertion sort: a handful of keys
		for j := i; j > 0 && fs[j].key < fs[j-1].key; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
	size := frameHeadroom + 2
	for _, f := range fs {
		size += len(f.key) + len(f.val) + 4
	}
	b := make([]byte, frameHeadroom, size)
	b = append(b, '{')
	for i, f := range fs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, f.key...)
		b = append(b, '"', ':')
		b = append(b, f.val...)
	}
	b = append(b, '}')
	// The frame header goes right before the payload.
	pl := len(b) - frameHeadroom
	var h []byte
	switch {
	case pl < 126:
		h = b[frameHeadroom-2 : frameHeadroom]
		h[1] = byte(pl)
	case pl < 1<<16:
		h = b[frameHeadroom-4 : frameHeadroom]
		h[1] = 126
		binary.BigEndian.PutUint16(h[2:], uint16(pl))
	default:
		h = b[:frameHeadroom]
		h[1] = 127
		binary.BigEndian.PutUint64(h[2:], uint64(pl))
	}
	h[0] = 0x80 | opText
	return b[frameHeadroom-len(h):]
}

// appendString appends s as encoding/json encodes a string.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // escapes, HTML escaping, invalid UTF-8
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendFloat appends f as encoding/json encodes a float64.
func appendFloat(dst []byte, f float64) []byte {
	if a := math.Abs(f); a == 0 || (a >= 1e-6 && a < 1e21) {
		return strconv.AppendFloat(dst, f, 'f', -1, 64)
	}
	b, err := json.Marshal(f)
	if err != nil { // NaN or Inf: never a time; json would fail the message
		return append(dst, "null"...)
	}
	return append(dst, b...)
}

// appendRaw appends a raw JSON value (from a client message, so valid)
// as encoding/json re-encodes a json.RawMessage: compacted, with HTML
// characters and U+2028/U+2029 escaped.
func appendRaw(dst []byte, v json.RawMessage) []byte {
	if len(v) == 0 {
		return append(dst, "null"...)
	}
	for _, c := range v {
		switch c {
		case ' ', '\t', '\n', '\r', '<', '>', '&', 0xe2:
			b, err := json.Marshal(v)
			if err != nil {
				return append(dst, "null"...)
			}
			return append(dst, b...)
		}
	}
	return append(dst, v...)
}

// sendFields queues a message built by encodeFrame.
func (c *conn) sendFields(typ string, fields ...field) {
	c.enqueue(encodeFrame(typ, c.s.nowF(), fields...), false)
}

// sendAck queues {"id":…,"server_tx":…,"type":"ack"}.
func (c *conn) sendAck(id json.RawMessage) {
	var b [64]byte
	c.sendFields("ack", field{"id", appendRaw(b[:0], id)})
}

// sendString queues a message with one string field.
func (c *conn) sendString(typ, key, val string) {
	var b [64]byte
	c.sendFields(typ, field{key, appendString(b[:0], val)})
}

// sendMessage queues a "message" for a mailbox message (with later, no
// writer is started: the caller calls tryFlush).
func (c *conn) sendMessage(sm *Message, later bool) {
	var side, phase, rx, id [64]byte
	var body [256]byte
	c.enqueueFrame(encodeFrame("message", c.s.nowF(),
		field{"body", appendString(body[:0], sm.Body)},
		field{"id", appendRaw(id[:0], sm.ID)},
		field{"phase", appendString(phase[:0], sm.Phase)},
		field{"server_rx", appendFloat(rx[:0], sm.ServerRx)},
		field{"side", appendString(side[:0], sm.Side)},
	), false, later)
}
