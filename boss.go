package wormhole

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/wormhole-go/wormhole/pake"
)

// This file is the state machine: Python's Boss, Key, Receive, Send, Order,
// Nameplate, Mailbox and Terminator folded into one object guarded by w.mu.
// Methods named ...Locked must be called with w.mu held.

// bumpLocked wakes every waiter.
func (w *Wormhole) bumpLocked() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// waitLocked releases w.mu until something changes or ctx ends.
func (w *Wormhole) waitLocked(ctx context.Context) error {
	ch := w.changed
	w.mu.Unlock()
	defer w.mu.Lock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// closedErrLocked is what a call gets that cannot be satisfied any more.
func (w *Wormhole) closedErrLocked() error {
	if w.result != nil {
		return w.result
	}
	return ErrClosed
}

// waitFor waits until get reports ok, or the wormhole closed.
func waitFor[T any](ctx context.Context, w *Wormhole, get func() (T, bool)) (T, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		if v, ok := get(); ok {
			return v, nil
		}
		if w.state == StateClosed {
			var zero T
			return zero, w.closedErrLocked()
		}
		if err := w.waitLocked(ctx); err != nil {
			var zero T
			return zero, err
		}
	}
}

// waitQueue pops the head of *q, waiting for one.
func waitQueue(ctx context.Context, w *Wormhole, q *[][]byte) ([]byte, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		if len(*q) > 0 {
			m := (*q)[0]
			(*q)[0] = nil
			*q = (*q)[1:]
			return m, nil
		}
		if w.state == StateClosed {
			return nil, w.closedErrLocked()
		}
		if err := w.waitLocked(ctx); err != nil {
			return nil, err
		}
	}
}

func (w *Wormhole) emitLocked(e Event) {
	if w.ev == nil {
		return
	}
	w.ev.q = append(w.ev.q, e)
	if _, ok := e.(ClosedEvent); ok {
		w.ev.done = true
	}
	w.bumpLocked()
}

// dispatch moves queued events to the user's channel, in order.
func (w *Wormhole) dispatch() {
	defer w.evWG.Done()
	q := w.ev
	for {
		w.mu.Lock()
		for len(q.q) == 0 && !q.done {
			ch := w.changed
			w.mu.Unlock()
			<-ch
			w.mu.Lock()
		}
		if len(q.q) == 0 {
			w.mu.Unlock()
			close(q.ch)
			return
		}
		e := q.q[0]
		q.q[0] = nil
		q.q = q.q[1:]
		w.mu.Unlock()
		q.ch <- e
	}
}

// goLocked starts a tracked goroutine unless the wormhole is closing.
func (w *Wormhole) goLocked(f func()) bool {
	if w.state >= StateClosing {
		return false
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		f()
	}()
	return true
}

// ---- code ----

// gotCodeLocked: the code is known. Build and queue the PAKE message
// (Python: Code.do_*; Boss.got_code; Key.build_pake).
func (w *Wormhole) gotCodeLocked(code string) {
	w.code = code
	if w.state == StateEmpty {
		w.state = StateLonely
	}
	w.log.Debug("code known", "nameplate", w.nameplate)
	w.timing.add("code", nil)
	w.emitLocked(CodeEvent{Code: code})
	ti := w.timing.add("pake1", map[string]any{"waiting": "crypto"})
	sp, err := pake.NewSymmetric(pake.NFC(code), pake.NFC(w.opts.AppID), w.rand)
	w.timing.finish(ti, nil)
	if err != nil {
		w.failLocked(fmt.Errorf("wormhole: starting SPAKE2: %w", err))
		return
	}
	w.sp = sp
	body, _ := json.Marshal(map[string]string{"pake_v1": hex.EncodeToString(sp.Message())})
	w.queueOutLocked(outMsg{phase: "pake", body: body})
	if w.gotPake {
		w.computeKeyLocked()
	}
	w.bumpLocked()
}

// welcomer waits for the welcome message.
func (w *Wormhole) welcomer() {
	defer w.wg.Done()
	wel, err := w.mb.Welcome(w.ctx)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.mailboxFailedLocked("welcome", err)
		return
	}
	w.timing.add("welcome", map[string]any{"motd": wel.MOTD})
	w.welcome = &wel
	w.emitLocked(WelcomeEvent{Welcome: wel})
	w.bumpLocked()
}

