package hints

import (
	"cmp"
	"slices"
	"time"
)

// Default delays of the dial plan. Python uses 2 s for both (RELAY_DELAY);
// we use a happy-eyeballs style 250 ms: a direct path on a LAN or loopback
// finishes its handshake well within that, and an unreachable direct hint
// (a dead private address that would hang until the TCP timeout) costs only
// a quarter second before the relay is tried. Python peers are unaffected:
// whichever path finishes first wins on both sides.
const (
	DefaultRelayDelay      = 250 * time.Millisecond
	DefaultRelayLevelDelay = 250 * time.Millisecond
)

// Candidate is one entry of a dial plan.
type Candidate struct {
	// Hint is the address to dial: a DirectTCPV1, a TorTCPV1, or a type the
	// PlanOptions.Supports hook accepted. For relay candidates it is the
	// nested hint of the relay.
	Hint Hint
	// Relay is set when Hint reaches a transit relay, so the relay
	// handshake has to come first.
	Relay bool
	// Delay is when to start, relative to the start of the race.
	Delay time.Duration
	// Inbound marks a connection accepted by our listener (Race creates
	// these; plans never contain them).
	Inbound bool
}

// String describes the candidate like Python's describe_hint_obj
// ("->tcp:h:p", "->relay:tcp:h:p", "<-h:p").
func (c Candidate) String() string {
	switch {
	case c.Inbound:
		if c.Hint == nil {
			return "<-inbound"
		}
		return "<-" + c.Hint.String()
	case c.Relay:
		return "->relay:" + c.Hint.String()
	default:
		return "->" + c.Hint.String()
	}
}

// PlanOptions tune MakePlan. The zero value gives the defaults.
type PlanOptions struct {
	// RelayDelay is how long relay attempts wait when at least one direct
	// candidate exists. 0 means DefaultRelayDelay; negative means none.
	// Without direct candidates relays start at once.
	RelayDelay time.Duration
	// RelayLevelDelay is added for each lower relay priority level
	// (relays are grouped by the priority of their nested hints and tried
	// in descending order). 0 means DefaultRelayLevelDelay; negative none.
	RelayLevelDelay time.Duration
	// Tor enables tor-tcp-v1 hints. Without it they are skipped, as
	// Python skips them without Tor.
	Tor bool
	// NoDirect drops every direct (non-relay) hint, e.g. to force the
	// relay path.
	NoDirect bool
	// NoRelay drops every relay hint.
	NoRelay bool
	// Supports reports whether the dialer handles a hint type other than
	// direct-tcp-v1 / tor-tcp-v1 (for instance an ICE hint registered in a
	// Registry). nil: no others.
	Supports func(Hint) bool
}

func (o PlanOptions) supports(h Hint) bool {
	switch h.(type) {
	case DirectTCPV1:
		return true
	case TorTCPV1:
		return o.Tor
	case RelayV1, Unknown, nil:
		return false
	}
	return o.Supports != nil && o.Supports(h)
}

func orDefault(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

func priorityOf(h Hint) float64 {
	if p, ok := h.(Prioritized); ok {
		return p.HintPriority()
	}
	return 0
}

func hintKey(h Hint) string { return h.HintType() + " " + h.String() }

// MakePlan turns hints (the peer's hints plus our own relay hints, in any
// order) into an ordered dial plan. It is a pure function:
//
//   - direct hints the dialer supports start at delay 0, highest priority
//     first (stable for equal priority), duplicates (same type and
//     address) removed;
//   - relay hints are flattened into their nested hints, de-duplicated
//     across relays (the highest priority of duplicates wins), grouped by
//     priority and started level by level in descending priority order:
//     the first level after RelayDelay if any direct candidate exists (else
//     at once), each next level RelayLevelDelay later;
//   - unsupported hints (Tor without Tor, Unknown, relays inside relays)
//     are skipped.
func MakePlan(hs []Hint, o PlanOptions) []Candidate {
	var direct []Candidate
	seenDirect := map[string]bool{}
	type relayEntry struct {
		h    Hint
		prio float64
		idx  int
	}
	var relays []relayEntry
	seenRelay := map[string]int{}
	for _, h := range hs {
		if h == nil {
			continue
		}
		if r, ok := h.(RelayV1); ok {
			if o.NoRelay {
				continue
			}
			for _, n := range r.Hints {
				if n == nil || !o.supports(n) {
					continue
				}
				k := hintKey(n)
				p := priorityOf(n)
				if i, dup := seenRelay[k]; dup {
					if p > relays[i].prio {
						relays[i].prio = p
					}
					continue
				}
				seenRelay[k] = len(relays)
				relays = append(relays, relayEntry{n, p, len(relays)})
			}
			continue
		}
		if o.NoDirect || !o.supports(h) {
			continue
		}
		k := hintKey(h)
		if seenDirect[k] {
			continue
		}
		seenDirect[k] = true
		direct = append(direct, Candidate{Hint: h})
	}
	slices.SortStableFunc(direct, func(a, b Candidate) int {
		return cmp.Compare(priorityOf(b.Hint), priorityOf(a.Hint))
	})
	slices.SortStableFunc(relays, func(a, b relayEntry) int {
		if c := cmp.Compare(b.prio, a.prio); c != 0 {
			return c
		}
		return cmp.Compare(a.idx, b.idx)
	})
	plan := direct
	var delay time.Duration
	if len(direct) > 0 {
		delay = orDefault(o.RelayDelay, DefaultRelayDelay)
	}
	step := orDefault(o.RelayLevelDelay, DefaultRelayLevelDelay)
	for i, r := range relays {
		if i > 0 && r.prio != relays[i-1].prio {
			delay += step
		}
		plan = append(plan, Candidate{Hint: r.h, Relay: true, Delay: delay})
	}
	return plan
}
