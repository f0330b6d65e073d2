package main

import (
	"context"
	"testing"
)

func TestGCPercent(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 3200}, {1 << 20, 3200}, {4 << 20, 800}, {16 << 20, 200},
		{32 << 20, 100}, {1 << 30, 100},
	} {
		if got := gcPercent(c.live); got != c.want {
			t.Errorf("gcPercent(%d MiB) = %d, want %d", c.live>>20, got, c.want)
		}
	}
}

// With GOGC set, tuneGC leaves the GC alone and returns at once (it would
// otherwise run until ctx ends).
func TestTuneGCRespectsGOGC(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		tuneGC(ctx, func(k string) string {
			if k == "GOGC" {
				return "100"
			}
			return ""
		})
	}()
	<-done // a hang here is the failure (go test -timeout)
}
