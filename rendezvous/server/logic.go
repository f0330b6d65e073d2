package server

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"math"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// Protocol error strings, exactly as the reference server sends them.
const (
	errCrowded   = "crowded"
	errReclaimed = "reclaimed"
)

// errNoNameplate is returned when allocation finds no free nameplate.
var errNoNameplate = errors.New("unable to find a free nameplate-id")

// generateMailboxID is base32 of 8 random bytes, lowercase, unpadded.
func generateMailboxID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(strings.TrimRight(base32.StdEncoding.EncodeToString(b[:]), "="))
}

// findAvailableNameplate picks uniformly among the free ids of the shortest
// length (1-9, then 10-99, then 100-999), then makes 1000 random tries in
// 1000-999999, like the reference server.
func findAvailableNameplate(tx Tx, app string) (string, error) {
	names, err := tx.NameplateNames(app)
	if err != nil {
		return "", err
	}
	used := make(map[string]bool, len(names))
	for _, n := range names {
		used[n] = true
	}
	for size := 1; size <= 3; size++ {
		lo, hi := int(math.Pow10(size-1)), int(math.Pow10(size))
		var free []string
		for i := lo; i < hi; i++ {
			if id := strconv.Itoa(i); !used[id] {
				free = append(free, id)
			}
		}
		if len(free) > 0 {
			return free[mrand.IntN(len(free))], nil
		}
	}
	for range 1000 {
		id := strconv.Itoa(1000 + mrand.IntN(1000*1000-1000))
		if !used[id] {
			return id, nil
		}
	}
	return "", errNoNameplate
}

// claimNameplate implements AppNamespace.claim_nameplate. perr is a protocol
// error string ("crowded", "reclaimed"); the changes made before it stay.
func (s *Server) claimNameplate(tx Tx, app, name, side string, when float64) (mailboxID, perr string, err error) {
	np, ok, err := tx.Nameplate(app, name)
	if err != nil {
		return "", "", err
	}
	if !ok {
		mailboxID = generateMailboxID()
		if perr, err := s.ensureMailbox(tx, app, mailboxID, true, when); perr != "" || err != nil {
			return "", perr, err
		}
		id, err := tx.CreateNameplate(app, name, mailboxID)
		if err != nil {
			return "", "", err
		}
		np = Nameplate{ID: id, App: app, Name: name, MailboxID: mailboxID}
	}
	mailboxID = np.MailboxID
	sides, err := tx.NameplateSides(np.ID)
	if err != nil {
		return "", "", err
	}
	if i := slices.IndexFunc(sides, func(ns NameplateSide) bool { return ns.Side == side }); i < 0 {
		if err := tx.AddNameplateSide(np.ID, side, when); err != nil {
			return "", "", err
		}
	} else if !sides[i].Claimed {
		return "", errReclaimed, nil
	}
	if perr, err := s.openMailbox(tx, app, mailboxID, side, when); perr != "" || err != nil {
		return "", perr, err
	}
	sides, err = tx.NameplateSides(np.ID)
	if err != nil {
		return "", "", err
	}
	if len(sides) > 2 {
		return "", errCrowded, nil
	}
	return mailboxID, "", nil
}

// errTooManyMailboxes is sent when MaxMailboxes would be exceeded (not in
// the reference, which has no limit).
const errTooManyMailboxes = "too many mailboxes"

func (s *Server) ensureMailbox(tx Tx, app, id string, forNameplate bool, when float64) (perr string, err error) {
	_, ok, err := tx.Mailbox(app, id)
	if err != nil || ok {
		return "", err
	}
	if s.opts.MaxMailboxes > 0 {
		n, err := tx.MailboxCount()
		if err != nil {
			return "", err
		}
		if n >= s.opts.MaxMailboxes {
			s.log.Warn("mailbox limit reached", "limit", s.opts.MaxMailboxes)
			return errTooManyMailboxes, nil
		}
	}
	return "", tx.CreateMailbox(Mailbox{App: app, ID: id, Updated: when, ForNameplate: forNameplate})
}

// openMailbox implements AppNamespace.open_mailbox + Mailbox.open.
func (s *Server) openMailbox(tx Tx, app, id, side string, when float64) (perr string, err error) {
	if perr, err := s.ensureMailbox(tx, app, id, false, when); perr != "" || err != nil {
		return perr, err
	}
	sides, err := tx.MailboxSides(id)
	if err != nil {
		return "", err
	}
	if !slices.ContainsFunc(sides, func(ms MailboxSide) bool { return ms.Side == side }) {
		if err := tx.AddMailboxSide(id, side, when); err != nil {
			return "", err
		}
		sides = append(sides, MailboxSide{Side: side, Opened: true, Added: when})
	}
	if err := tx.TouchMailbox(id, when); err != nil {
		return "", err
	}
	if len(sides) > 2 {
		return errCrowded, nil
	}
	return "", nil
}

// releaseNameplate implements AppNamespace.release_nameplate.
func (s *Server) releaseNameplate(tx Tx, app, name, side string, when float64) error {
	np, ok, err := tx.Nameplate(app, name)
	if err != nil || !ok {
		return err
	}
	sides, err := tx.NameplateSides(np.ID)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(sides, func(ns NameplateSide) bool { return ns.Side == side }) {
		return nil
	}
	if err := tx.ReleaseNameplateSide(np.ID, side); err != nil {
		return err
	}
	for i := range sides {
		if sides[i].Side == side {
			sides[i].Claimed = false
		}
		if sides[i].Claimed {
			return nil
		}
	}
	if err := tx.DeleteNameplate(np.ID); err != nil {
		return err
	}
	return tx.AddUsage(s.summarizeNameplate(app, sides, when, false))
}

