package pake

import "golang.org/x/text/unicode/norm"

// NFC returns the UTF-8 bytes of s in Unicode Normalization Form C, as
// magic-wormhole's util.to_bytes does for the code (SPAKE2 password), the
// appid (SPAKE2 identity) and app-level derive_key purposes.
func NFC(s string) []byte {
	return norm.NFC.Bytes([]byte(s))
}
