//go:build !wordlist

package wormhole

// TEMPORARY: package wordlist is not committed yet. This file keeps the
// package building until it lands; it is replaced by codes_wordlist.go.

import (
	"fmt"
	"io"
	"strings"
)

// KeyFormatError reports a malformed code or nameplate (Python:
// KeyFormatError).
type KeyFormatError struct{ Msg string }

func (e *KeyFormatError) Error() string { return e.Msg }

func validateNameplate(n string) error {
	if n == "" || strings.Trim(n, "0123456789") != "" {
		return &KeyFormatError{fmt.Sprintf("Nameplate '%s' must be numeric, with no spaces.", n)}
	}
	return nil
}

func validateCode(code string) error {
	if strings.Contains(code, " ") {
		return &KeyFormatError{fmt.Sprintf("Code '%s' contains spaces.", code)}
	}
	np, _, _ := strings.Cut(code, "-")
	return validateNameplate(np)
}

var tmpWords = [2][]string{{"aardvark", "absurd", "accrue", "acme"}, {"adroitness", "adviser", "aftermath", "aggregate"}}

func chooseWords(r io.Reader, n int) ([]string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	out := make([]string, n)
	for i := range b {
		out[i] = tmpWords[1-i%2][int(b[i])%4]
	}
	return out, nil
}

func wordCompletions(prefix string, n int) []string {
	var out []string
	for _, w := range tmpWords[strings.Count(prefix, "-")%2^1] {
		if strings.HasPrefix(w, prefix[strings.LastIndex(prefix, "-")+1:]) {
			c := prefix[:strings.LastIndex(prefix, "-")+1] + w
			if strings.Count(prefix, "-")+1 < n {
				c += "-"
			}
			out = append(out, c)
		}
	}
	return out
}
