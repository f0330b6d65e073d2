package tunnel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
)

// A minimal MessagePack (https://msgpack.org/) codec, enough for fowl's
// control messages: maps with string keys whose values are nil, bool,
// integers, floats, strings, binary, arrays and maps. Written from the
// format specification; decoded values are:
//
//	nil, bool, int64, uint64 (only above MaxInt64), float64, string,
//	[]byte, []any, map[string]any
//
// Decoding is bounded: nesting depth, element counts and lengths are
// checked against the remaining input before anything is allocated.

// ErrMsgpack is wrapped by every msgpack decoding error.
var ErrMsgpack = errors.New("tunnel: bad msgpack")

const mpMaxDepth = 16

// mpEncode appends the msgpack encoding of v. Supported: nil, bool, int,
// int64, uint16, string, []byte, float64, []any and map[string]any (keys
// are written sorted so the output is deterministic).
func mpEncode(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, 0xc0), nil
	case bool:
		if x {
			return append(b, 0xc3), nil
		}
		return append(b, 0xc2), nil
	case int:
		return mpInt(b, int64(x)), nil
	case int64:
		return mpInt(b, x), nil
	case uint16:
		return mpInt(b, int64(x)), nil
	case uint64:
		if x > math.MaxInt64 {
			b = append(b, 0xcf)
			return binary.BigEndian.AppendUint64(b, x), nil
		}
		return mpInt(b, int64(x)), nil
	case float64:
		b = append(b, 0xcb)
		return binary.BigEndian.AppendUint64(b, math.Float64bits(x)), nil
	case string:
		return mpStr(b, x), nil
	case []byte:
		n := len(x)
		switch {
		case n < 1<<8:
			b = append(b, 0xc4, byte(n))
		case n < 1<<16:
			b = append(b, 0xc5)
			b = binary.BigEndian.AppendUint16(b, uint16(n))
		default:
			b = append(b, 0xc6)
			b = binary.BigEndian.AppendUint32(b, uint32(n))
		}
		return append(b, x...), nil
	case []any:
		b = mpLen(b, len(x), 0x90, 0xdc, 0xdd)
		var err error
		for _, e := range x {
			if b, err = mpEncode(b, e); err != nil {
				return nil, err
			}
		}
		return b, nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = mpLen(b, len(x), 0x80, 0xde, 0xdf)
		var err error
		for _, k := range keys {
			b = mpStr(b, k)
			if b, err = mpEncode(b, x[k]); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	return nil, fmt.Errorf("tunnel: msgpack: cannot encode %T", v)
}

func mpLen(b []byte, n int, fix, c16, c32 byte) []byte {
	switch {
	case n < 16:
		return append(b, fix|byte(n))
	case n < 1<<16:
		b = append(b, c16)
		return binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, c32)
		return binary.BigEndian.AppendUint32(b, uint32(n))
	}
}

// mpStr writes a str-family value (Python's msgpack decodes it to str).
func mpStr(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n < 1<<8:
		b = append(b, 0xd9, byte(n))
	case n < 1<<16:
		b = append(b, 0xda)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0xdb)
		b = binary.BigEndian.AppendUint32(b, uint32(n))
	}
	return append(b, s...)
}

// mpInt writes the smallest encoding, as Python's msgpack does.
func mpInt(b []byte, v int64) []byte {
	switch {
	case v >= 0 && v < 128:
		return append(b, byte(v))
	case v >= 0 && v < 1<<8:
		return append(b, 0xcc, byte(v))
	case v >= 0 && v < 1<<16:
		b = append(b, 0xcd)
		return binary.BigEndian.AppendUint16(b, uint16(v))
	case v >= 0 && v < 1<<32:
		b = append(b, 0xce)
		return binary.BigEndian.AppendUint32(b, uint32(v))
	case v >= 0:
		b = append(b, 0xcf)
		return binary.BigEndian.AppendUint64(b, uint64(v))
	case v >= -32:
		return append(b, byte(int8(v)))
	case v >= math.MinInt8:
		return append(b, 0xd0, byte(int8(v)))
	case v >= math.MinInt16:
		b = append(b, 0xd1)
		return binary.BigEndian.AppendUint16(b, uint16(int16(v)))
	case v >= math.MinInt32:
		b = append(b, 0xd2)
		return binary.BigEndian.AppendUint32(b, uint32(int32(v)))
	default:
		b = append(b, 0xd3)
		return binary.BigEndian.AppendUint64(b, uint64(v))
	}
}

// mpDecode decodes exactly one value that must fill all of b.
func mpDecode(b []byte) (any, error) {
	d := mpDecoder{b: b}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if d.off != len(b) {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMsgpack, len(b)-d.off)
	}
	return v, nil
}

