package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	for _, c := range []struct {
		done, total int64
		rate        float64
		eta         time.Duration
		want        string
	}{
		{0, 1000, 0, -1, "  0% 0 Bytes/1.0 kB -- B/s"},
		{420_000_000, 1_000_000_000, 95_300_000, 6 * time.Second, " 42% 420.0 MB/1.0 GB 95.3 MB/s ETA 0:06"},
		{1, 1, 1, 0, "100% 1 Byte/1 Byte 1 Byte/s ETA 0:00"},
		{5, 10, 1, 3725 * time.Second, " 50% 5 Bytes/10 Bytes 1 Byte/s ETA 1:02:05"},
	} {
		if got := progressLine(c.done, c.total, c.rate, c.eta); got != c.want {
			t.Errorf("progressLine(%d, %d, %v, %v) = %q, want %q", c.done, c.total, c.rate, c.eta, got, c.want)
		}
	}
}

// fakeClock advances by step on every reading.
type fakeClock struct {
	t    time.Time
	step time.Duration
}

func (c *fakeClock) now() time.Time { c.t = c.t.Add(c.step); return c.t }

// TestProgressTerminal: on a terminal the line is redrawn in place (\r,
// clear to end of line), at most once per redrawEvery of (fake) time, with
// rate and ETA, and ends with one newline.
func TestProgressTerminal(t *testing.T) {
	var out bytes.Buffer
	clk := &fakeClock{t: time.Unix(0, 0), step: 100 * time.Millisecond}
	p := newProgress(&out, true, 10_000_000, false)
	p.now = clk.now
	p.start, p.rateAt = clk.t, clk.t
	chunk := make([]byte, 100_000)
	for i := 0; i < 100; i++ { // 100 kB per 100 ms = 1 MB/s
		p.Write(chunk)
	}
	p.finish()
	s := out.String()
	if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
		t.Fatalf("want one line ending in a newline, got %q", s)
	}
	draws := strings.Split(strings.TrimSuffix(s, "\n"), "\r")[1:]
	// 100 writes, one clock tick each; a draw every other write (200 ms)
	// plus the first and the final one
	if len(draws) < 40 || len(draws) > 60 {
		t.Fatalf("%d redraws: %q", len(draws), s)
	}
	for _, d := range draws {
		if !strings.HasSuffix(d, "\x1b[K") {
			t.Fatalf("redraw %q does not clear the line", d)
		}
	}
	mid := draws[len(draws)/2]
	if !strings.Contains(mid, "% ") || !strings.Contains(mid, "MB/s ETA 0:0") {
		t.Fatalf("middle redraw %q lacks rate or ETA", mid)
	}
	if last := draws[len(draws)-1]; !strings.HasPrefix(last, "100% 10.0 MB/10.0 MB ") || !strings.Contains(last, "B/s in 0:10") {
		t.Fatalf("final line %q", last)
	}
}

// TestProgressNotTerminal: one summary line, no carriage returns;
// --hide-progress: nothing.
func TestProgressNotTerminal(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&out, false, 19, false)
	p.Write(make([]byte, 19))
	p.finish()
	if s := out.String(); strings.Contains(s, "\r") || !strings.HasPrefix(s, "100% 19 Bytes/19 Bytes ") || strings.Count(s, "\n") != 1 {
		t.Fatalf("got %q", s)
	}
	out.Reset()
	for _, tty := range []bool{false, true} {
		p = newProgress(&out, tty, 19, true)
		p.Write(make([]byte, 19))
		p.finish()
	}
	if out.Len() != 0 {
		t.Fatalf("hidden progress wrote %q", out.String())
	}
}
