package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"testing/iotest"

	"go.uber.org/goleak"

	"github.com/wormhole-go/wormhole/internal/interop"
	"github.com/wormhole-go/wormhole/relay/relaytest"
)

// TestPipeCopy: exact copy and hash for sizes around the chunk size, from
// a reader that returns short reads.
func TestPipeCopy(t *testing.T) {
	rng := rand.NewChaCha8([32]byte{9})
	for _, size := range []int64{1, pipeChunk - 1, pipeChunk, pipeChunk + 1, 3*pipeChunk + 12345, pipeBuffers*pipeChunk*2 + 7} {
		data := make([]byte, size+100) // more available than asked
		rng.Read(data)
		var dst bytes.Buffer
		h := sha256.New()
		var out bytes.Buffer
		p := newProgress(&out, false, size, false)
		n, err := pipeCopy(&dst, iotest.HalfReader(bytes.NewReader(data)), size, h, p, nil)
		if err != nil || n != size {
			t.Fatalf("size %d: n=%d err=%v", size, n, err)
		}
		if !bytes.Equal(dst.Bytes(), data[:size]) {
			t.Fatalf("size %d: data differs", size)
		}
		if want := sha256.Sum256(data[:size]); !bytes.Equal(h.Sum(nil), want[:]) {
			t.Fatalf("size %d: hash differs", size)
		}
		if p.done != size {
			t.Fatalf("progress counted %d", p.done)
		}
	}
}

// TestPipeCopyShort: a source that ends early gives errShort and the
// count of bytes that did arrive.
func TestPipeCopyShort(t *testing.T) {
	data := make([]byte, 2*pipeChunk+5)
	var dst bytes.Buffer
	n, err := pipeCopy(&dst, bytes.NewReader(data), int64(len(data))+10, sha256.New(), nil, nil)
	if !errors.Is(err, errShort) || n != int64(len(data)) {
		t.Fatalf("n=%d err=%v", n, err)
	}
}

type failWriter struct{ after int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, io.ErrClosedPipe
	}
	w.after--
	return len(p), nil
}

// blockingReader blocks after its data until closed (like a connection).
type blockingReader struct {
	data   *bytes.Reader
	closed chan struct{}
}

func (r *blockingReader) Read(p []byte) (int, error) {
	if r.data.Len() > 0 {
		return r.data.Read(p)
	}
	<-r.closed
	return 0, io.ErrClosedPipe
}

// TestPipeCopyWriteError: a failing writer stops the copy, abort unblocks
// the reader, and pipeCopy returns the write error after its goroutines
// ended.
func TestPipeCopyWriteError(t *testing.T) {
	r := &blockingReader{data: bytes.NewReader(make([]byte, 3*pipeChunk)), closed: make(chan struct{})}
	aborted := 0
	n, err := pipeCopy(&failWriter{after: 1}, r, 10*pipeChunk, sha256.New(), nil, func() {
		if aborted == 0 {
			close(r.closed)
		}
		aborted++
	})
	if !errors.Is(err, io.ErrClosedPipe) || n != pipeChunk || aborted == 0 {
		t.Fatalf("n=%d err=%v aborted=%d", n, err, aborted)
	}
}

// TestNoLeaksFile: a complete file transfer in-process (both sides,
// through our relay) leaves no goroutine behind: the data pipeline's
// goroutines end with the transfer.
func TestNoLeaksFile(t *testing.T) {
	mb := interop.StartPythonMailbox(t)
	relay := relaytest.Start(t)
	src := t.TempDir()
	dst := chdirTemp(t)
	p := makePayload(t, src, "f.bin", 3*pipeChunk+17, 5)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := testCtx(t)
	wh := func(cmd string, args ...string) []string {
		return append([]string{cmd, "--relay-url", mb.URL(), "--transit-helper", relay.Hint(), "--no-listen", "--hide-progress"}, args...)
	}
	ws, wr := both(
		func() result { return runWH(ctx, "", wh("send", "--code", "87-foo-bar", p.path)...) },
		func() result { return runWH(ctx, "", wh("receive", "--accept-file", "87-foo-bar")...) },
	)
	if ws.code != 0 || wr.code != 0 {
		t.Fatalf("send %v\nreceive %v", ws, wr)
	}
	checkFile(t, filepath.Join(dst, "f.bin"), p)
}
