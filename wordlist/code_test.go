package wordlist

import (
	"errors"
	"testing"
)

func TestValidateCode(t *testing.T) {
	cases := []struct {
		code, err string
	}{
		{"4-purple-sausages", ""},
		{"0-", ""},
		{"123", ""},
		{"7-opulent-preclude", ""},
		{"12\n-a", ""},
		{"12\n", ""}, // Python's $ matches before a final newline
		{"12\n\n", "Nameplate '12\n\n' must be numeric, with no spaces."},
		{"\u0663-x", ""}, // ARABIC-INDIC DIGIT THREE is \d in Python
		{"", "Nameplate '' must be numeric, with no spaces."},
		{"-a-b", "Nameplate '' must be numeric, with no spaces."},
		{"a-b", "Nameplate 'a' must be numeric, with no spaces."},
		{"4 -a", "Code '4 -a' contains spaces."},
		{"4-purple sausages", "Code '4-purple sausages' contains spaces."},
		{"4\t-a", "Nameplate '4\t' must be numeric, with no spaces."},
		{"+4-a", "Nameplate '+4' must be numeric, with no spaces."},
	}
	for _, c := range cases {
		err := ValidateCode(c.code)
		if c.err == "" {
			if err != nil {
				t.Errorf("ValidateCode(%q) = %v", c.code, err)
			}
			continue
		}
		var kfe *KeyFormatError
		if !errors.As(err, &kfe) || kfe.Msg != c.err || err.Error() != c.err {
			t.Errorf("ValidateCode(%q) = %v, want KeyFormatError %q", c.code, err, c.err)
		}
	}
}

func TestSplitCode(t *testing.T) {
	np, w, err := SplitCode("4-purple-sausages")
	if err != nil || np != "4" || w != "purple-sausages" {
		t.Fatalf("SplitCode = %q %q %v", np, w, err)
	}
	np, w, err = SplitCode("17")
	if err != nil || np != "17" || w != "" {
		t.Fatalf("SplitCode(17) = %q %q %v", np, w, err)
	}
	var kfe *KeyFormatError
	if _, _, err := SplitCode("x-y"); !errors.As(err, &kfe) {
		t.Fatalf("SplitCode(x-y) = %v", err)
	}
}
