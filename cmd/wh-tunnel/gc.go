package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// gcHeadroom is how much the heap may grow past the live heap before a
// collection, when that is more than GOGC=100 allows. A forward allocates
// about a 64 KiB buffer per Dilation record in package dilate (1-2 bytes
// per byte forwarded) while its live heap stays at a few MiB, so the
// default GOGC collected every 4 MiB or so forwarded (hundreds of cycles
// a second). Measured with BenchmarkFowlForward (docs/performance.md,
// "wh-tunnel"): GOGC=800 (about this headroom at 4 MiB live) used 10-20%
// less CPU per byte than 100; GOGC=off was worse than 800 (fresh memory
// costs page faults and cache misses).
const gcHeadroom = 32 << 20

// gcTuneEvery is how often the live heap is checked.
const gcTuneEvery = time.Second

// tuneGC keeps the GC's heap goal at about max(2*live, live+gcHeadroom):
// GOGC = max(100, gcHeadroom*100/live), re-set when the live heap changes
// (a large live heap, e.g. a thousand busy connections, gets the ordinary
// GOGC=100 behaviour). It does nothing when GOGC is set in the
// environment. It returns when ctx ends.
func tuneGC(ctx context.Context, getenv func(string) string) {
	if getenv("GOGC") != "" {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	if metrics.Read(sample); sample[0].Value.Kind() != metrics.KindUint64 {
		return // no live-heap metric: leave the default alone
	}
	cur := 0
	set := func() {
		metrics.Read(sample)
		pct := gcPercent(sample[0].Value.Uint64())
		if pct != cur && (pct*10 < cur*9 || pct*9 > cur*10) { // changed by > ~10%
			debug.SetGCPercent(pct)
			cur = pct
		}
	}
	set()
	t := time.NewTicker(gcTuneEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			debug.SetGCPercent(100)
			return
		case <-t.C:
			set()
		}
	}
}

// gcPercent is the GOGC that puts the heap goal at about
// max(2*live, live+gcHeadroom) (a live heap under 1 MiB counts as 1 MiB).
func gcPercent(live uint64) int {
	live = max(live, 1<<20)
	return int(max(100, gcHeadroom*100/live))
}
