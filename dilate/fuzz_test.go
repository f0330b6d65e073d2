package dilate

import (
	"bufio"
	"bytes"
	"context"
	"testing"

	"github.com/wormhole-go/wormhole/dilate/dilatetest"
)

// FuzzL3Records: any input either fails with an error or decodes to a
// record that re-encodes to the same bytes.
func FuzzL3Records(f *testing.F) {
	for _, r := range []record{
		{tag: tagKCM}, {tag: tagPing, pingID: 1}, {tag: tagPong, pingID: 2},
		{tag: tagOpen, scid: 1, seq: 0, name: "chat"}, {tag: tagOpen, scid: 2, seq: 5},
		{tag: tagData, scid: 3, seq: 1, payload: []byte("data")},
		{tag: tagClose, scid: 3, seq: 2}, {tag: tagAck, seq: 9},
		{tag: tagCredit, scid: 3, seq: 3, grant: 1 << 20}, {tag: tagCredit, scid: 0xffffffff, seq: 0xffffffff, grant: 0xffffffff},
	} {
		f.Add(appendRecord(nil, r))
	}
	f.Add([]byte{0x07})
	f.Add([]byte{0x07, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 1})       // CREDIT one byte short
	f.Add([]byte{0x07, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 1, 0, 0}) // one byte long
	f.Add([]byte{0x08})
	f.Add([]byte{0x03, 0, 0, 0, 1, 0, 0, 0, 1, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRecord(b)
		if err != nil {
			return
		}
		if got := appendRecord(nil, r); !bytes.Equal(got, b) {
			t.Fatalf("%x -> %v -> %x", b, r, got)
		}
	})
}

// FuzzL2Frames: sealed plaintexts of any size round-trip, and arbitrary
// bytes fed to the frame reader and decryptor fail cleanly.
func FuzzL2Frames(f *testing.F) {
	f.Add([]byte("hello"), false, uint16(0))
	f.Add(bytes.Repeat([]byte{1}, 70000), false, uint16(3))
	f.Add([]byte{0, 0, 0, 5, 1, 2, 3, 4, 5}, true, uint16(0))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, true, uint16(0))
	f.Add([]byte{0, 1, 0, 0}, true, uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, raw bool, repeat uint16) {
		send, recv := cipherPair(t)
		o := &opener{cs: recv}
		if raw {
			br := bufio.NewReader(bytes.NewReader(data))
			var buf []byte
			for range 64 {
				fr, err := readFrame(br, buf, 1<<20)
				if err != nil {
					return
				}
				if _, err := o.open(fr); err == nil {
					t.Fatal("forged frame decrypted")
				}
			}
			return
		}
		pt := bytes.Repeat(data, int(repeat%4)+1)
		frame, err := sealer{send}.appendSealed(nil, pt)
		if err != nil {
			t.Fatal(err)
		}
		fr, err := readFrame(bufio.NewReader(bytes.NewReader(frame)), nil, len(frame))
		if err != nil {
			t.Fatal(err)
		}
		got, err := o.open(fr)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("roundtrip of %d bytes: %v", len(pt), err)
		}
	})
}

