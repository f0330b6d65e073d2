// Package codeinput reads a wormhole code from a person, with Tab
// completion of the nameplate and the words, like Python's
// wormhole/_rlcompleter.py (which uses readline) but with a small line editor
// of its own that runs on a terminal in raw mode.
//
// Completion rules (py:_rlcompleter.py CodeInputter):
//   - text without "-" completes nameplates ("" or "12" → "12-");
//   - "12-…" commits to nameplate 12 (claims it), waits for the word list,
//     then completes the words ("12-pur" → "12-purple-");
//   - once committed, the nameplate cannot be changed: the editor will not
//     delete past "12-".
package codeinput

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode"
)

// Helper is the wormhole's code-input helper (Python's input_code()).
type Helper interface {
	// RefreshNameplates asks the server for the current nameplates; it
	// may return before the answer arrives.
	RefreshNameplates(ctx context.Context) error
	// NameplateCompletions returns the known nameplates starting with
	// prefix, each followed by "-".
	NameplateCompletions(prefix string) ([]string, error)
	// ChooseNameplate commits to (claims) a nameplate.
	ChooseNameplate(ctx context.Context, nameplate string) error
	// WhenWordlistAvailable waits until word completion can work.
	WhenWordlistAvailable(ctx context.Context) error
	// WordCompletions completes the last partial word of words (the text
	// after "nameplate-"), returning whole words-strings.
	WordCompletions(prefix string) ([]string, error)
	// ChooseWords finishes the code.
	ChooseWords(ctx context.Context, words string) error
}

// ErrInterrupted is returned when the person pressed Ctrl-C.
var ErrInterrupted = errors.New("code entry interrupted")

// ErrIncomplete is returned by Finish for text without a "-" (Python raises
// KeyFormatError("incomplete wormhole code")).
var ErrIncomplete = errors.New("incomplete wormhole code")

// AlreadyInputNameplateError: the text names another nameplate than the one
// already committed to.
type AlreadyInputNameplateError struct{ Committed string }

func (e *AlreadyInputNameplateError) Error() string {
	return fmt.Sprintf("nameplate (%s-) already entered, cannot go back", e.Committed)
}

// Completer turns line text into completions and the final code.
type Completer struct {
	h         Helper
	committed string // nameplate we chose, "" if none yet
	// UsedCompletion is true once Tab was pressed.
	UsedCompletion bool
}

// NewCompleter returns a Completer over h.
func NewCompleter(h Helper) *Completer { return &Completer{h: h} }

// Committed returns the nameplate already chosen ("" if none).
func (c *Completer) Committed() string { return c.committed }

