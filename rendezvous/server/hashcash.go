package server

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// verifyStamp checks a hashcash v1 stamp "1:bits:date:resource:ext:rand:counter"
// as the protocols spec describes: SHA-1 of the stamp must have at least
// wantBits leading zero bits and it must name resource. The date is checked
// against maxAge when it parses as YYMMDD[hhmm[ss]] (standard hashcash) or as
// base64 of YYYYMMDD (the Rust client's form); other forms are accepted.
func verifyStamp(stamp string, wantBits int, resource string, now time.Time, maxAge time.Duration) error {
	f := strings.Split(stamp, ":")
	if len(f) != 7 {
		return errors.New("malformed stamp")
	}
	if f[0] != "1" {
		return errors.New("unsupported stamp version")
	}
	if b, err := strconv.Atoi(f[1]); err != nil || b < wantBits {
		return errors.New("stamp has too few bits")
	}
	if f[3] != resource {
		return errors.New("stamp is for another resource")
	}
	if t, ok := parseStampDate(f[2]); ok {
		if now.Sub(t) > maxAge || t.Sub(now) > 48*time.Hour {
			return errors.New("stamp expired")
		}
	}
	sum := sha1.Sum([]byte(stamp))
	if leadingZeroBits(sum[:]) < wantBits {
		return errors.New("stamp has too few bits")
	}
	return nil
}

func leadingZeroBits(b []byte) int {
	n := 0
	for _, x := range b {
		if x != 0 {
			return n + bits.LeadingZeros8(x)
		}
		n += 8
	}
	return n
}

func parseStampDate(s string) (time.Time, bool) {
	for _, layout := range []string{"060102", "0601021504", "060102150405"} {
		if len(s) == len(layout) {
			if t, err := time.Parse(layout, s); err == nil {
				return t, true
			}
		}
	}
	if d, err := base64.StdEncoding.DecodeString(s); err == nil && len(d) == 8 {
		if t, err := time.Parse("20060102", string(d)); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
