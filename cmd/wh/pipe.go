package main

import (
	"errors"
	"fmt"
	"hash"
	"io"
)

// Data-phase tuning (see benchmarks/filetransfer_test.go for the figures
// behind them).
const (
	// pipeChunk is how much each pipeline stage handles at once: big
	// enough that the file and socket see few large reads and writes.
	pipeChunk = 1 << 20
	// pipeBuffers bounds the memory in flight (pipeBuffers*pipeChunk).
	pipeBuffers = 4
)

// errShort: src ended before size bytes.
var errShort = errors.New("the data ended early")

// pipeCopy copies exactly size bytes from src to dst and hashes them into
// h, with reading, writing and hashing on three goroutines so that each
// runs while the others wait (the transfer's speed is then the slowest of
// the three, not their sum). p counts the bytes written (may be nil). It
// returns how many bytes reached dst; on success that is size and h has
// seen all of them. When it fails it calls abort (if not nil) to unblock a
// read stuck in src, and returns only once its goroutines have ended.
func pipeCopy(dst io.Writer, src io.Reader, size int64, h hash.Hash, p *progress, abort func()) (int64, error) {
	free := make(chan []byte, pipeBuffers)
	for i := 0; i < pipeBuffers; i++ {
		free <- make([]byte, pipeChunk)
	}
	filled := make(chan []byte, pipeBuffers)
	toHash := make(chan []byte, pipeBuffers)
	stop := make(chan struct{})
	readErr := make(chan error, 1)
	hashed := make(chan struct{})

	go func() { // reader
		defer close(filled)
		for left := size; left > 0; {
			var buf []byte
			select {
			case <-stop:
				readErr <- nil
				return
			default:
			}
			select {
			case buf = <-free:
			case <-stop:
				readErr <- nil
				return
			}
			n, err := io.ReadFull(src, buf[:min(left, int64(len(buf)))])
			if n > 0 {
				filled <- buf[:n]
				left -= int64(n)
			}
			if err != nil {
				if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
					err = fmt.Errorf("%w after %d of %d bytes", errShort, size-left, size)
				}
				readErr <- err
				return
			}
		}
		readErr <- nil
	}()
	go func() { // hasher
		defer close(hashed)
		for buf := range toHash {
			h.Write(buf)
			free <- buf[:cap(buf)]
		}
	}()

	var written int64
	var werr error
	for buf := range filled {
		if werr != nil {
			continue // drain: the reader may be blocked sending
		}
		if _, werr = dst.Write(buf); werr != nil {
			close(stop)
			if abort != nil {
				abort()
			}
			continue
		}
		written += int64(len(buf))
		if p != nil {
			p.Write(buf)
		}
		toHash <- buf
	}
	close(toHash)
	<-hashed
	rerr := <-readErr
	if werr != nil {
		return written, werr
	}
	if rerr != nil && abort != nil {
		abort()
	}
	return written, rerr
}
