// Package pake holds magic-wormhole's key agreement and key schedule:
// SPAKE2 in symmetric mode on the Ed25519 group, byte-compatible with
// python-spake2 0.8/0.9 (the versions magic-wormhole 0.12 and later pin),
// the HKDF-SHA256 key derivations of wormhole/_key.py, and the NaCl
// SecretBox framing (nonce || box) used for every encrypted phase.
//
// A SPAKE2 value is single use and not safe for concurrent use.
package pake
