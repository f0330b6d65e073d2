package server

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
)

// maxMemUsage bounds the usage and client-version history a MemoryStore
// keeps; older records are dropped first.
const maxMemUsage = 10000

// MemoryStore is a Store that keeps everything in memory. State is lost when
// the process exits. The zero value is not usable; call NewMemoryStore.
type MemoryStore struct {
	mu     sync.Mutex
	closed bool

	nextNP     int64
	nameplates map[int64]*memNameplate
	byName     map[[2]string]int64
	mailboxes  map[string]*memMailbox
	usage      ring[Usage]
	versions   ring[ClientVersion]
	current    Current
}

// ring keeps the last maxMemUsage records, oldest first, without moving
// the kept ones when one is dropped.
type ring[T any] struct {
	buf   []T
	start int // index of the oldest record once buf is full
}

func (r *ring[T]) add(v T) {
	if len(r.buf) < maxMemUsage {
		r.buf = append(r.buf, v)
		return
	}
	r.buf[r.start] = v
	r.start = (r.start + 1) % len(r.buf)
}

func (r *ring[T]) list() []T {
	out := make([]T, 0, len(r.buf))
	out = append(out, r.buf[r.start:]...)
	return append(out, r.buf[:r.start]...)
}

type memNameplate struct {
	np    Nameplate
	sides []NameplateSide
}

type memMailbox struct {
	mb    Mailbox
	sides []MailboxSide
	msgs  []Message
	bytes int64
}

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		nameplates: make(map[int64]*memNameplate),
		byName:     make(map[[2]string]int64),
		mailboxes:  make(map[string]*memMailbox),
	}
}

// Update implements Store. It does not roll back on error.
func (s *MemoryStore) Update(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrStoreClosed
	}
	return fn(memTx{s})
}

// Close implements Store.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

type memTx struct{ s *MemoryStore }

func (t memTx) Nameplate(app, name string) (Nameplate, bool, error) {
	id, ok := t.s.byName[[2]string{app, name}]
	if !ok {
		return Nameplate{}, false, nil
	}
	return t.s.nameplates[id].np, true, nil
}

func (t memTx) NameplateNames(app string) ([]string, error) {
	var names []string
	for k := range t.s.byName {
		if k[0] == app {
			names = append(names, k[1])
		}
	}
	sort.Strings(names)
	return names, nil
}

func (t memTx) CreateNameplate(app, name, mailboxID string) (int64, error) {
	k := [2]string{app, name}
	if _, ok := t.s.byName[k]; ok {
		return 0, fmt.Errorf("memory store: nameplate %q exists", name)
	}
	t.s.nextNP++
	id := t.s.nextNP
	t.s.nameplates[id] = &memNameplate{np: Nameplate{ID: id, App: app, Name: name, MailboxID: mailboxID}}
	t.s.byName[k] = id
	return id, nil
}

func (t memTx) NameplatesForMailbox(app, mailboxID string) ([]Nameplate, error) {
	var out []Nameplate
	for _, n := range t.s.nameplates {
		if n.np.App == app && n.np.MailboxID == mailboxID {
			out = append(out, n.np)
		}
	}
	slices.SortFunc(out, func(a, b Nameplate) int { return int(a.ID - b.ID) })
	return out, nil
}

func (t memTx) NameplateSides(npid int64) ([]NameplateSide, error) {
	n, ok := t.s.nameplates[npid]
	if !ok {
		return nil, nil
	}
	return slices.Clone(n.sides), nil
}

func (t memTx) AddNameplateSide(npid int64, side string, added float64) error {
	n, ok := t.s.nameplates[npid]
	if !ok {
		return fmt.Errorf("memory store: no nameplate %d", npid)
	}
	n.sides = append(n.sides, NameplateSide{Side: side, Claimed: true, Added: added})
	return nil
}

func (t memTx) ReleaseNameplateSide(npid int64, side string) error {
	if n, ok := t.s.nameplates[npid]; ok {
		for i := range n.sides {
			if n.sides[i].Side == side {
				n.sides[i].Claimed = false
			}
		}
	}
	return nil
}

func (t memTx) DeleteNameplate(npid int64) error {
	if n, ok := t.s.nameplates[npid]; ok {
		delete(t.s.byName, [2]string{n.np.App, n.np.Name})
		delete(t.s.nameplates, npid)
	}
	return nil
}