// claimer allocates (if asked), claims the nameplate and opens the mailbox
// (Python: Allocator, Nameplate, Mailbox).
func (w *Wormhole) claimer() {
	defer w.wg.Done()
	defer close(w.claimerDone)
	ctx := w.claimCtx
	w.mu.Lock()
	for w.nameplate == "" && !w.allocRequested {
		if w.waitLocked(ctx) != nil {
			w.mu.Unlock()
			return
		}
	}
	alloc := w.nameplate == ""
	length := w.allocLen
	w.mu.Unlock()

	if alloc {
		ti := w.timing.add("allocate", nil)
		np, err := w.mb.Allocate(ctx)
		w.timing.finish(ti, nil)
		if err != nil {
			w.mailboxFailed("allocate", err)
			return
		}
		if validateNameplate(np) != nil {
			w.fail(fmt.Errorf("%w: server allocated a bad nameplate %q", ErrProtocol, np))
			return
		}
		words, err := chooseWords(w.rand, length)
		if err != nil {
			w.fail(fmt.Errorf("wormhole: choosing code words: %w", err))
			return
		}
		w.mu.Lock()
		if w.state >= StateClosing {
			w.mu.Unlock()
			return
		}
		w.nameplate = np
		w.gotCodeLocked(strings.Join(append([]string{np}, words...), "-"))
		w.mu.Unlock()
	}

	w.mu.Lock()
	np := w.nameplate
	w.claimTried = true
	w.mu.Unlock()
	ti := w.timing.add("claim", map[string]any{"nameplate": np})
	mailbox, err := w.mb.Claim(ctx, np)
	w.timing.finish(ti, nil)
	if err != nil {
		w.mailboxFailed("claim", err)
		return
	}
	w.mu.Lock()
	w.claimed = true
	w.mailbox = mailbox
	w.wordlistReady = true
	w.bumpLocked()
	w.mu.Unlock()
	if err := w.mb.Open(ctx, mailbox); err != nil {
		w.mailboxFailed("open", err)
		return
	}
	w.mu.Lock()
	w.mailboxOpen = true
	w.bumpLocked()
	w.mu.Unlock()
}

// ---- sending ----

func (w *Wormhole) queueOutLocked(m outMsg) {
	w.out = append(w.out, m)
	w.bumpLocked()
}

// sender hands queued messages to the mailbox client one at a time, in
// order, once the mailbox is open.
func (w *Wormhole) sender() {
	defer w.wg.Done()
	defer func() {
		w.mu.Lock()
		w.senderDone = true
		w.bumpLocked()
		w.mu.Unlock()
	}()
	for {
		w.mu.Lock()
		for !w.mailboxOpen || len(w.out) == 0 {
			if w.waitLocked(w.ctx) != nil {
				w.mu.Unlock()
				return
			}
		}
		m := w.out[0]
		w.mu.Unlock()
		err := w.mb.Add(w.ctx, m.phase, m.body)
		if err != nil {
			w.mailboxFailed("add "+m.phase, err)
			return
		}
		w.timing.add("add", map[string]any{"phase": m.phase})
		w.mu.Lock()
		w.out[0] = outMsg{}
		w.out = w.out[1:]
		if m.done != nil {
			close(m.done)
		}
		w.bumpLocked()
		w.mu.Unlock()
	}
}

// send queues an app (or dilate) message; see Send.
func (w *Wormhole) send(ctx context.Context, dilate bool, body []byte) error {
	w.mu.Lock()
	if w.state >= StateClosing {
		err := w.closedErrLocked()
		w.mu.Unlock()
		return err
	}
	var phase string
	if dilate {
		phase = "dilate-" + strconv.Itoa(w.nextTxDil)
		w.nextTxDil++
	} else {
		phase = strconv.Itoa(w.nextTx)
		w.nextTx++
	}
	m := outMsg{phase: phase, done: make(chan struct{})}
	if w.verified {
		m.body = w.encryptLocked(phase, body)
		w.queueOutLocked(m)
	} else {
		m.body = clone(body)
		w.held = append(w.held, m)
	}
	w.mu.Unlock()
	select {
	case <-m.done:
		return nil
	case <-w.closedCh:
		select {
		case <-m.done:
			return nil
		default:
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.closedErrLocked()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *Wormhole) encryptLocked(phase string, pt []byte) []byte {
	ct, err := pake.Seal(pake.DerivePhaseKey(w.key, w.side, phase), pt, w.rand)
	if err != nil {
		// Only a failing random source can get here.
		panic(fmt.Sprintf("wormhole: encrypting: %v", err))
	}
	return ct
}

// ---- receiving ----

// reader processes peer messages from the mailbox.
func (w *Wormhole) reader() {
	defer w.wg.Done()
	for {
		m, err := w.mb.Next(w.ctx)
		if err != nil {
			w.mailboxFailed("receive", err)
			return
		}
		w.handleInbound(m)
	}
}

func (w *Wormhole) handleInbound(m inbound) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state >= StateClosing {
		return
	}
	w.timing.add("rx", map[string]any{"phase": m.Phase, "side": m.Side})
	w.log.Debug("peer message", "phase", m.Phase)
	if !w.releaseStarted && w.claimed {
		w.startReleaseLocked()
	}
	if m.Phase == "pake" {
		if w.gotPake {
			return
		}
		peer, err := parsePakeBody(m.Body)
		if errors.Is(err, errNoPakeV1) {
			w.scaredLocked()
			return
		}
		if err != nil {
			w.failLocked(err)
			return
		}
		w.gotPake = true
		w.peerPake = peer
		if w.sp != nil {
			w.computeKeyLocked()
		}
		return
	}
	if w.key == nil {
		w.preKey = append(w.preKey, m)
		return
	}
	w.receiveLocked(m)
}

var errNoPakeV1 = errors.New("pake message without pake_v1")

// parsePakeBody decodes {"pake_v1": "<hex>"}.
func parsePakeBody(b []byte) ([]byte, error) {
	var d map[string]json.RawMessage
	if err := json.Unmarshal(b, &d); err != nil || d == nil {
		return nil, fmt.Errorf("%w: pake message is not a JSON object", ErrProtocol)
	}
	raw, ok := d["pake_v1"]
	if !ok {
		return nil, errNoPakeV1
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("%w: pake_v1 is not a string", ErrProtocol)
	}
	msg, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: pake_v1 is not hex: %v", ErrProtocol, err)
	}
	return msg, nil
}