// Complete returns the sorted full-line completions of text.
func (c *Completer) Complete(ctx context.Context, text string) ([]string, error) {
	c.UsedCompletion = true
	nameplate, words, gotNameplate := strings.Cut(text, "-")
	if c.committed != "" && (!gotNameplate || nameplate != c.committed) {
		return nil, &AlreadyInputNameplateError{Committed: c.committed}
	}
	var out []string
	if !gotNameplate {
		if err := c.h.RefreshNameplates(ctx); err != nil {
			return nil, err
		}
		cs, err := c.h.NameplateCompletions(nameplate)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	} else {
		if c.committed == "" {
			if err := c.h.ChooseNameplate(ctx, nameplate); err != nil {
				return nil, err
			}
			c.committed = nameplate
			if err := c.h.WhenWordlistAvailable(ctx); err != nil {
				return nil, err
			}
		}
		cs, err := c.h.WordCompletions(words)
		if err != nil {
			return nil, err
		}
		for _, w := range cs {
			out = append(out, nameplate+"-"+w)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Finish submits the typed code.
func (c *Completer) Finish(ctx context.Context, text string) error {
	nameplate, words, ok := strings.Cut(text, "-")
	if !ok {
		return ErrIncomplete
	}
	if c.committed != "" {
		if nameplate != c.committed {
			return &AlreadyInputNameplateError{Committed: c.committed}
		}
	} else {
		if err := c.h.ChooseNameplate(ctx, nameplate); err != nil {
			return err
		}
		c.committed = nameplate
	}
	return c.h.ChooseWords(ctx, words)
}

// MaxLine bounds the typed line.
const MaxLine = 1024

// maxListed bounds how many completions are listed at once.
const maxListed = 60

// Editor is a minimal line editor for a terminal in raw mode: printable
// characters, Backspace, Ctrl-U, Ctrl-W, Tab (completion), Enter (submit),
// Ctrl-C (abort), Ctrl-D on an empty line (abort). Escape sequences (arrow
// keys) are ignored.
type Editor struct {
	In     io.Reader
	Out    io.Writer
	Prompt string
	C      *Completer
}

// ReadCode edits a line until Enter and then calls Finish on it. Errors
// from completion ring the bell and editing goes on; errors from Finish are
// returned (after the line is done).
func (e *Editor) ReadCode(ctx context.Context) (string, error) {
	r := bufio.NewReader(e.In)
	line := []rune{}
	redraw := func() { fmt.Fprintf(e.Out, "\r\x1b[K%s%s", e.Prompt, string(line)) }
	bell := func() { io.WriteString(e.Out, "\a") }
	floor := func() int { // cannot delete into a committed nameplate
		if n := e.C.Committed(); n != "" {
			return len([]rune(n)) + 1
		}
		return 0
	}
	io.WriteString(e.Out, e.Prompt)
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		ch, _, err := r.ReadRune()
		if err != nil {
			if errors.Is(err, io.EOF) {
				io.WriteString(e.Out, "\r\n")
				return "", io.EOF
			}
			return "", err
		}
		switch {
		case ch == '\r' || ch == '\n':
			io.WriteString(e.Out, "\r\n")
			code := string(line)
			if err := e.C.Finish(ctx, code); err != nil {
				return code, err
			}
			return code, nil
		case ch == 0x03: // Ctrl-C
			io.WriteString(e.Out, "^C\r\n")
			return "", ErrInterrupted
		case ch == 0x04: // Ctrl-D
			if len(line) == 0 {
				io.WriteString(e.Out, "\r\n")
				return "", io.EOF
			}
		case ch == '\t':
			cands, err := e.C.Complete(ctx, string(line))
			if err != nil {
				if ctx.Err() != nil {
					return "", ctx.Err()
				}
				bell()
				continue
			}
			switch {
			case len(cands) == 0:
				bell()
			case len(cands) == 1:
				line = []rune(cands[0])
				redraw()
			default:
				lcp := commonPrefix(cands)
				if len([]rune(lcp)) > len(line) {
					line = []rune(lcp)
					redraw()
					continue
				}
				shown := cands
				more := ""
				if len(shown) > maxListed {
					more = fmt.Sprintf("  (%d more)", len(shown)-maxListed)
					shown = shown[:maxListed]
				}
				fmt.Fprintf(e.Out, "\r\n%s%s\r\n", strings.Join(shown, "  "), more)
				redraw()
			}
		case ch == 0x7f || ch == 0x08: // Backspace
			if len(line) > floor() {
				line = line[:len(line)-1]
				io.WriteString(e.Out, "\b \b")
			} else {
				bell()
			}
		case ch == 0x15: // Ctrl-U
			line = line[:floor()]
			redraw()
		case ch == 0x17: // Ctrl-W: back to (and over) the previous "-"
			i := len(line)
			for i > floor() && line[i-1] == '-' {
				i--
			}
			for i > floor() && line[i-1] != '-' {
				i--
			}
			line = line[:i]
			redraw()
		case ch == 0x1b: // escape sequence: skip it
			skipEscape(r)
		case unicode.IsPrint(ch):
			if len(line) >= MaxLine {
				bell()
				continue
			}
			line = append(line, ch)
			io.WriteString(e.Out, string(ch))
		}
	}
}

// skipEscape consumes the rest of an ANSI escape sequence (CSI or SS3).
func skipEscape(r *bufio.Reader) {
	b, err := r.ReadByte()
	if err != nil || (b != '[' && b != 'O') {
		return
	}
	for i := 0; i < 16; i++ {
		b, err := r.ReadByte()
		if err != nil || (b >= 0x40 && b <= 0x7e) {
			return
		}
	}
}

func commonPrefix(ss []string) string {
	p := ss[0]
	for _, s := range ss[1:] {
		for !strings.HasPrefix(s, p) {
			_, size := lastRune(p)
			p = p[:len(p)-size]
		}
	}
	return p
}

func lastRune(s string) (rune, int) {
	r := []rune(s)
	if len(r) == 0 {
		return 0, 0
	}
	last := r[len(r)-1]
	return last, len(string(last))
}
