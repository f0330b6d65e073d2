package codeinput

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// fakeHelper mimics Python's _input.py Input with a tiny word list.
type fakeHelper struct {
	nameplates []string
	refreshes  int
	chosenNP   string
	words      string
	odd, even  []string
}

func newFake() *fakeHelper {
	return &fakeHelper{
		nameplates: []string{"4", "7", "71"},
		odd:        []string{"adroitness", "adviser", "aftermath", "purple"},
		even:       []string{"absurd", "accrue", "sausages", "sawdust"},
	}
}

func (f *fakeHelper) RefreshNameplates(context.Context) error { f.refreshes++; return nil }
func (f *fakeHelper) NameplateCompletions(p string) ([]string, error) {
	if f.chosenNP != "" {
		return nil, errors.New("already chose nameplate")
	}
	var out []string
	for _, n := range f.nameplates {
		if strings.HasPrefix(n, p) {
			out = append(out, n+"-")
		}
	}
	return out, nil
}
func (f *fakeHelper) ChooseNameplate(_ context.Context, n string) error {
	if n == "" || strings.Trim(n, "0123456789") != "" {
		return errors.New("nameplate must be numeric")
	}
	if f.chosenNP != "" {
		return errors.New("already chose nameplate")
	}
	f.chosenNP = n
	return nil
}
func (f *fakeHelper) WhenWordlistAvailable(context.Context) error { return nil }
func (f *fakeHelper) WordCompletions(prefix string) ([]string, error) {
	if f.chosenNP == "" {
		return nil, errors.New("must choose nameplate first")
	}
	words := strings.Split(prefix, "-")
	last := words[len(words)-1]
	c := len(words) - 1
	list := f.odd
	if c%2 == 1 {
		list = f.even
	}
	var out []string
	for _, w := range list {
		if strings.HasPrefix(w, last) {
			s := strings.Join(append(words[:c:c], w), "-")
			if c+1 < 2 {
				s += "-"
			}
			out = append(out, s)
		}
	}
	return out, nil
}
func (f *fakeHelper) ChooseWords(_ context.Context, w string) error { f.words = w; return nil }

func run(t *testing.T, keys string) (*fakeHelper, string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f := newFake()
	var out bytes.Buffer
	e := &Editor{In: strings.NewReader(keys), Out: &out, Prompt: "Enter receive wormhole code: ", C: NewCompleter(f)}
	code, err := e.ReadCode(ctx)
	return f, code, out.String(), err
}

func TestEditorCompletesNameplateAndWords(t *testing.T) {
	// "7" Tab → ambiguous (7-, 71-): lists both; "-" typed; "p" Tab →
	// "7-purple-"; "sa" Tab → ambiguous sausages/sawdust → "saw" Tab →
	// "7-purple-sawdust"; Enter.
	f, code, out, err := run(t, "7\t-p\tsa\tw\t\r")
	if err != nil {
		t.Fatal(err)
	}
	if code != "7-purple-sawdust" || f.chosenNP != "7" || f.words != "purple-sawdust" {
		t.Fatalf("code %q nameplate %q words %q", code, f.chosenNP, f.words)
	}
	if !strings.Contains(out, "7-  71-") {
		t.Errorf("ambiguous nameplates not listed: %q", out)
	}
	if !strings.Contains(out, "7-purple-sausages  7-purple-sawdust") {
		t.Errorf("ambiguous words not listed: %q", out)
	}
	if f.refreshes == 0 {
		t.Errorf("nameplate Tab did not refresh the list")
	}
}

func TestEditorUniqueNameplate(t *testing.T) {
	f, code, out, err := run(t, "4\tad\tac\t\r")
	if err != nil {
		t.Fatal(err)
	}
	// "4" Tab → "4-"; "ad" Tab commits nameplate 4, the candidates
	// adroitness-/adviser- share only "ad" so they are listed; "ac" Tab has
	// no candidate (bell).
	if code != "4-adac" || f.words != "adac" {
		t.Fatalf("code %q words %q", code, f.words)
	}
	if !strings.Contains(out, "4-adroitness-  4-adviser-") || !strings.Contains(out, "\a") {
		t.Fatalf("output %q", out)
	}
}