// closeMailbox implements Mailbox.close: mark the side closed, and when no
// side is open delete the mailbox (and, like newer reference servers, any
// nameplate still pointing at it) and record usage.
func (s *Server) closeMailbox(tx Tx, app, id, side, mood string, when float64) error {
	mb, ok, err := tx.Mailbox(app, id)
	if err != nil || !ok {
		return err
	}
	sides, err := tx.MailboxSides(id)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(sides, func(ms MailboxSide) bool { return ms.Side == side }) {
		return nil
	}
	if err := tx.CloseMailboxSide(id, side, mood); err != nil {
		return err
	}
	for i := range sides {
		if sides[i].Side == side {
			sides[i].Opened = false
			sides[i].Mood = mood
		}
		if sides[i].Opened {
			return nil
		}
	}
	if err := s.deleteNameplatesFor(tx, app, id, when, false); err != nil {
		return err
	}
	if err := tx.DeleteMailbox(id); err != nil {
		return err
	}
	delete(s.listeners, mailboxKey{app, id})
	return tx.AddUsage(s.summarizeMailbox(app, mb.ForNameplate, sides, when, false))
}

func (s *Server) deleteNameplatesFor(tx Tx, app, mailboxID string, when float64, pruned bool) error {
	nps, err := tx.NameplatesForMailbox(app, mailboxID)
	if err != nil {
		return err
	}
	for _, np := range nps {
		sides, err := tx.NameplateSides(np.ID)
		if err != nil {
			return err
		}
		if err := tx.DeleteNameplate(np.ID); err != nil {
			return err
		}
		if err := tx.AddUsage(s.summarizeNameplate(app, sides, when, pruned)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) blur(t float64) float64 {
	if b := s.opts.BlurUsage.Seconds(); b > 0 {
		return b * math.Floor(t/b)
	}
	return t
}

func (s *Server) summarizeNameplate(app string, sides []NameplateSide, deleteTime float64, pruned bool) Usage {
	times := make([]float64, 0, len(sides))
	for _, ns := range sides {
		times = append(times, ns.Added)
	}
	return s.summarize(Usage{Kind: UsageNameplate, App: app}, times, nil, deleteTime, pruned)
}

func (s *Server) summarizeMailbox(app string, forNameplate bool, sides []MailboxSide, deleteTime float64, pruned bool) Usage {
	times := make([]float64, 0, len(sides))
	var moods []string
	for _, ms := range sides {
		times = append(times, ms.Added)
		if ms.Mood != "" {
			moods = append(moods, ms.Mood)
		}
	}
	if moods == nil {
		moods = []string{}
	}
	return s.summarize(Usage{Kind: UsageMailbox, App: app, ForNameplate: forNameplate}, times, moods, deleteTime, pruned)
}

// summarize computes started, waiting and total time and the result like
// _summarize_nameplate_usage / _summarize_mailbox. moods is nil for
// nameplates.
func (s *Server) summarize(u Usage, times []float64, moods []string, deleteTime float64, pruned bool) Usage {
	slices.Sort(times)
	first := deleteTime
	if len(times) > 0 {
		first = times[0]
	}
	u.Started = s.blur(first)
	if len(times) > 1 {
		w := times[1] - times[0]
		u.WaitingTime = &w
	}
	u.TotalTime = deleteTime - first
	switch {
	case len(times) == 0 && moods != nil:
		u.Result = "quiet"
	case len(times) == 2 || (len(times) > 2 && moods != nil):
		u.Result = "happy"
	default:
		u.Result = "lonely"
	}
	for _, m := range []string{"lonely", "errory", "scary"} {
		if slices.Contains(moods, m) {
			u.Result = m
		}
	}
	if pruned {
		u.Result = "pruney"
	}
	if len(times) > 2 {
		u.Result = "crowded"
	}
	return u
}

// Prune deletes every mailbox (and the nameplates pointing at it) that has
// had no activity and no connected subscriber for ChannelExpiration, records
// "pruney" usage, and rewrites the status row. The prune timer calls it
// every PruneInterval.
func (s *Server) Prune(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowF()
	old := now - s.opts.ChannelExpiration.Seconds()
	listening := 0
	for k, ls := range s.listeners {
		if len(ls) == 0 {
			delete(s.listeners, k)
		}
		listening += len(ls)
	}
	return s.update(ctx, func(tx Tx) error {
		apps, err := tx.Apps()
		if err != nil {
			return err
		}
		for _, app := range apps {
			for k := range s.listeners {
				if k.app == app {
					if err := tx.TouchMailbox(k.id, now); err != nil {
						return err
					}
				}
			}
			mbs, err := tx.Mailboxes(app)
			if err != nil {
				return err
			}
			for _, mb := range mbs {
				if mb.Updated > old {
					continue
				}
				s.log.Debug("pruning mailbox", "app", app, "mailbox", mb.ID)
				if err := s.deleteNameplatesFor(tx, app, mb.ID, now, true); err != nil {
					return err
				}
				sides, err := tx.MailboxSides(mb.ID)
				if err != nil {
					return err
				}
				if err := tx.DeleteMailbox(mb.ID); err != nil {
					return err
				}
				if err := tx.AddUsage(s.summarizeMailbox(app, mb.ForNameplate, sides, now, true)); err != nil {
					return err
				}
			}
		}
		return tx.SetCurrent(Current{Rebooted: s.rebooted, Updated: now, BlurTime: s.opts.BlurUsage.Seconds(), Connections: listening})
	})
}