// FuzzDilationJSON: mailbox Dilation records never panic, and whatever
// decodes re-encodes to something that decodes the same way.
func FuzzDilationJSON(f *testing.F) {
	for _, s := range []string{
		`{"type": "please", "side": "0123456789abcdef", "use-version": "ged"}`,
		`{"type": "please", "side": "0123456789abcdef"}`,
		`{"type": "connection-hints", "hints": [{"type": "direct-tcp-v1", "priority": 0.0, "hostname": "10.0.0.5", "port": 41234}]}`,
		`{"type": "connection-hints", "hints": [{"type": "relay-v1", "hints": [{"type": "direct-tcp-v1", "hostname": "r", "port": 4001}]}]}`,
		`{"type": "reconnect"}`, `{"type": "reconnecting"}`, `{"type": "x"}`, `{}`, `[]`, `{"type":"please","side":""}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseL1(b)
		if err != nil {
			return
		}
		switch r.Type {
		case l1Please, l1Hints, l1Reconnect, l1Reconnecting:
		default:
			return
		}
		back, err := parseL1(marshalL1(r))
		if err != nil {
			t.Fatalf("re-encoded %+v does not parse: %v", r, err)
		}
		if back.Type != r.Type || back.Side != r.Side || back.UseVersion != r.UseVersion || len(back.Hints) != len(r.Hints) {
			t.Fatalf("roundtrip %+v -> %+v", r, back)
		}
	})
}

// FuzzInbound feeds arbitrary sequences of L3 records (OPEN, DATA, CLOSE,
// ACK, PING...) to a Dilation's receive path: no panic, no deadlock, and
// subchannel bookkeeping stays consistent.
func FuzzInbound(f *testing.F) {
	seq := func(rs ...record) []byte {
		var b []byte
		for _, r := range rs {
			enc := appendRecord(nil, r)
			b = append(b, byte(len(enc)>>8), byte(len(enc)))
			b = append(b, enc...)
		}
		return b
	}
	f.Add(seq(record{tag: tagOpen, scid: 2, seq: 0, name: "a"}, record{tag: tagData, scid: 2, seq: 1, payload: []byte("x")}, record{tag: tagClose, scid: 2, seq: 2}))
	f.Add(seq(record{tag: tagOpen, scid: 2, seq: 5, name: "a"}, record{tag: tagOpen, scid: 2, seq: 6, name: "a"}, record{tag: tagData, scid: 9, seq: 7}))
	f.Add(seq(record{tag: tagClose, scid: 4, seq: 0}, record{tag: tagAck, seq: 3}, record{tag: tagPing, pingID: 1}))
	f.Fuzz(func(t *testing.T, b []byte) { fuzzInbound(t, b, false) })
}

// FuzzInboundCredit is FuzzInbound in CreditVersion mode: CREDIT records
// are accepted, DATA beyond the granted credit resets its subchannel, and
// no subchannel ever buffers more than its window.
func FuzzInboundCredit(f *testing.F) {
	seq := func(rs ...record) []byte {
		var b []byte
		for _, r := range rs {
			enc := appendRecord(nil, r)
			b = append(b, byte(len(enc)>>8), byte(len(enc)))
			b = append(b, enc...)
		}
		return b
	}
	big := make([]byte, 40000)
	f.Add(seq(record{tag: tagOpen, scid: 2, seq: 0, name: "a"}, record{tag: tagCredit, scid: 2, seq: 1, grant: 100}, record{tag: tagData, scid: 2, seq: 2, payload: []byte("x")}, record{tag: tagClose, scid: 2, seq: 3}))
	f.Add(seq(record{tag: tagOpen, scid: 2, seq: 0, name: "a"}, record{tag: tagData, scid: 2, seq: 1, payload: big}, record{tag: tagData, scid: 2, seq: 2, payload: big},
		record{tag: tagData, scid: 2, seq: 3, payload: big}, record{tag: tagData, scid: 2, seq: 4, payload: big}, record{tag: tagData, scid: 2, seq: 5, payload: big},
		record{tag: tagData, scid: 2, seq: 6, payload: big}, record{tag: tagData, scid: 2, seq: 7, payload: big}, record{tag: tagData, scid: 2, seq: 8, payload: big}))
	f.Add(seq(record{tag: tagCredit, scid: 9, seq: 0, grant: 0xffffffff}, record{tag: tagCredit, scid: 9, seq: 0, grant: 1}))
	f.Fuzz(func(t *testing.T, b []byte) { fuzzInbound(t, b, true) })
}

func fuzzInbound(t *testing.T, b []byte, credit bool) {
	{
		sa, _ := dilatetest.Pair()
		d, err := New(context.Background(), testKey(), sa, Options{NoListen: true, Side: "bbbbbbbbbbbbbbbb", MaxSubchannelBuffer: 1 << 30, CreditWindow: creditInitial})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		d.mu.Lock()
		d.role, d.nextID, d.creditMode = Leader, 1, credit
		d.mu.Unlock()
		l, _ := d.Listen("a")
		defer l.Close()
		for i := 0; len(b) >= 2 && i < 1000; i++ {
			n := int(b[0])<<8 | int(b[1])
			b = b[2:]
			if n > len(b) {
				return
			}
			r, err := parseRecord(b[:n])
			b = b[n:]
			if err != nil {
				continue
			}
			switch r.tag {
			case tagAck:
				d.out.ack(r.seq)
			case tagOpen, tagData, tagClose, tagCredit:
				if r.tag == tagCredit && !credit {
					continue // dispatch refuses it (TestCreditRecordOnlyInCreditMode)
				}
				if !d.in.handle(r) {
					t.Fatal("handle reported a closed Dilation")
				}
			}
		}
		d.mu.Lock()
		for id, s := range d.subchannels {
			if s.id != id || id%2 == 1 {
				t.Fatalf("subchannel table: id %d holds %d (Leader must not accept odd peer ids)", id, s.id)
			}
			s.mu.Lock()
			if s.credit != credit || credit && (s.rlen > creditInitial || s.recvTotal > s.recvLimit) {
				t.Fatalf("subchannel %d: credit=%v buffered %d received %d of %d", id, s.credit, s.rlen, s.recvTotal, s.recvLimit)
			}
			s.mu.Unlock()
		}
		d.mu.Unlock()
	}
}
