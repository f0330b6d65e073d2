package pake

import (
	"crypto/sha256"
	"io"
	"math/big"
	"sync"

	"filippo.io/edwards25519"
	"golang.org/x/crypto/hkdf"
)

// hkdfExpand is HKDF-SHA256 with no salt (equivalent to an empty salt).
func hkdfExpand(ikm, info []byte, n int) []byte {
	out := make([]byte, n)
	if _, err := io.ReadFull(hkdf.New(sha256.New, ikm, nil, info), out); err != nil {
		// Only possible when n > 255*32, which callers in this package
		// never ask for; DeriveKey checks its length argument first.
		panic("pake: hkdf: " + err.Error())
	}
	return out
}

// scalarFromBigEndian reduces a big-endian integer of at most 64 bytes
// modulo L, as Python's int.from_bytes(b, "big") % L.
func scalarFromBigEndian(b []byte) *edwards25519.Scalar {
	var wide [64]byte
	for i, c := range b {
		wide[len(b)-1-i] = c
	}
	s, err := edwards25519.NewScalar().SetUniformBytes(wide[:])
	if err != nil {
		panic("pake: SetUniformBytes: " + err.Error()) // length is always 64
	}
	return s
}

// passwordScalar is python-spake2's password_to_scalar for Ed25519.
func passwordScalar(pw []byte) *edwards25519.Scalar {
	return scalarFromBigEndian(hkdfExpand(pw, []byte("SPAKE2 pw"), 32+16))
}

// arbitraryElement is python-spake2's ed25519_basic.arbitrary_element:
// hash the seed to y mod Q, then try y, y+1, ... taking the even x root,
// until a curve point is found whose cofactor multiple is not the identity.
// Only called for fixed seeds, so math/big is fine here.
func arbitraryElement(seed []byte) *edwards25519.Point {
	q := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	h := hkdfExpand(seed, []byte("SPAKE2 arbitrary element"), 32+16)
	y0 := new(big.Int).Mod(new(big.Int).SetBytes(h), q)
	identity := edwards25519.NewIdentityPoint()
	for plus := int64(0); plus < 1000; plus++ {
		y := new(big.Int).Add(y0, big.NewInt(plus))
		y.Mod(y, q)
		var enc [32]byte // little-endian, top bit clear => even x
		y.FillBytes(enc[:])
		for i := range 16 {
			enc[i], enc[31-i] = enc[31-i], enc[i]
		}
		p, err := new(edwards25519.Point).SetBytes(enc[:])
		if err != nil {
			continue // not on the curve
		}
		p8 := new(edwards25519.Point).MultByCofactor(p)
		if p8.Equal(identity) != 1 {
			return p8
		}
	}
	panic("pake: no arbitrary element found") // unreachable for real seeds
}

// symmetricS is the blinding element S = arbitrary_element(b"symmetric").
// Computed once; the returned point is never modified.
var symmetricS = sync.OnceValue(func() *edwards25519.Point {
	return arbitraryElement([]byte("symmetric"))
})

// lMinusOne is the scalar L-1, used for the prime-order subgroup check.
var lMinusOne = sync.OnceValue(func() *edwards25519.Scalar {
	var one [32]byte
	one[0] = 1
	s, err := edwards25519.NewScalar().SetCanonicalBytes(one[:])
	if err != nil {
		panic(err)
	}
	return s.Negate(s)
})

// decodeElement is python-spake2's bytes_to_element: decode, reject the
// identity and anything outside the prime-order subgroup.
func decodeElement(b []byte) (*edwards25519.Point, error) {
	p, err := new(edwards25519.Point).SetBytes(b)
	if err != nil {
		return nil, err
	}
	identity := edwards25519.NewIdentityPoint()
	if p.Equal(identity) == 1 {
		return nil, errIdentity
	}
	// [L]P == identity  <=>  [L-1]P + P == identity. P is public, so the
	// variable-time multiplication is fine.
	lp := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(lMinusOne(), p, edwards25519.NewScalar())
	lp.Add(lp, p)
	if lp.Equal(identity) != 1 {
		return nil, errSubgroup
	}
	return p, nil
}