// computeKeyLocked finishes SPAKE2, sends our version message and
// processes peer messages that waited for the key (Python:
// _SortedKey.compute_key, Order.drain).
func (w *Wormhole) computeKeyLocked() {
	ti := w.timing.add("pake2", map[string]any{"waiting": "crypto"})
	key, err := w.sp.Finish(w.peerPake)
	w.timing.finish(ti, nil)
	if err != nil {
		w.failLocked(fmt.Errorf("%w: SPAKE2 rejected the peer's message: %v", ErrProtocol, err))
		return
	}
	w.key = key
	w.emitLocked(KeyEvent{Key: clone(key)})
	vb, err := encodeVersions(w.opts.AppVersions, w.opts.Dilation)
	if err != nil {
		w.failLocked(err)
		return
	}
	w.queueOutLocked(outMsg{phase: "version", body: w.encryptLocked("version", vb)})
	pending := w.preKey
	w.preKey = nil
	for _, m := range pending {
		if w.state >= StateClosing {
			return
		}
		w.receiveLocked(m)
	}
	w.bumpLocked()
}

// receiveLocked decrypts and routes one peer message (Python: Receive,
// Boss.got_message).
func (w *Wormhole) receiveLocked(m inbound) {
	pt, err := pake.Open(pake.DerivePhaseKey(w.key, m.Side, m.Phase), m.Body)
	if err != nil {
		w.log.Debug("peer message failed to decrypt", "phase", m.Phase)
		w.scaredLocked()
		return
	}
	if !w.verified {
		w.verified = true
		if w.state == StateLonely {
			w.state = StateHappy
		}
		w.timing.add("verified", nil)
		for _, h := range w.held {
			h.body = w.encryptLocked(h.phase, h.body)
			w.queueOutLocked(h)
		}
		w.held = nil
		w.verifier = pake.DeriveKey(w.key, "wormhole:verifier", 32)
		w.emitLocked(VerifierEvent{Verifier: clone(w.verifier)})
	}
	switch {
	case m.Phase == "version":
		if w.peerVers != nil {
			return
		}
		pv, err := decodeVersions(pt)
		if err != nil {
			w.failLocked(err)
			return
		}
		w.peerVers = pv
		w.emitLocked(VersionsEvent{AppVersions: pv.app})
	case strings.HasPrefix(m.Phase, "dilate-"):
		n, ok := phaseNumber(strings.TrimPrefix(m.Phase, "dilate-"))
		if !ok {
			w.log.Debug("ignoring unknown phase", "phase", m.Phase)
			return
		}
		if n < w.nextDil {
			return
		}
		w.rxDil[n] = pt
		for {
			r, ok := w.rxDil[w.nextDil]
			if !ok {
				break
			}
			delete(w.rxDil, w.nextDil)
			w.nextDil++
			w.dilQ = append(w.dilQ, r)
		}
	default:
		n, ok := phaseNumber(m.Phase)
		if !ok {
			w.log.Debug("ignoring unknown phase", "phase", m.Phase)
			return
		}
		if n < w.nextRx {
			return
		}
		w.rx[n] = pt
		for {
			r, ok := w.rx[w.nextRx]
			if !ok {
				break
			}
			delete(w.rx, w.nextRx)
			w.nextRx++
			if w.ev != nil {
				w.emitLocked(MessageEvent{Body: r})
			} else {
				w.recvQ = append(w.recvQ, r)
			}
		}
	}
	w.bumpLocked()
}

