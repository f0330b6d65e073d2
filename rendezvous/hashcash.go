package rendezvous

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// Hashcash errors (spec 1.6). VerifyHashcash wraps ErrHashcashInvalid.
var (
	ErrHashcashInvalid = errors.New("rendezvous: invalid hashcash stamp")
	// ErrHashcashTooHard: MintHashcash refuses bit counts above MaxHashcashBits.
	ErrHashcashTooHard = errors.New("rendezvous: hashcash difficulty too high")
)

// MaxHashcashBits bounds the work MintHashcash will do (2^24 SHA-1 on
// average, a few seconds), so a hostile server cannot make a client burn
// minutes of CPU on every reconnect. The spec's example asks for 6.
const MaxHashcashBits = 24

// hashcashMaxAge is how far a stamp's date may be from "now" either way.
const hashcashMaxAge = 48 * time.Hour

// MintHashcash makes a Hashcash v1 stamp "1:bits:YYMMDD:resource::rand:counter"
// whose SHA-1 has at least bits leading zero bits. rand supplies the 12
// random salt bytes (crypto/rand.Reader in production).
func MintHashcash(bits int, resource string, now time.Time, rand io.Reader) (string, error) {
	if bits < 0 {
		return "", fmt.Errorf("rendezvous: hashcash bits %d < 0", bits)
	}
	if bits > MaxHashcashBits {
		return "", fmt.Errorf("%w: %d bits (max %d)", ErrHashcashTooHard, bits, MaxHashcashBits)
	}
	if strings.ContainsAny(resource, ":") {
		return "", fmt.Errorf("rendezvous: hashcash resource %q contains ':'", resource)
	}
	salt := make([]byte, 12)
	if _, err := io.ReadFull(rand, salt); err != nil {
		return "", fmt.Errorf("rendezvous: hashcash salt: %w", err)
	}
	prefix := fmt.Sprintf("1:%d:%s:%s::%s:", bits, now.UTC().Format("060102"), resource,
		base64.RawStdEncoding.EncodeToString(salt))
	buf := []byte(prefix)
	// Expected tries 2^bits; give up (probability ~e^-64) after 2^(bits+6).
	limit := uint64(1) << (bits + 6)
	for counter := uint64(0); counter < limit; counter++ {
		buf = strconv.AppendUint(buf[:len(prefix)], counter, 16)
		sum := sha1.Sum(buf)
		if leadingZeroBits(sum[:]) >= bits {
			return string(buf), nil
		}
	}
	return "", fmt.Errorf("rendezvous: hashcash: no stamp found in %d tries", limit)
}

// VerifyHashcash checks a stamp minted for resource: version 1, claimed bits
// at least bits, SHA-1 with at least bits leading zero bits, and a date within
// 48 hours of now. Dates may be YYMMDD, YYMMDDhhmm or YYMMDDhhmmss (standard
// hashcash) or the Rust client's base64("YYYYMMDD"). It does not remember
// stamps, so replay protection is the caller's job.
func VerifyHashcash(stamp string, bits int, resource string, now time.Time) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrHashcashInvalid, fmt.Sprintf(format, a...))
	}
	if len(stamp) > 1024 {
		return bad("stamp too long (%d bytes)", len(stamp))
	}
	parts := strings.Split(stamp, ":")
	if len(parts) != 7 {
		return bad("want 7 ':'-separated fields, got %d", len(parts))
	}
	if parts[0] != "1" {
		return bad("version %q, want 1", parts[0])
	}
	claimed, err := strconv.Atoi(parts[1])
	if err != nil || claimed < 0 || claimed > 160 {
		return bad("bits field %q", parts[1])
	}
	if claimed < bits {
		return bad("stamp claims %d bits, need %d", claimed, bits)
	}
	if parts[3] != resource {
		return bad("resource %q, want %q", parts[3], resource)
	}
	date, ok := parseHashcashDate(parts[2])
	if !ok {
		return bad("date %q", parts[2])
	}
	if d := now.Sub(date); d > hashcashMaxAge || d < -hashcashMaxAge {
		return bad("date %s too far from now %s", date.Format(time.DateTime), now.UTC().Format(time.DateTime))
	}
	sum := sha1.Sum([]byte(stamp))
	if got := leadingZeroBits(sum[:]); got < bits {
		return bad("hash has %d leading zero bits, need %d", got, bits)
	}
	return nil
}

func parseHashcashDate(s string) (time.Time, bool) {
	for _, layout := range []string{"060102", "0601021504", "060102150405"} {
		if len(s) == len(layout) {
			if t, err := time.Parse(layout, s); err == nil {
				return t, true
			}
		}
	}
	// Rust client (rs:src/util.rs): base64 of "YYYYMMDD".
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == 8 {
			if t, err := time.Parse("20060102", string(b)); err == nil {
				return t, true
			}
		}
	}
	return time.Time{}, false
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
