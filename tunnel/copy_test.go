package tunnel

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"sync/atomic"
	"testing"
)

// sizedReader returns its data in reads of at most the next size in sizes
// (then whatever fits), recording the buffer length of every Read.
type sizedReader struct {
	data  []byte
	sizes []int
	lens  []int
}

func (r *sizedReader) Read(p []byte) (int, error) {
	r.lens = append(r.lens, len(p))
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if len(r.sizes) > 0 {
		n = min(n, r.sizes[0])
		r.sizes = r.sizes[1:]
	}
	n = copy(p, r.data[:min(n, len(r.data))])
	r.data = r.data[n:]
	return n, nil
}

type recWriter struct {
	bytes.Buffer
	writes []int
	short  bool
	err    error
}

func (w *recWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, len(p))
	if w.err != nil {
		return 0, w.err
	}
	if w.short {
		p = p[:len(p)/2]
	}
	return w.Buffer.Write(p)
}

func TestCopyCountedGrowsBuffer(t *testing.T) {
	tn, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 3*RecordPayload+5*DefaultBufferSize+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	src := &sizedReader{data: data, sizes: []int{100, 2000}}
	var dst recWriter
	var a, b atomic.Int64
	if err := tn.copyCounted(&dst, src, &a, &b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst.Bytes(), data) {
		t.Fatal("copied data differs")
	}
	if a.Load() != int64(len(data)) || b.Load() != int64(len(data)) {
		t.Fatalf("counters %d, %d; want %d", a.Load(), b.Load(), len(data))
	}
	// Small reads keep the one-record buffer; the first read that fills it
	// switches to DefaultBufferSize, so a bulk copy writes in large pieces
	// that are whole records.
	want := []int{RecordPayload, RecordPayload, RecordPayload, DefaultBufferSize}
	if len(src.lens) < len(want) || !slices.Equal(src.lens[:len(want)], want) {
		t.Fatalf("read buffer sizes %v, want %v...", src.lens[:min(len(src.lens), 8)], want)
	}
	if got := dst.writes[3]; got != DefaultBufferSize {
		t.Fatalf("4th write %d bytes, want %d", got, DefaultBufferSize)
	}
	if DefaultBufferSize%RecordPayload != 0 || RecordPayload+12+9+16 != 65535 {
		t.Fatalf("record arithmetic: buffer %d, record payload %d", DefaultBufferSize, RecordPayload)
	}
}

func TestCopyCountedErrors(t *testing.T) {
	tn, err := New(Options{BufferSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var a, b atomic.Int64
	boom := errors.New("boom")
	if err := tn.copyCounted(&recWriter{err: boom}, &sizedReader{data: []byte("hello")}, &a, &b); !errors.Is(err, boom) {
		t.Fatalf("write error: got %v", err)
	}
	if err := tn.copyCounted(&recWriter{short: true}, &sizedReader{data: []byte("hello")}, &a, &b); !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("short write: got %v", err)
	}
	src := &sizedReader{data: make([]byte, 5000)}
	var dst recWriter
	if err := tn.copyCounted(&dst, src, &a, &b); err != nil || dst.Len() != 5000 {
		t.Fatalf("copy: %v, %d bytes", err, dst.Len())
	}
	for _, l := range src.lens {
		if l > 1000 {
			t.Fatalf("read with a %d-byte buffer; BufferSize is 1000", l)
		}
	}
}