func TestEditorEditing(t *testing.T) {
	// backspace, Ctrl-W, Ctrl-U and arrow keys; committed nameplate cannot be deleted
	f, code, out, err := run(t, "4\tp\t\x17\x15\x7f\x1b[D\x1bOAaft\tabs\t\r")
	if err != nil {
		t.Fatal(err)
	}
	if code != "4-aftermath-absurd" || f.words != "aftermath-absurd" {
		t.Fatalf("code %q (out %q)", code, out)
	}
	_, code, out, err = run(t, "4\tp\t"+strings.Repeat("\x7f", 12)+"x\r")
	if err != nil || code != "4-x" || !strings.Contains(out, "\a") {
		t.Fatalf("deleting the committed nameplate: code %q err %v out %q", code, err, out)
	}
}

func TestEditorAbortAndErrors(t *testing.T) {
	if _, _, _, err := run(t, "12\x03"); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Ctrl-C: %v", err)
	}
	if _, _, _, err := run(t, "\x04"); !errors.Is(err, io.EOF) {
		t.Fatalf("Ctrl-D: %v", err)
	}
	if _, _, _, err := run(t, "12"); !errors.Is(err, io.EOF) {
		t.Fatalf("EOF: %v", err)
	}
	if _, _, _, err := run(t, "12\r"); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("no dash: %v", err)
	}
	// non-numeric nameplate: Tab rings the bell, Enter reports the error
	_, _, out, err := run(t, "ab-\t\r")
	if err == nil || !strings.Contains(out, "\a") {
		t.Fatalf("bad nameplate: %v %q", err, out)
	}
	// typed without Tab: no completion used
	ctx := context.Background()
	f := newFake()
	c := NewCompleter(f)
	e := &Editor{In: strings.NewReader("9-a-b\n"), Out: io.Discard, C: c}
	if code, err := e.ReadCode(ctx); err != nil || code != "9-a-b" || c.UsedCompletion || f.chosenNP != "9" {
		t.Fatalf("plain: %q %v used=%v", code, err, c.UsedCompletion)
	}
	// cancelled context stops the editor
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	e = &Editor{In: strings.NewReader("9-a-b\n"), Out: io.Discard, C: NewCompleter(newFake())}
	if _, err := e.ReadCode(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v", err)
	}
}

func TestCompleterGoingBack(t *testing.T) {
	ctx := context.Background()
	c := NewCompleter(newFake())
	if _, err := c.Complete(ctx, "4-"); err != nil {
		t.Fatal(err)
	}
	var ae *AlreadyInputNameplateError
	if _, err := c.Complete(ctx, "7"); !errors.As(err, &ae) || ae.Committed != "4" {
		t.Fatalf("going back: %v", err)
	}
	if err := c.Finish(ctx, "5-a-b"); !errors.As(err, &ae) {
		t.Fatalf("finish other nameplate: %v", err)
	}
}

// FuzzEditor: any key sequence ends (input is finite), never panics, and a
// successful result is exactly what was given to the helper.
func FuzzEditor(f *testing.F) {
	for _, s := range []string{"7\t-p\tsa\tw\t\r", "4\tp\t\x17\x15\x7f\x1b[D\x1bOAaft\tabs\t\r", "\x03", "\x04", "ab-\t\r", "\x1b[", "9-\xff\xfe\r", "4\t\t\t\x7f\x7f\x7f\x7f\r"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, keys []byte) {
		h := newFake()
		e := &Editor{In: bytes.NewReader(keys), Out: io.Discard, Prompt: "> ", C: NewCompleter(h)}
		code, err := e.ReadCode(context.Background())
		if len([]rune(code)) > MaxLine {
			t.Fatalf("line of %d runes", len([]rune(code)))
		}
		if err == nil && code != h.chosenNP+"-"+h.words {
			t.Fatalf("returned %q but helper has %q-%q", code, h.chosenNP, h.words)
		}
	})
}
