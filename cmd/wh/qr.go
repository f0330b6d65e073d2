package main

import (
	"net/url"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// wormholeURI is the code as a wormhole-transfer URI
// (magic-wormhole-protocols, uri-scheme.md, version 0):
// "wormhole-transfer:<code>" with the code percent-encoded, plus
// "?rendezvous=…" when the mailbox server is not the default one (the URI
// names the server without its "/v1" endpoint).
func wormholeURI(code, relayURL string) string {
	u := "wormhole-transfer:" + percentEncodeCode(code)
	if relayURL != "" && relayURL != defaultRelayURL {
		u += "?rendezvous=" + url.QueryEscape(strings.TrimSuffix(strings.TrimSuffix(relayURL, "/"), "/v1"))
	}
	return u
}

// percentEncodeCode encodes the C0 control set (controls, DEL and every
// non-ASCII byte) and the characters that would end or alter the opaque
// path (space, '%', '?', '#').
func percentEncodeCode(code string) string {
	const hex = "0123456789ABCDEF"
	var sb strings.Builder
	for i := 0; i < len(code); i++ {
		c := code[i]
		if c <= 0x20 || c >= 0x7f || c == '%' || c == '?' || c == '#' {
			sb.WriteByte('%')
			sb.WriteByte(hex[c>>4])
			sb.WriteByte(hex[c&15])
			continue
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

// qrLevel is the error-correction level of the code's QR code.
const qrLevel = qrcode.Medium

// renderQR draws text as a QR code with Unicode half blocks (two module
// rows per line), dark modules as spaces on light blocks, quiet zone
// included, so it scans on dark terminals (the usual) and light ones.
func renderQR(text string) (string, error) {
	q, err := qrcode.New(text, qrLevel)
	if err != nil {
		return "", err
	}
	bm := q.Bitmap()
	var sb strings.Builder
	for y := 0; y < len(bm); y += 2 {
		for x := range bm[y] {
			top := bm[y][x]
			bot := y+1 >= len(bm) || bm[y+1][x] // past the end: dark (nothing drawn)
			switch {
			case top && bot:
				sb.WriteByte(' ')
			case top:
				sb.WriteString("▄")
			case bot:
				sb.WriteString("▀")
			default:
				sb.WriteString("█")
			}
		}
		sb.WriteByte('\n')
	}
	return sb.String(), nil
}
