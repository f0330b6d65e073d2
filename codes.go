package wormhole

import (
	"io"

	"github.com/wormhole-go/wormhole/wordlist"
)

// KeyFormatError reports a malformed code or nameplate (Python:
// KeyFormatError). It is the word-list package's type.
type KeyFormatError = wordlist.KeyFormatError

func validateCode(code string) error                   { return wordlist.ValidateCode(code) }
func validateNameplate(n string) error                 { return wordlist.ValidateNameplate(n) }
func chooseWords(r io.Reader, n int) ([]string, error) { return wordlist.ChooseWords(r, n) }
func wordCompletions(prefix string, n int) []string {
	return wordlist.GetCompletions(prefix, n)
}
