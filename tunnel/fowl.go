package tunnel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Subprotocol names fowl registers on the Dilation (fowl src/fowl/api.py
// _FowlCoop.dilate).
const (
	SubprotocolForward  = "fowl"          // one per forwarded TCP connection
	SubprotocolCommands = "fowl-commands" // request-listener / listener-response
)

// MaxMessage is the largest fowl control message: its length prefix is an
// unsigned 16-bit integer.
const MaxMessage = math.MaxUint16

// ErrMessage is wrapped by errors about malformed fowl control messages.
var ErrMessage = errors.New("tunnel: bad fowl message")

// Message kinds on the fowl-commands subchannel.
const (
	KindRequestListener  = "request-listener"
	KindListenerResponse = "listener-response"
)

// Message is one decoded fowl control message: a msgpack map.
type Message map[string]any

// String returns m[key] if it is a string.
func (m Message) String(key string) (string, bool) {
	s, ok := m[key].(string)
	return s, ok
}

// Port returns m[key] as a TCP port: (0, true, nil) if absent or nil,
// (p, true, nil) for an integer 1..65535, and an error otherwise.
func (m Message) Port(key string) (int, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return 0, nil
	}
	n, ok := v.(int64)
	if !ok || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%w: %q is not a port: %v", ErrMessage, key, v)
	}
	return int(n), nil
}

// Bool returns m[key] if it is a bool, else false.
func (m Message) Bool(key string) bool {
	b, _ := m[key].(bool)
	return b
}

// EncodeMessage returns the wire form: 2-byte big-endian length, then the
// msgpack map (fowl _proto.py _pack_netstring(msgpack.packb(...))).
func EncodeMessage(m Message) ([]byte, error) {
	body, err := mpEncode(make([]byte, 2, 64), map[string]any(m))
	if err != nil {
		return nil, err
	}
	if len(body)-2 > MaxMessage {
		return nil, fmt.Errorf("%w: %d bytes is too long", ErrMessage, len(body)-2)
	}
	binary.BigEndian.PutUint16(body, uint16(len(body)-2))
	return body, nil
}

// DecodeMessage decodes one msgpack body (without the length prefix),
// which must be a map.
func DecodeMessage(body []byte) (Message, error) {
	v, err := mpDecode(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMessage, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: not a map but %T", ErrMessage, v)
	}
	return Message(m), nil
}

// ReadMessage reads one length-prefixed message from r without reading
// past it (so forwarded bytes that follow stay in r).
func ReadMessage(r io.Reader) (Message, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return DecodeMessage(body)
}

// WriteMessage writes m with a single Write, so it travels as one Dilation
// DATA record: fowl's command handlers (FowlCommands.dataReceived,
// fledge's reply parsing) assume one whole message per record.
func WriteMessage(w io.Writer, m Message) error {
	b, err := EncodeMessage(m)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// requestListener builds fowl's request-listener (fowl _proto.py
// _SendFowlCommand.send_command). listenPort 0 sends nil.
func requestListener(name string, listenPort int) Message {
	m := Message{"kind": KindRequestListener, "unique-name": name, "listen-port": nil}
	if listenPort != 0 {
		m["listen-port"] = listenPort
	}
	return m
}

// listenerResponse builds fowl's listener-response (FowlCommands._reply_generic).
func listenerResponse(name string, ok bool, desiredPort int, reason string) Message {
	m := Message{"kind": KindListenerResponse, "unique-name": name, "listening": ok}
	if desiredPort != 0 {
		m["desired-port"] = desiredPort
	}
	if !ok && reason != "" {
		m["reason"] = reason
	}
	return m
}

// openMessage is the first message on a "fowl" subchannel
// (FowlNearToFar.connectionMade).
func openMessage(name string) Message { return Message{"unique-name": name} }

// openReply answers it (FowlFarToNear send_positive_reply / _negative).
func openReply(ok bool, reason string) Message {
	if ok {
		return Message{"connected": true}
	}
	return Message{"connected": false, "reason": reason}
}
