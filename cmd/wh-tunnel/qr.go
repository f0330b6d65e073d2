package main

import (
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// renderQR draws text as a QR code with Unicode half blocks (two modules
// per character cell), dark modules as spaces on a light background so it
// scans on dark and light terminals alike.
func renderQR(text string) string {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return ""
	}
	bm := q.Bitmap() // includes the quiet zone
	var sb strings.Builder
	for y := 0; y < len(bm); y += 2 {
		for x := range bm[y] {
			top := bm[y][x]
			bot := y+1 < len(bm) && bm[y+1][x]
			switch {
			case top && bot:
				sb.WriteRune(' ')
			case top:
				sb.WriteRune('▄')
			case bot:
				sb.WriteRune('▀')
			default:
				sb.WriteRune('█')
			}
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}
