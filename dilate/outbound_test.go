package dilate

import (
	"bytes"
	"testing"
)

// TestOutboundRecyclesOnlyUnheldRecords: a full-size DATA record acked
// while a writer still holds it (between next and release) is not reused
// until the writer releases it, and its bytes stay intact meanwhile.
func TestOutboundRecyclesOnlyUnheldRecords(t *testing.T) {
	o := newOutbound(1 << 20)
	payload := bytes.Repeat([]byte{0xab}, maxDataPayload)
	if err := o.send(true, len(payload), sendWait{}, func(seq uint32) []byte { return o.dataRecord(7, seq, payload) }); err != nil {
		t.Fatal(err)
	}
	recs, _ := o.next(nil, 0, writeBatch)
	if len(recs) != 1 || cap(recs[0]) != recBufSize {
		t.Fatalf("next: %d records, cap %d", len(recs), cap(recs[0]))
	}
	held := recs[0]
	o.ack(0) // e.g. the peer got it over the previous connection
	o.mu.Lock()
	retired, busy := len(o.retired), o.busy
	o.mu.Unlock()
	if retired != 1 || busy != 1 {
		t.Fatalf("acked while held: retired %d busy %d, want 1 1", retired, busy)
	}
	// Another writer's records meanwhile must not reuse the held buffer.
	for seq := uint32(1); seq < 5; seq++ {
		other := bytes.Repeat([]byte{byte(seq)}, maxDataPayload)
		if err := o.send(true, len(other), sendWait{}, func(seq uint32) []byte { return o.dataRecord(7, seq, other) }); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := parseRecord(held); err != nil || !bytes.Equal(r.payload, payload) {
		t.Fatalf("held record changed while in use (%v)", err)
	}
	o.release(len(recs))
	o.mu.Lock()
	retired, busy = len(o.retired), o.busy
	o.mu.Unlock()
	if retired != 0 || busy != 0 {
		t.Fatalf("after release: retired %d busy %d, want 0 0", retired, busy)
	}
}
