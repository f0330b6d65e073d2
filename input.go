package wormhole

import (
	"context"
	"slices"
	"strings"
)

// inputState follows Python's Input machine (wormhole/_input.py).
type inputState int

const (
	inputTypingNameplate inputState = iota // S1
	inputTypingWords                       // S2/S3 (wordlist known once claimed)
	inputDone                              // S4
)

// CodeInput helps a user type a code with completion, like Python's
// w.input_code() helper: first the nameplate (completed from the server's
// list of nameplates in use), then the words (completed from the PGP word
// list once the nameplate is claimed).
type CodeInput struct {
	w          *Wormhole
	state      inputState // guarded by w.mu
	nameplates []string   // last list from the server
	timingIdx  int
}

// InputCode starts interactive code entry and returns the helper. It asks
// the server for the list of nameplates in use in the background.
func (w *Wormhole) InputCode() (*CodeInput, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.codeStarted {
		return nil, ErrOnlyOneCode
	}
	if w.state >= StateClosing {
		return nil, w.closedErrLocked()
	}
	w.codeStarted = true
	ci := &CodeInput{w: w}
	ci.timingIdx = w.timing.add("input code", map[string]any{"waiting": "user"})
	w.input = ci
	w.goLocked(func() { _, _ = ci.list(w.ctx) })
	return ci, nil
}

func (ci *CodeInput) list(ctx context.Context) ([]string, error) {
	w := ci.w
	l, err := w.mb.List(ctx)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if ci.state == inputTypingNameplate {
		ci.nameplates = slices.Clone(l)
		w.bumpLocked()
	}
	return slices.Clone(l), nil
}

// RefreshNameplates asks the server again for the nameplates in use and
// waits for the answer, which later NameplateCompletions use.
func (ci *CodeInput) RefreshNameplates(ctx context.Context) ([]string, error) {
	w := ci.w
	w.mu.Lock()
	if ci.state != inputTypingNameplate {
		w.mu.Unlock()
		return nil, ErrAlreadyChoseNameplate
	}
	w.mu.Unlock()
	return ci.list(ctx)
}

// NameplateCompletions returns "<nameplate>-" for every nameplate in the
// last list that starts with prefix, sorted.
func (ci *CodeInput) NameplateCompletions(prefix string) ([]string, error) {
	w := ci.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if ci.state != inputTypingNameplate {
		return nil, ErrAlreadyChoseNameplate
	}
	var out []string
	for _, n := range ci.nameplates {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n+"-")
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// ChooseNameplate commits to a nameplate (which must be numeric) and
// claims it; the word list becomes available when the claim is answered.
func (ci *CodeInput) ChooseNameplate(nameplate string) error {
	if err := validateNameplate(nameplate); err != nil {
		return err
	}
	w := ci.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if ci.state != inputTypingNameplate {
		return ErrAlreadyChoseNameplate
	}
	if w.state >= StateClosing {
		return w.closedErrLocked()
	}
	ci.state = inputTypingWords
	w.nameplate = nameplate
	w.bumpLocked()
	return nil
}

// WhenWordlistAvailable waits until the chosen nameplate was claimed, after
// which WordCompletions completes words.
func (ci *CodeInput) WhenWordlistAvailable(ctx context.Context) error {
	_, err := waitFor(ctx, ci.w, func() (struct{}, bool) { return struct{}{}, ci.w.wordlistReady })
	return err
}

// WordCompletions completes the last word of prefix (the words typed after
// "<nameplate>-", e.g. "opulent-pr"). Completions are whole word strings;
// they end in "-" when another word is expected (codes are assumed to have
// two words, as in Python). It is empty until the word list is available.
func (ci *CodeInput) WordCompletions(prefix string) ([]string, error) {
	w := ci.w
	w.mu.Lock()
	defer w.mu.Unlock()
	switch ci.state {
	case inputTypingNameplate:
		return nil, ErrMustChooseNameplateFirst
	case inputDone:
		return nil, ErrAlreadyChoseWords
	}
	if !w.wordlistReady {
		return nil, nil
	}
	c := wordCompletions(prefix, 2)
	slices.Sort(c)
	return c, nil
}

// ChooseWords finishes the code as "<nameplate>-<words>", e.g. words
// "opulent-preclude".
func (ci *CodeInput) ChooseWords(words string) error {
	w := ci.w
	w.mu.Lock()
	defer w.mu.Unlock()
	switch ci.state {
	case inputTypingNameplate:
		return ErrMustChooseNameplateFirst
	case inputDone:
		return ErrAlreadyChoseWords
	}
	code := w.nameplate + "-" + words
	if err := validateCode(code); err != nil {
		return err
	}
	if w.state >= StateClosing {
		return w.closedErrLocked()
	}
	ci.state = inputDone
	w.timing.finish(ci.timingIdx, nil)
	w.gotCodeLocked(code)
	return nil
}