func (t memTx) Mailbox(app, id string) (Mailbox, bool, error) {
	m, ok := t.s.mailboxes[id]
	if !ok || m.mb.App != app {
		return Mailbox{}, false, nil
	}
	return m.mb, true, nil
}

func (t memTx) Mailboxes(app string) ([]Mailbox, error) {
	var out []Mailbox
	for _, m := range t.s.mailboxes {
		if m.mb.App == app {
			out = append(out, m.mb)
		}
	}
	slices.SortFunc(out, func(a, b Mailbox) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out, nil
}

func (t memTx) CreateMailbox(m Mailbox) error {
	if _, ok := t.s.mailboxes[m.ID]; ok {
		return fmt.Errorf("memory store: mailbox %q exists", m.ID)
	}
	t.s.mailboxes[m.ID] = &memMailbox{mb: m}
	return nil
}

func (t memTx) TouchMailbox(id string, when float64) error {
	if m, ok := t.s.mailboxes[id]; ok {
		m.mb.Updated = when
	}
	return nil
}

func (t memTx) MailboxSides(id string) ([]MailboxSide, error) {
	m, ok := t.s.mailboxes[id]
	if !ok {
		return nil, nil
	}
	return slices.Clone(m.sides), nil
}

func (t memTx) AddMailboxSide(id, side string, added float64) error {
	m, ok := t.s.mailboxes[id]
	if !ok {
		return fmt.Errorf("memory store: no mailbox %q", id)
	}
	m.sides = append(m.sides, MailboxSide{Side: side, Opened: true, Added: added})
	return nil
}

func (t memTx) CloseMailboxSide(id, side, mood string) error {
	if m, ok := t.s.mailboxes[id]; ok {
		for i := range m.sides {
			if m.sides[i].Side == side {
				m.sides[i].Opened = false
				m.sides[i].Mood = mood
			}
		}
	}
	return nil
}

func (t memTx) DeleteMailbox(id string) error {
	delete(t.s.mailboxes, id)
	return nil
}

func (t memTx) MailboxCount() (int, error) { return len(t.s.mailboxes), nil }

func (t memTx) Apps() ([]string, error) {
	set := map[string]bool{}
	for _, n := range t.s.nameplates {
		set[n.np.App] = true
	}
	for _, m := range t.s.mailboxes {
		set[m.mb.App] = true
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out, nil
}

// AddMessage drops messages for a mailbox that no longer exists (the
// reference server would keep them forever, unreachable).
func (t memTx) AddMessage(app, mailboxID string, msg Message) error {
	m, ok := t.s.mailboxes[mailboxID]
	if !ok || m.mb.App != app {
		return nil
	}
	msg.ID = slices.Clone(msg.ID)
	m.msgs = append(m.msgs, msg)
	m.bytes += int64(len(msg.Body))
	return nil
}

func (t memTx) Messages(app, mailboxID string) ([]Message, error) {
	m, ok := t.s.mailboxes[mailboxID]
	if !ok || m.mb.App != app {
		return nil, nil
	}
	out := slices.Clone(m.msgs)
	slices.SortStableFunc(out, func(a, b Message) int {
		switch {
		case a.ServerRx < b.ServerRx:
			return -1
		case a.ServerRx > b.ServerRx:
			return 1
		}
		return 0
	})
	return out, nil
}

func (t memTx) MessageStats(app, mailboxID string) (int, int64, error) {
	m, ok := t.s.mailboxes[mailboxID]
	if !ok || m.mb.App != app {
		return 0, 0, nil
	}
	return len(m.msgs), m.bytes, nil
}

// AddUsage keeps the last maxMemUsage records (a ring: dropping the oldest
// does not move the others).
func (t memTx) AddUsage(u Usage) error { t.s.usage.add(u); return nil }

// AddClientVersion keeps the last maxMemUsage records.
func (t memTx) AddClientVersion(v ClientVersion) error { t.s.versions.add(v); return nil }

func (t memTx) SetCurrent(c Current) error { t.s.current = c; return nil }

func (t memTx) UsageRecords() ([]Usage, error) { return t.s.usage.list(), nil }

func (t memTx) ClientVersions() ([]ClientVersion, error) { return t.s.versions.list(), nil }

func (t memTx) Current() (Current, error) { return t.s.current, nil }
