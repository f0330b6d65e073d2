package wormhole

import (
	"encoding/json"
	"maps"
	"sync"
	"time"
)

// TimingEvent is one entry of the protocol timing trace, like Python's
// wormhole/timing.py. Its JSON form ({"name","start","stop","details"},
// times in Unix seconds) is what Python's --dump-timing writes.
type TimingEvent struct {
	Name    string
	Start   time.Time
	Stop    time.Time // zero for instantaneous events
	Details map[string]any
}

// MarshalJSON writes the Python --dump-timing form.
func (e TimingEvent) MarshalJSON() ([]byte, error) {
	var stop *float64
	if !e.Stop.IsZero() {
		s := unixSeconds(e.Stop)
		stop = &s
	}
	d := e.Details
	if d == nil {
		d = map[string]any{}
	}
	return json.Marshal(struct {
		Name    string         `json:"name"`
		Start   float64        `json:"start"`
		Stop    *float64       `json:"stop"`
		Details map[string]any `json:"details"`
	}{e.Name, unixSeconds(e.Start), stop, d})
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// timingLog records TimingEvents; safe for concurrent use.
type timingLog struct {
	mu     sync.Mutex
	events []TimingEvent
}

// add records an instantaneous event and returns its index.
func (t *timingLog) add(name string, details map[string]any) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.events = append(t.events, TimingEvent{Name: name, Start: time.Now(), Details: details})
	return len(t.events) - 1
}

// finish sets the stop time of event i and merges details.
func (t *timingLog) finish(i int, details map[string]any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i < 0 || i >= len(t.events) {
		return
	}
	e := &t.events[i]
	e.Stop = time.Now()
	if len(details) > 0 {
		if e.Details == nil {
			e.Details = map[string]any{}
		}
		maps.Copy(e.Details, details)
	}
}

func (t *timingLog) snapshot() []TimingEvent {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]TimingEvent, len(t.events))
	for i, e := range t.events {
		e.Details = maps.Clone(e.Details)
		out[i] = e
	}
	return out
}
