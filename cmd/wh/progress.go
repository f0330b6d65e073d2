package main

import (
	"fmt"
	"io"
	"time"
)

// progress shows how a transfer goes: bytes, percent, rate and ETA. On a
// terminal it redraws one line on stderr (at most every redrawEvery);
// otherwise it only prints one summary line at the end, so logs stay
// readable. --hide-progress hides both. It counts the bytes written to it
// (use it in an io.MultiWriter or io.TeeReader); one goroutine at a time.
type progress struct {
	w     io.Writer
	total int64
	done  int64
	tty   bool
	hide  bool
	now   func() time.Time

	start    time.Time
	lastDraw time.Time
	drawn    bool
	// rate estimate: exponential moving average of bytes/s between draws
	rate     float64
	rateAt   time.Time
	rateDone int64
}

// redrawEvery is the terminal redraw interval.
const redrawEvery = 200 * time.Millisecond

func newProgress(w io.Writer, tty bool, total int64, hide bool) *progress {
	p := &progress{w: w, total: total, tty: tty, hide: hide || total <= 0, now: time.Now}
	p.start = p.now()
	p.rateAt = p.start
	return p
}

func (p *progress) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	if p.hide || !p.tty {
		return len(b), nil
	}
	if now := p.now(); !p.drawn || now.Sub(p.lastDraw) >= redrawEvery {
		p.sample(now)
		p.draw(now)
	}
	return len(b), nil
}

// sample updates the rate estimate (a one-second-ish EMA).
func (p *progress) sample(now time.Time) {
	dt := now.Sub(p.rateAt).Seconds()
	if dt <= 0 {
		return
	}
	inst := float64(p.done-p.rateDone) / dt
	if p.rate == 0 {
		p.rate = inst
	} else {
		alpha := min(dt/1.0, 1) // weight of the newest interval
		p.rate = alpha*inst + (1-alpha)*p.rate
	}
	p.rateAt, p.rateDone = now, p.done
}

func (p *progress) draw(now time.Time) {
	p.lastDraw, p.drawn = now, true
	eta := time.Duration(-1)
	if p.rate > 0 {
		eta = time.Duration(float64(p.total-p.done) / p.rate * float64(time.Second))
	}
	// \r: back to column 0; ESC[K: clear what a longer line left
	fmt.Fprintf(p.w, "\r%s\x1b[K", progressLine(p.done, p.total, p.rate, eta))
}

// finish draws the final state and ends the line (terminal), or prints
// the one summary line (not a terminal).
func (p *progress) finish() {
	if p.hide {
		return
	}
	now := p.now()
	elapsed := now.Sub(p.start)
	avg := 0.0
	if s := elapsed.Seconds(); s > 0 {
		avg = float64(p.done) / s
	}
	line := progressLine(p.done, p.total, avg, -1) + " in " + formatDuration(elapsed)
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K\n", line)
		return
	}
	fmt.Fprintln(p.w, line)
}

// progressLine is e.g. " 42% 113.2 MB/268.4 MB 95.3 MB/s ETA 0:02".
// eta < 0 leaves the ETA out; rate <= 0 shows "-- B/s".
func progressLine(done, total int64, rate float64, eta time.Duration) string {
	pct := 100
	if total > 0 {
		pct = int(done * 100 / total)
	}
	r := "-- B/s"
	if rate > 0 {
		r = naturalSize(int64(rate)) + "/s"
	}
	s := fmt.Sprintf("%3d%% %s/%s %s", pct, naturalSize(done), naturalSize(total), r)
	if eta >= 0 {
		s += " ETA " + formatDuration(eta)
	}
	return s
}

// formatDuration is m:ss, or h:mm:ss from an hour on.
func formatDuration(d time.Duration) string {
	sec := int64(d.Round(time.Second) / time.Second)
	if sec >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", sec/3600, sec/60%60, sec%60)
	}
	return fmt.Sprintf("%d:%02d", sec/60, sec%60)
}