// phaseNumber parses a phase matching ^\d+$.
func phaseNumber(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// startReleaseLocked releases the nameplate once (Python: the Mailbox
// calls Nameplate.release on every peer message; only the first counts).
func (w *Wormhole) startReleaseLocked() {
	w.releaseStarted = true
	done := make(chan struct{})
	w.releaseDone = done
	np := w.nameplate
	if !w.goLocked(func() {
		defer close(done)
		w.release(np)
	}) {
		close(done)
	}
}

func (w *Wormhole) release(np string) {
	ti := w.timing.add("release", map[string]any{"nameplate": np})
	err := w.mb.Release(w.ctx, np)
	w.timing.finish(ti, nil)
	if err != nil {
		w.log.Debug("release failed", "err", err)
	}
}

// ---- closing ----

func (w *Wormhole) scaredLocked() {
	w.startCloseLocked("scary", ErrWrongPassword)
}

// failLocked: the Python "error" path. Stop without sending a mood.
func (w *Wormhole) failLocked(err error) {
	w.startCloseLocked("", err)
}

func (w *Wormhole) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failLocked(err)
}

func (w *Wormhole) mailboxFailed(op string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mailboxFailedLocked(op, err)
}

// mailboxFailedLocked classifies an error from the mailbox client.
func (w *Wormhole) mailboxFailedLocked(op string, err error) {
	if w.ctx.Err() != nil || w.state >= StateClosing {
		return // we are shutting down: expected
	}
	var se *ServerError
	var we *WelcomeError
	switch {
	case errors.As(err, &we):
		w.startCloseLocked("unwelcome", we)
	case errors.As(err, &se):
		w.startCloseLocked("errory", se)
	case errors.Is(err, context.Canceled) && w.claimCtx.Err() != nil:
		// The claimer was stopped because we are closing.
	default:
		w.failLocked(fmt.Errorf("wormhole: mailbox %s: %w", op, err))
	}
}

// startCloseLocked moves to StateClosing and starts the terminator.
func (w *Wormhole) startCloseLocked(mood string, result error) {
	if w.state >= StateClosing {
		return
	}
	w.state = StateClosing
	w.result = result
	w.log.Debug("closing", "mood", mood, "result", result)
	w.timing.add("close", map[string]any{"mood": mood})
	w.bumpLocked()
	go w.terminate(mood)
}

// terminate is Python's Terminator: stop claiming, flush (when happy),
// release the nameplate, close the mailbox with the mood, disconnect, wait
// for every goroutine, then report closed.
func (w *Wormhole) terminate(mood string) {
	w.claimCancel()
	<-w.claimerDone
	w.mu.Lock()
	if mood != "" {
		// Python writes every message to the wire as soon as it exists, so
		// the close always follows them: flush what is queued (notably our
		// version, which a wrong-code peer needs to become scared too).
		for w.mailboxOpen && len(w.out) > 0 && !w.senderDone && w.ctx.Err() == nil {
			if w.waitLocked(w.ctx) != nil {
				break
			}
		}
	}
	needRelease := mood != "" && w.claimTried && !w.releaseStarted
	if needRelease {
		w.releaseStarted = true
	}
	releaseDone := w.releaseDone
	np, mailbox := w.nameplate, w.mailbox
	closeMailbox := mood != "" && mailbox != ""
	w.mu.Unlock()

	if needRelease {
		w.release(np)
	} else if releaseDone != nil {
		select {
		case <-releaseDone:
		case <-w.ctx.Done():
		}
	}
	if closeMailbox {
		ti := w.timing.add("close mailbox", map[string]any{"mood": mood})
		if err := w.mb.CloseMailbox(w.ctx, mailbox, mood); err != nil {
			w.log.Debug("closing the mailbox failed", "err", err)
		}
		w.timing.finish(ti, nil)
	}
	w.cancel()
	if err := w.mb.Close(); err != nil {
		w.log.Debug("closing the mailbox client", "err", err)
	}
	// Python's Terminator stops the Dilator after the mailbox connection.
	w.mu.Lock()
	d := w.dilation
	w.mu.Unlock()
	if d != nil {
		_ = d.Close()
	}
	w.wg.Wait()

	w.mu.Lock()
	w.state = StateClosed
	w.timing.add("closed", nil)
	w.emitLocked(ClosedEvent{Err: w.result})
	w.bumpLocked()
	close(w.closedCh)
	w.mu.Unlock()
}

// abort makes closing stop waiting for the server.
func (w *Wormhole) abort() {
	w.cancel()
}
