package wordlist

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// Live comparisons with magic-wormhole 0.12.0 as installed by Debian.

func TestLiveWordTable(t *testing.T) {
	py := startPy(t)
	var r struct{ Words map[string][2]string }
	py.call(map[string]any{"op": "table"}, &r)
	if len(r.Words) != 256 {
		t.Fatalf("python table has %d entries", len(r.Words))
	}
	for i := range 256 {
		k := fmt.Sprintf("%02X", i)
		want, ok := r.Words[k]
		if !ok {
			t.Fatalf("python table lacks %s", k)
		}
		if EvenWord(byte(i)) != want[0] || OddWord(byte(i)) != want[1] {
			t.Errorf("byte %s: go %s/%s, python %s/%s", k, EvenWord(byte(i)), OddWord(byte(i)), want[0], want[1])
		}
	}
}

func TestLiveChooseWords(t *testing.T) {
	py := startPy(t)
	rng := rand.New(rand.NewChaCha8([32]byte{3}))
	for n := range 9 {
		for range 20 {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			var r struct{ Words string }
			py.call(map[string]any{"op": "choose", "bytes": fmt.Sprintf("%x", b), "n": n}, &r)
			got, err := ChooseWords(strings.NewReader(string(b)), n)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "-") != r.Words {
				t.Fatalf("bytes %x: go %q, python %q", b, strings.Join(got, "-"), r.Words)
			}
		}
	}
	// Every byte in both positions.
	all := make([]byte, 512)
	for i := range 256 {
		all[2*i], all[2*i+1] = byte(i), byte(i)
	}
	var r struct{ Words string }
	py.call(map[string]any{"op": "choose", "bytes": fmt.Sprintf("%x", all), "n": 512}, &r)
	got, _ := ChooseWords(strings.NewReader(string(all)), 512)
	if strings.Join(got, "-") != r.Words {
		t.Fatal("all-bytes word choice differs from python")
	}
}

// completionPrefixes covers empty, single letters, two-letter starts of
// every word of both lists, full words, hyphen positions, upper case and
// non-ASCII.
func completionPrefixes() []string {
	ps := []string{"", "-", "--", "a-", "a-b-", "x-y-z-", "Zu", "ZULU", "zulu-", "é", "日本", "opulent-preclude",
		"opulent-preclude-", "opulent-preclude-ad", "yucatan-zulu-yucatan-", "--a", "a--b", "é-op", "日本-a", "é-日-ad"}
	for c := 'a'; c <= 'z'; c++ {
		ps = append(ps, string(c), "opulent-"+string(c), "x-y-"+string(c))
	}
	for i := range 256 {
		for _, w := range []string{EvenWord(byte(i)), OddWord(byte(i))} {
			lw := strings.ToLower(w)
			ps = append(ps, lw[:2], lw, lw+"-", "opulent-"+lw[:3], w)
		}
	}
	return ps
}

func TestLiveCompletions(t *testing.T) {
	py := startPy(t)
	prefixes := completionPrefixes()
	check := func(n int, r [][]string) {
		t.Helper()
		if len(r) != len(prefixes) {
			t.Fatalf("python returned %d results for %d prefixes", len(r), len(prefixes))
		}
		nonEmpty := 0
		for i, p := range prefixes {
			got := GetCompletions(p, n)
			if !slices.Equal(got, r[i]) && !(len(got) == 0 && len(r[i]) == 0) {
				t.Errorf("GetCompletions(%q, %d) = %v, python %v", p, n, got, r[i])
			}
			if len(got) > 0 {
				nonEmpty++
			}
		}
		if nonEmpty < len(prefixes)/2 {
			t.Fatalf("only %d of %d prefixes completed; the comparison is too weak", nonEmpty, len(prefixes))
		}
	}
	// Python's input helper calls get_completions(prefix) with the default
	// num_words, which must be DefaultCodeLength.
	var r struct{ Completions [][]string }
	py.call(map[string]any{"op": "completions", "prefixes": prefixes}, &r)
	check(DefaultCodeLength, r.Completions)
	for _, n := range []int{0, 1, 3, 4} {
		py.call(map[string]any{"op": "completions", "prefixes": prefixes, "num_words": n}, &r)
		check(n, r.Completions)
	}
}

func TestLiveValidate(t *testing.T) {
	py := startPy(t)
	corpus := []string{
		"4-purple-sausages", "0-", "123", "", "-", "a-b", "4 -a", "4- a", " 4", "4\t-a",
		"12\n", "12\n-a", "12\n\n-a", "\n", "\n-a", "12\r\n-a", "\u0663\u0664-x", "４２-x", "²-x",
		"½-x", "Ⅷ-x", "+4-a", "-4-a", "4.0-a", "0x1-a", "1_000-a", "00001-a", "4\u00a0-a", "4-a\u3000b",
		"7-opulent-preclude-adroitness", strings.Repeat("9", 300) + "-a", "%s-a", "4-%s", "'-a", "4--",
	}
	var r struct{ Code, Nameplate []*string }
	py.call(map[string]any{"op": "validate", "strings": corpus}, &r)
	for i, s := range corpus {
		for _, c := range []struct {
			what string
			f    func(string) error
			want *string
		}{{"ValidateCode", ValidateCode, r.Code[i]}, {"ValidateNameplate", ValidateNameplate, r.Nameplate[i]}} {
			err := c.f(s)
			switch {
			case c.want == nil && err != nil:
				t.Errorf("%s(%q) = %v, python accepts", c.what, s, err)
			case c.want != nil && err == nil:
				t.Errorf("%s(%q) accepted, python: %s", c.what, s, *c.want)
			case c.want != nil && err.Error() != *c.want:
				t.Errorf("%s(%q) = %q, python %q", c.what, s, err, *c.want)
			}
		}
	}
}

// TestLiveDigits compares the nameplate digit set (Python's \d) with Go's
// unicode.IsDigit over every code point. Differences are allowed only for
// characters unassigned in Python's (older) Unicode database.
func TestLiveDigits(t *testing.T) {
	py := startPy(t)
	var r struct {
		Digits  []int32
		Unidata string
	}
	py.call(map[string]any{"op": "digits"}, &r)
	if len(r.Digits) < 600 {
		t.Fatalf("python reports only %d digits", len(r.Digits))
	}
	pyDigit := make(map[rune]bool, len(r.Digits))
	for _, cp := range r.Digits {
		pyDigit[cp] = true
		if ValidateNameplate(string(cp)) != nil {
			t.Errorf("U+%04X is \\d in python but rejected by Go", cp)
		}
	}
	var goOnly []int32
	for cp := rune(0); cp <= unicode.MaxRune; cp++ {
		if unicode.IsDigit(cp) && !pyDigit[cp] {
			goOnly = append(goOnly, cp)
		}
	}
	if len(goOnly) > 0 {
		var c struct{ Categories []string }
		py.call(map[string]any{"op": "categories", "cps": goOnly}, &c)
		for i, cp := range goOnly {
			if c.Categories[i] != "Cn" {
				t.Errorf("U+%04X: Go digit, python category %s and not \\d", cp, c.Categories[i])
			}
		}
	}
	t.Logf("python unicodedata %s: %d digits; Go (Unicode %s) accepts %d more, all unassigned in python's tables",
		r.Unidata, len(r.Digits), unicode.Version, len(goOnly))
}
