package wordlist

import (
	"errors"
	"strings"
	"testing"
	"unicode"
)

// FuzzValidateCode checks code parsing and validation on arbitrary input:
// no panic, errors are *KeyFormatError naming the input, and accepted codes
// have the shape Python accepts.
func FuzzValidateCode(f *testing.F) {
	for _, s := range []string{
		"4-purple-sausages", "0-", "123", "", "-", "a-b", "4 -a", "12\n",
		"12\n\n-x", "\u0663\u0664-x", "４２-x", "4-\xff\xfe", "\xff-a",
		"7-opulent-preclude-adroitness", strings.Repeat("9", 300),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, code string) {
		np, words, err := SplitCode(code)
		if verr := ValidateCode(code); (verr == nil) != (err == nil) {
			t.Fatalf("SplitCode and ValidateCode disagree: %v / %v", err, verr)
		}
		if err != nil {
			var kfe *KeyFormatError
			if !errors.As(err, &kfe) {
				t.Fatalf("error %T %v is not a KeyFormatError", err, err)
			}
			if !strings.Contains(kfe.Msg, "'"+code+"'") && !strings.Contains(kfe.Msg, "'"+strings.SplitN(code, "-", 2)[0]+"'") {
				t.Fatalf("message %q does not name the input", kfe.Msg)
			}
			return
		}
		if strings.Contains(code, " ") || np == "" {
			t.Fatalf("accepted %q", code)
		}
		if got := np + map[bool]string{true: "-", false: ""}[strings.Contains(code, "-")] + words; got != code {
			t.Fatalf("split %q into %q + %q", code, np, words)
		}
		for _, r := range strings.TrimSuffix(np, "\n") {
			if !unicode.IsDigit(r) {
				t.Fatalf("nameplate %q has non-digit %q", np, r)
			}
		}
		if ValidateNameplate(np) != nil {
			t.Fatalf("nameplate %q of a valid code is invalid", np)
		}
	})
}

// FuzzGetCompletions: no panic, and every completion extends the prefix's
// head (the text up to its last "-") with a word.
func FuzzGetCompletions(f *testing.F) {
	f.Add("", 2)
	f.Add("opu", 2)
	f.Add("opulent-pre", 3)
	f.Add("a-b-c-", 1)
	f.Add("\xff-", -1)
	f.Fuzz(func(t *testing.T, prefix string, n int) {
		head := prefix[:strings.LastIndex(prefix, "-")+1]
		for _, c := range GetCompletions(prefix, n) {
			if !strings.HasPrefix(c, prefix) || !strings.HasPrefix(c, head) {
				t.Fatalf("completion %q does not extend %q", c, prefix)
			}
			w := strings.TrimSuffix(c[len(head):], "-")
			if w == "" || strings.Contains(w, "-") {
				t.Fatalf("completion %q: bad word %q", c, w)
			}
		}
	})
}
