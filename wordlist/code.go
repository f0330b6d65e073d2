package wordlist

import (
	"fmt"
	"strings"
	"unicode"
)

// KeyFormatError is Python's wormhole.errors.KeyFormatError: a code with
// spaces or a nameplate that is not numeric. Msg is Python's message.
type KeyFormatError struct{ Msg string }

func (e *KeyFormatError) Error() string { return e.Msg }

// ValidateNameplate is Python's validate_nameplate: the nameplate must
// match re.search(r'^\d+$', n). That means one or more Unicode decimal
// digits (category Nd, as Python's \d; not only ASCII), and, because
// Python's $ also matches before a final newline, one trailing "\n" is
// accepted.
func ValidateNameplate(n string) error {
	digits := strings.TrimSuffix(n, "\n")
	ok := digits != ""
	for _, r := range digits {
		if !unicode.IsDigit(r) {
			ok = false
			break
		}
	}
	if !ok {
		return &KeyFormatError{Msg: fmt.Sprintf("Nameplate '%s' must be numeric, with no spaces.", n)}
	}
	return nil
}

// ValidateCode is Python's validate_code: no ASCII space anywhere, and the
// text before the first "-" (the whole code if there is none) must be a
// valid nameplate. The words are not checked.
func ValidateCode(code string) error {
	if strings.Contains(code, " ") {
		return &KeyFormatError{Msg: fmt.Sprintf("Code '%s' contains spaces.", code)}
	}
	nameplate, _, _ := strings.Cut(code, "-")
	return ValidateNameplate(nameplate)
}

// SplitCode validates code and splits it at the first "-" into the
// nameplate and the words ("" when there is no "-"; Python accepts such a
// code too).
func SplitCode(code string) (nameplate, words string, err error) {
	if err := ValidateCode(code); err != nil {
		return "", "", err
	}
	nameplate, words, _ = strings.Cut(code, "-")
	return nameplate, words, nil
}
