package wordlist

import (
	cryptorand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// DefaultCodeLength is the CLI's default number of words (--code-length),
// and the word count Python's completion always assumes.
const DefaultCodeLength = 2

// MaxWords bounds ChooseWords, so a bad length cannot exhaust memory.
const MaxWords = 1024

// ErrBadLength reports a word count outside [0, MaxWords].
var ErrBadLength = errors.New("wordlist: number of words out of range")

// EvenWord returns the two-syllable ("even") PGP word for b, with the
// capitalisation of Python's table (e.g. "Zulu" for 0xFF).
func EvenWord(b byte) string { return pgpWords[b][0] }

// OddWord returns the three-syllable ("odd") PGP word for b.
func OddWord(b byte) string { return pgpWords[b][1] }

// ChooseWords returns n lower-cased words, one random byte each (from rand,
// crypto/rand when nil), as Python's PGPWordList.choose_words: word i uses
// the odd (three-syllable) list when i is even and the even list when i is
// odd. Join them with "-" after the nameplate to form a code.
func ChooseWords(rand io.Reader, n int) ([]string, error) {
	if n < 0 || n > MaxWords {
		return nil, fmt.Errorf("%w: %d", ErrBadLength, n)
	}
	if rand == nil {
		rand = cryptorand.Reader
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(rand, b); err != nil {
		return nil, fmt.Errorf("wordlist: reading randomness: %w", err)
	}
	words := make([]string, n)
	for i, c := range b {
		if i%2 == 0 {
			words[i] = strings.ToLower(OddWord(c))
		} else {
			words[i] = strings.ToLower(EvenWord(c))
		}
	}
	return words, nil
}

// GetCompletions is Python's PGPWordList.get_completions(prefix, num_words)
// for the words part of a code (the text after "nameplate-"): it completes
// the last partial word from the odd list when prefix holds an even number
// of "-", else from the even list, and appends "-" when count+1 < numWords.
// Matching is case-sensitive against the lower-cased words, as in Python.
// Python's input helper always passes numWords = 2 (DefaultCodeLength).
// The result is sorted (Python returns a set).
func GetCompletions(prefix string, numWords int) []string {
	count := strings.Count(prefix, "-")
	col := 0 // even list
	if count%2 == 0 {
		col = 1 // odd list
	}
	head := prefix[:strings.LastIndex(prefix, "-")+1]
	last := prefix[len(head):]
	var out []string
	for i := range pgpWords {
		w := strings.ToLower(pgpWords[i][col])
		if !strings.HasPrefix(w, last) {
			continue
		}
		c := head + w
		if count+1 < numWords {
			c += "-"
		}
		out = append(out, c)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
