// Package transit implements classic magic-wormhole Transit (py:transit.py),
// the encrypted bulk-data connection used by file transfer: key
// derivations, the direct and relayed handshakes, the sender's "go"/
// "nevermind" selection, the SecretBox record layer, and the connection
// race over direct and relay hints (package hints).
package transit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"golang.org/x/crypto/hkdf"
)

// KeySize is the transit key length (SecretBox key size).
const KeySize = 32

func derive(key []byte, info string) []byte {
	out := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.New(sha256.New, key, nil, []byte(info)), out); err != nil {
		panic("transit: hkdf: " + err.Error()) // cannot happen for 32 bytes
	}
	return out
}

// SenderHandshake is "transit sender <hex(HKDF(key,"transit_sender"))> ready\n\n".
func SenderHandshake(key []byte) []byte {
	return []byte("transit sender " + hex.EncodeToString(derive(key, "transit_sender")) + " ready\n\n")
}

// ReceiverHandshake is "transit receiver <hex(HKDF(key,"transit_receiver"))> ready\n\n".
func ReceiverHandshake(key []byte) []byte {
	return []byte("transit receiver " + hex.EncodeToString(derive(key, "transit_receiver")) + " ready\n\n")
}

// RelayToken is hex(HKDF(key, "transit_relay_token")), 64 characters.
func RelayToken(key []byte) string {
	return hex.EncodeToString(derive(key, "transit_relay_token"))
}

// RelayHandshake is "please relay <token> for side <side>\n". side must be
// 16 lowercase hex characters (8 random bytes), as Python asserts.
func RelayHandshake(key []byte, side string) ([]byte, error) {
	if !validSide(side) {
		return nil, fmt.Errorf("transit: relay side %q is not 16 hex characters", side)
	}
	return []byte("please relay " + RelayToken(key) + " for side " + side + "\n"), nil
}

func validSide(s string) bool {
	if len(s) != 16 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// SenderRecordKey encrypts records from sender to receiver.
func SenderRecordKey(key []byte) [32]byte {
	return [32]byte(derive(key, "transit_record_sender_key"))
}

// ReceiverRecordKey encrypts records from receiver to sender.
func ReceiverRecordKey(key []byte) [32]byte {
	return [32]byte(derive(key, "transit_record_receiver_key"))
}
