package pake

import "crypto/sha256"

// Purposes used with DeriveKey across the project.
const (
	// VerifierPurpose derives the verifier shown to users (py:_key.py).
	VerifierPurpose = "wormhole:verifier"
	// PhasePurposePrefix starts every phase-key purpose (DerivePhaseKey).
	PhasePurposePrefix = "wormhole:phase:"
	// DilationPurpose derives the Dilation key (py:_dilation/manager.py).
	DilationPurpose = "dilation-v1"
	// FileTransferAppID is the CLI's appid.
	FileTransferAppID = "lothar.com/wormhole/text-or-file-xfer"
	// TransitKeyPurpose is what the Python CLI derives its transit key
	// with, whatever the appid ("BUG339").
	TransitKeyPurpose = FileTransferAppID + "/transit-key"
)

// KeySize is the size of the shared key and of every derived SecretBox key.
const KeySize = 32

// MaxDeriveLength is HKDF-SHA256's output limit (255 hash blocks), the
// largest length DeriveKey accepts.
const MaxDeriveLength = 255 * sha256.Size

// DeriveKey is magic-wormhole's derive_key: HKDF-SHA256 with no salt, IKM
// key, info = purpose (raw bytes; NFC-normalise user-supplied strings
// first, as Python's Wormhole.derive_key does). length must be in
// [0, MaxDeriveLength]; anything else is a programming error (callers
// taking a length from outside must check it) and DeriveKey panics.
func DeriveKey(key []byte, purpose string, length int) []byte {
	if length < 0 || length > MaxDeriveLength {
		panic("pake: DeriveKey length out of range")
	}
	return hkdfExpand(key, []byte(purpose), length)
}

// DerivePhaseKey is derive_phase_key: the 32-byte SecretBox key for a
// message in phase sent by side. Python encodes side and phase as ASCII
// (sides are hex, phases "pake"/"version"/digits/"dilate-N"); Go uses the
// bytes of the strings as they are.
func DerivePhaseKey(key []byte, side, phase string) []byte {
	sideHash := sha256.Sum256([]byte(side))
	phaseHash := sha256.Sum256([]byte(phase))
	info := make([]byte, 0, len(PhasePurposePrefix)+2*sha256.Size)
	info = append(info, PhasePurposePrefix...)
	info = append(info, sideHash[:]...)
	info = append(info, phaseHash[:]...)
	return hkdfExpand(key, info, KeySize)
}

// Verifier is DeriveKey(key, "wormhole:verifier", 32).
func Verifier(key []byte) []byte {
	return DeriveKey(key, VerifierPurpose, KeySize)
}