type mpDecoder struct {
	b   []byte
	off int
}

func (d *mpDecoder) errf(format string, a ...any) error {
	return fmt.Errorf("%w at offset %d: %s", ErrMsgpack, d.off, fmt.Sprintf(format, a...))
}

func (d *mpDecoder) take(n int) ([]byte, error) {
	if n < 0 || n > len(d.b)-d.off {
		return nil, d.errf("truncated (need %d bytes)", n)
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p, nil
}

func (d *mpDecoder) uint(n int) (uint64, error) {
	p, err := d.take(n)
	if err != nil {
		return 0, err
	}
	var v uint64
	for _, c := range p {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

func (d *mpDecoder) value(depth int) (any, error) {
	if depth > mpMaxDepth {
		return nil, d.errf("nested too deeply")
	}
	p, err := d.take(1)
	if err != nil {
		return nil, err
	}
	c := p[0]
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	case c&0xf0 == 0x80:
		return d.mapN(int(c&0x0f), depth)
	case c&0xf0 == 0x90:
		return d.arrayN(int(c&0x0f), depth)
	case c&0xe0 == 0xa0:
		return d.strN(int(c & 0x1f))
	}
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	case 0xc4, 0xc5, 0xc6:
		n, err := d.uint(1 << (c - 0xc4))
		if err != nil {
			return nil, err
		}
		if n > uint64(len(d.b)-d.off) {
			return nil, d.errf("bin length %d exceeds input", n)
		}
		q, _ := d.take(int(n))
		return append([]byte(nil), q...), nil
	case 0xc7, 0xc8, 0xc9: // ext: skipped, decoded as nil
		n, err := d.uint(1 << (c - 0xc7))
		if err != nil {
			return nil, err
		}
		if n > uint64(len(d.b)-d.off) {
			return nil, d.errf("ext length %d exceeds input", n)
		}
		if _, err := d.take(int(n) + 1); err != nil {
			return nil, err
		}
		return nil, nil
	case 0xca:
		v, err := d.uint(4)
		return float64(math.Float32frombits(uint32(v))), err
	case 0xcb:
		v, err := d.uint(8)
		return math.Float64frombits(v), err
	case 0xcc, 0xcd, 0xce, 0xcf:
		v, err := d.uint(1 << (c - 0xcc))
		if err != nil {
			return nil, err
		}
		if v > math.MaxInt64 {
			return v, nil
		}
		return int64(v), nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		n := 1 << (c - 0xd0)
		v, err := d.uint(n)
		if err != nil {
			return nil, err
		}
		shift := 64 - 8*n
		return int64(v<<shift) >> shift, nil
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext: skipped
		if _, err := d.take(1 + 1<<(c-0xd4)); err != nil {
			return nil, err
		}
		return nil, nil
	case 0xd9, 0xda, 0xdb:
		n, err := d.uint(1 << (c - 0xd9))
		if err != nil {
			return nil, err
		}
		if n > uint64(len(d.b)-d.off) {
			return nil, d.errf("str length %d exceeds input", n)
		}
		return d.strN(int(n))
	case 0xdc, 0xdd:
		n, err := d.uint(2 << (c - 0xdc))
		if err != nil {
			return nil, err
		}
		if n > uint64(len(d.b)-d.off) { // each element takes at least one byte
			return nil, d.errf("array length %d exceeds input", n)
		}
		return d.arrayN(int(n), depth)
	case 0xde, 0xdf:
		n, err := d.uint(2 << (c - 0xde))
		if err != nil {
			return nil, err
		}
		if n > uint64(len(d.b)-d.off)/2 {
			return nil, d.errf("map length %d exceeds input", n)
		}
		return d.mapN(int(n), depth)
	}
	return nil, d.errf("unused type byte 0x%02x", c)
}

func (d *mpDecoder) strN(n int) (any, error) {
	p, err := d.take(n)
	if err != nil {
		return nil, err
	}
	return string(p), nil
}

func (d *mpDecoder) arrayN(n, depth int) (any, error) {
	out := make([]any, 0, min(n, len(d.b)-d.off))
	for range n {
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (d *mpDecoder) mapN(n, depth int) (any, error) {
	out := make(map[string]any, min(n, (len(d.b)-d.off)/2))
	for range n {
		k, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		ks, ok := k.(string)
		if !ok {
			if kb, isBytes := k.([]byte); isBytes {
				ks = string(kb) // msgpack-python with use_bin_type=False
			} else {
				return nil, d.errf("map key of type %T", k)
			}
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out[ks] = v
	}
	return out, nil
}
