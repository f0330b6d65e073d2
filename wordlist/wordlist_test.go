package wordlist

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestTableShape(t *testing.T) {
	if EvenWord(0x00) != "aardvark" || OddWord(0x00) != "adroitness" {
		t.Fatalf("0x00 = %s/%s", EvenWord(0), OddWord(0))
	}
	if EvenWord(0xFF) != "Zulu" || OddWord(0xFF) != "Yucatan" {
		t.Fatalf("0xFF = %s/%s", EvenWord(0xFF), OddWord(0xFF))
	}
	even, odd := map[string]bool{}, map[string]bool{}
	for i := range 256 {
		e, o := strings.ToLower(EvenWord(byte(i))), strings.ToLower(OddWord(byte(i)))
		if e == "" || o == "" || strings.ContainsAny(e+o, " -") {
			t.Fatalf("byte %d: %q %q", i, e, o)
		}
		even[e], odd[o] = true, true
	}
	if len(even) != 256 || len(odd) != 256 {
		t.Fatalf("duplicate words: %d even, %d odd distinct", len(even), len(odd))
	}
}

func TestChooseWords(t *testing.T) {
	// The digest's example: 7-opulent-preclude = odd(0x9F), even(0x95).
	w, err := ChooseWords(bytes.NewReader([]byte{0x9F, 0x95}), 2)
	if err != nil || strings.Join(w, "-") != "opulent-preclude" {
		t.Fatalf("ChooseWords = %v, %v", w, err)
	}
	w, err = ChooseWords(bytes.NewReader([]byte{0xFF, 0xFF, 0xFF, 0x00}), 4)
	if err != nil || strings.Join(w, "-") != "yucatan-zulu-yucatan-aardvark" {
		t.Fatalf("ChooseWords = %v, %v", w, err)
	}
	if w, err := ChooseWords(nil, 0); err != nil || len(w) != 0 {
		t.Fatalf("ChooseWords(0) = %v, %v", w, err)
	}
	if _, err := ChooseWords(nil, -1); !errors.Is(err, ErrBadLength) {
		t.Fatalf("ChooseWords(-1): %v", err)
	}
	if _, err := ChooseWords(nil, MaxWords+1); !errors.Is(err, ErrBadLength) {
		t.Fatalf("ChooseWords(too many): %v", err)
	}
	if _, err := ChooseWords(bytes.NewReader([]byte{1}), 2); err == nil {
		t.Fatal("ChooseWords with short randomness succeeded")
	}
	w, err = ChooseWords(nil, 8)
	if err != nil || len(w) != 8 {
		t.Fatal(w, err)
	}
	for i, word := range w {
		if word != strings.ToLower(word) || GetCompletions(strings.Join(w[:i], "-")+sep(i)+word, 1) == nil {
			t.Fatalf("word %d %q is not a lower-case word from the right list (%v)", i, word, w)
		}
	}
}

func sep(i int) string {
	if i == 0 {
		return ""
	}
	return "-"
}

func TestGetCompletions(t *testing.T) {
	cases := []struct {
		prefix string
		n      int
		want   []string
	}{
		{"opu", 2, []string{"opulent-"}},
		{"opulent-pre", 2, []string{"opulent-preclude", "opulent-prefer", "opulent-preshrunk"}},
		{"opulent-preclude", 2, []string{"opulent-preclude"}},
		{"opulent-preclude-", 2, nil}, // checked below: 256 odd words
		{"zu", 2, nil},                // "zulu" is an even word; position 0 is odd
		{"yu", 2, []string{"yucatan-"}},
		{"Yu", 2, nil}, // case-sensitive, like Python
		{"opulent-zu", 3, []string{"opulent-zulu-"}},
		{"a-b-yu", 3, []string{"a-b-yucatan"}},
	}
	for _, c := range cases {
		got := GetCompletions(c.prefix, c.n)
		if c.prefix == "opulent-preclude-" {
			// third word comes from the odd list again, no hyphen
			if len(got) != 256 || !slices.Contains(got, "opulent-preclude-adroitness") {
				t.Errorf("GetCompletions(%q) gave %d: %v", c.prefix, len(got), got[:3])
			}
			continue
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("GetCompletions(%q, %d) = %v, want %v", c.prefix, c.n, got, c.want)
		}
	}
	if all := GetCompletions("xyz-", 2); len(all) != 256 || all[0] != "xyz-aardvark" || all[255] != "xyz-zulu" {
		t.Errorf("GetCompletions(\"xyz-\") = %d entries %q..%q", len(all), all[0], all[len(all)-1])
	}
	if all := GetCompletions("", 2); len(all) != 256 || all[0] != "adroitness-" {
		t.Errorf("GetCompletions(\"\") = %d entries starting %q", len(all), all[0])
	}
}
