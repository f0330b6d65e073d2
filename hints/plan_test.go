package hints

import (
	"reflect"
	"testing"
	"time"
)

func d(h string, p int, prio float64) DirectTCPV1 {
	return DirectTCPV1{Hostname: h, Port: p, Priority: prio}
}
func relay(hs ...Hint) RelayV1 { return RelayV1{Hints: hs} }

type iceHint struct{}

func (iceHint) HintType() string { return "ice-v1" }
func (iceHint) String() string   { return "ice:x" }

func TestMakePlan(t *testing.T) {
	const ms = time.Millisecond
	tor := TorTCPV1{Hostname: "x.onion", Port: 80}
	for _, tc := range []struct {
		name string
		in   []Hint
		opts PlanOptions
		want []Candidate
	}{
		{name: "empty", in: nil, want: nil},
		{
			name: "direct only, priority order, stable",
			in:   []Hint{d("a", 1, 0), d("b", 1, 2), d("c", 1, 0), d("b", 1, 2)},
			want: []Candidate{{Hint: d("b", 1, 2)}, {Hint: d("a", 1, 0)}, {Hint: d("c", 1, 0)}},
		},
		{
			name: "relay only starts at once",
			in:   []Hint{relay(d("r", 4001, 0))},
			want: []Candidate{{Hint: d("r", 4001, 0), Relay: true}},
		},
		{
			name: "relay waits default delay behind direct",
			in:   []Hint{relay(d("r", 4001, 0)), d("a", 1, 0)},
			want: []Candidate{{Hint: d("a", 1, 0)}, {Hint: d("r", 4001, 0), Relay: true, Delay: DefaultRelayDelay}},
		},
		{
			name: "relay priority levels, duplicates merged across relays",
			in: []Hint{
				d("a", 1, 0),
				relay(d("low", 1, -1), d("hi", 1, 5)),
				relay(d("mid", 1, 1), d("mid2", 1, 1)),
				relay(d("low", 1, -1)), // ours and theirs
			},
			opts: PlanOptions{RelayDelay: 2 * time.Second, RelayLevelDelay: 100 * ms},
			want: []Candidate{
				{Hint: d("a", 1, 0)},
				{Hint: d("hi", 1, 5), Relay: true, Delay: 2 * time.Second},
				{Hint: d("mid", 1, 1), Relay: true, Delay: 2*time.Second + 100*ms},
				{Hint: d("mid2", 1, 1), Relay: true, Delay: 2*time.Second + 100*ms},
				{Hint: d("low", 1, -1), Relay: true, Delay: 2*time.Second + 200*ms},
			},
		},
		{
			name: "tor skipped without tor; unsupported direct does not delay relays",
			in:   []Hint{tor, relay(d("r", 1, 0), tor), Unknown{Type: "x"}, iceHint{}},
			want: []Candidate{{Hint: d("r", 1, 0), Relay: true}},
		},
		{
			name: "tor used with tor",
			in:   []Hint{tor, relay(tor)},
			opts: PlanOptions{Tor: true},
			want: []Candidate{{Hint: tor}, {Hint: tor, Relay: true, Delay: DefaultRelayDelay}},
		},
		{
			name: "pluggable type",
			in:   []Hint{iceHint{}, relay(d("r", 1, 0))},
			opts: PlanOptions{Supports: func(h Hint) bool { return h.HintType() == "ice-v1" }},
			want: []Candidate{{Hint: iceHint{}}, {Hint: d("r", 1, 0), Relay: true, Delay: DefaultRelayDelay}},
		},
		{
			name: "negative delays mean none",
			in:   []Hint{d("a", 1, 0), relay(d("r", 1, 1)), relay(d("s", 1, 0))},
			opts: PlanOptions{RelayDelay: -1, RelayLevelDelay: -1},
			want: []Candidate{{Hint: d("a", 1, 0)}, {Hint: d("r", 1, 1), Relay: true}, {Hint: d("s", 1, 0), Relay: true}},
		},
		{
			name: "NoDirect",
			in:   []Hint{d("a", 1, 0), relay(d("r", 1, 0))},
			opts: PlanOptions{NoDirect: true},
			want: []Candidate{{Hint: d("r", 1, 0), Relay: true}},
		},
		{
			name: "NoRelay",
			in:   []Hint{d("a", 1, 0), relay(d("r", 1, 0))},
			opts: PlanOptions{NoRelay: true},
			want: []Candidate{{Hint: d("a", 1, 0)}},
		},
		{
			name: "same address direct and via relay are different candidates",
			in:   []Hint{d("h", 1, 0), relay(d("h", 1, 0))},
			opts: PlanOptions{RelayDelay: 7 * ms},
			want: []Candidate{{Hint: d("h", 1, 0)}, {Hint: d("h", 1, 0), Relay: true, Delay: 7 * ms}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := MakePlan(tc.in, tc.opts)
			if len(got) == 0 && len(tc.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestCandidateString(t *testing.T) {
	for c, want := range map[Candidate]string{
		{Hint: d("1.2.3.4", 5, 0)}:            "->tcp:1.2.3.4:5",
		{Hint: d("::1", 5, 0), Relay: true}:   "->relay:tcp:[::1]:5",
		{Hint: d("::1", 5, 0), Inbound: true}: "<-tcp:[::1]:5",
	} {
		if got := c.String(); got != want {
			t.Errorf("%q want %q", got, want)
		}
	}
}
