package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/wormhole-go/wormhole/hints"
	"github.com/wormhole-go/wormhole/transfer"
)

// maxText bounds a text message read from stdin; larger data should be sent
// as a file.
const maxText = 16 << 20

const sendHelp = `Usage: wh send [OPTIONS] [WHAT]

  Send a text message, file, or directory.

  wh prints a code such as 7-guitarist-revenge; read it to the person on the
  other computer, who runs 'wormhole receive' (or 'wh receive') and types it.

  With no --text and no WHAT, wh asks for one line of text ("Text to send: ").
  A file is sent as is; a directory is sent as a zip file, which the receiver
  unpacks. File data goes over a direct connection when one works, otherwise
  through the transit relay (--transit-helper).

Examples:
  wh send --text "hello"                 # allocate a code, send "hello"
  wh send --text - < notes.txt           # send everything on stdin
  wh send --code 7-foo-bar --text hi     # use a code you agreed on
  wh send --verify --text hi             # compare verifiers before sending
  wh send report.pdf                     # send a file
  wh send photos/                        # send a directory

Options:
  --text MESSAGE         text message to send, instead of a file; '-' reads stdin
  --code CODE            human-generated code phrase (NNN-word-word)
  --ignore-unsendable-files
                         skip files in a directory that cannot be read
  --qr                   also show the code as a QR code (a wormhole-transfer:
                         URI, for phone apps that scan it)
` + commonHelp

func runSend(ctx context.Context, e *env, g globals, args []string) int {
	fs := newFlagSet("wh send")
	g.register(fs)
	var c commonOptions
	c.register(fs)
	var text, code string
	var ignoreUnsendable, qr bool
	textSet := false
	fs.Func("text", "", func(s string) error { text, textSet = s, true; return nil })
	fs.StringVar(&code, "code", "", "")
	fs.BoolVar(&ignoreUnsendable, "ignore-unsendable-files", false, "")
	fs.BoolVar(&qr, "qr", false, "")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return usageError(e, "wh send", err)
	}
	if c.help {
		fmt.Fprint(e.stdout, sendHelp)
		return exitOK
	}
	switch {
	case len(pos) > 1:
		return usageError(e, "wh send", fmt.Errorf("send takes at most one WHAT, got %d: %s", len(pos), strings.Join(pos, ", ")))
	case c.zeroMode && code != "":
		return usageError(e, "wh send", fmt.Errorf("-0 and --code cannot be used together"))
	case c.codeLength.v < 1:
		return usageError(e, "wh send", fmt.Errorf("--code-length must be at least 1"))
	case textSet && len(pos) == 1:
		return usageError(e, "wh send", fmt.Errorf("give either --text or a file to send, not both"))
	}
	if _, err := hints.ParseRelayLocation(g.transitHelper); err != nil && len(pos) == 1 {
		return usageError(e, "wh send", fmt.Errorf("bad --transit-helper %q: %v", g.transitHelper, err))
	}
	var src *fileSource
	if len(pos) == 1 {
		src, err = buildFileOffer(e, pos[0], ignoreUnsendable)
		if err != nil {
			return report(e.stderr, err, g.relayURL, false)
		}
		defer src.Close()
	}

	// Unlike Python, which connects first, wh builds the offer (reading
	// stdin, zipping) before connecting, so these errors come before a code
	// is shown.
	if textSet && text == "-" {
		fmt.Fprintln(e.stderr, "Reading text message from stdin..")
		b, err := io.ReadAll(io.LimitReader(e.stdin, maxText+1))
		if err != nil {
			return report(e.stderr, fmt.Errorf("reading stdin: %w", err), g.relayURL, false)
		}
		if len(b) > maxText {
			return report(e.stderr, &usageErr{fmt.Sprintf("text on stdin is larger than %d bytes; send it as a file", maxText)}, g.relayURL, false)
		}
		text = string(b)
	}
	if text == "" && src == nil {
		fmt.Fprint(e.stdout, "Text to send: ")
		line, err := e.readLine()
		if err != nil {
			fmt.Fprintln(e.stdout)
			return report(e.stderr, &usageErr{"no text to send (stdin ended); use --text MESSAGE"}, g.relayURL, false)
		}
		text = line
	}
	if src == nil {
		fmt.Fprintf(e.stderr, "Sending text message (%s)\n", naturalSize(int64(utf8.RuneCountInString(text))))
	}

	s, err := openSession(ctx, e, g)
	if err != nil {
		return report(e.stderr, err, g.relayURL, ctx.Err() != nil)
	}
	err = send(ctx, s, sendOptions{commonOptions: c, code: code, qr: qr}, text, src)
	err = s.close(ctx, err)
	return report(e.stderr, err, g.relayURL, ctx.Err() != nil)
}

// sendOptions are send's options besides the text or file.
type sendOptions struct {
	commonOptions
	code string
	qr   bool // show the code as a QR code too
}

// send runs the sender: text, or src when it is not nil.
func send(ctx context.Context, s *session, o sendOptions, text string, src *fileSource) error {
	e := s.e
	c, code := o.commonOptions, o.code
	if err := s.welcome(ctx); err != nil {
		return err
	}
	other := "wormhole receive"
	if c.verify {
		other = "wormhole receive --verify"
	}
	if c.zeroMode {
		code = "0-"
		other += " -0"
	}
	var err error
	if code != "" {
		err = s.w.SetCode(code)
	} else {
		_, err = s.w.AllocateCode(ctx, c.codeLength.v)
	}
	if err != nil {
		return err
	}
	code, err = s.w.Code(ctx)
	if err != nil {
		return err
	}
	if !c.zeroMode {
		fmt.Fprintf(e.stderr, "Wormhole code is: %s\n", code)
		other += " " + code
	}
	if o.qr {
		uri := wormholeURI(code, s.g.relayURL)
		q, err := renderQR(uri)
		if err != nil {
			return fmt.Errorf("QR code of %s: %w", uri, err)
		}
		fmt.Fprintf(e.stderr, "\n%s%s\n\n", q, uri)
	}
	fmt.Fprintf(e.stderr, "On the other computer, please run:\n\n%s\n\n", other)

	if _, err := s.w.UnverifiedKey(ctx); err != nil {
		return err
	}
	verifier, err := waitNotice(ctx, e, "Key established, waiting for confirmation...", s.w.Verifier)
	if err != nil {
		return err
	}
	if c.verify {
		if err := checkVerifier(ctx, s, verifier); err != nil {
			return err
		}
	}
	s.mark("send offer")
	if src != nil {
		return sendFile(ctx, s, c, src)
	}
	if err := transfer.SendText(ctx, s.w, text); err != nil {
		return err
	}
	fmt.Fprintln(e.stderr, "text message sent")
	return nil
}

// checkVerifier asks the person to compare verifiers (Python's
// _check_verifier); "no" tells the peer and fails the transfer.
func checkVerifier(ctx context.Context, s *session, verifier []byte) error {
	for i := 0; i < 100; i++ {
		fmt.Fprintf(s.e.stdout, "Verifier %s. ok? (yes/no): ", verifierHex(verifier))
		ans, err := s.e.readLine()
		if err != nil {
			fmt.Fprintln(s.e.stdout)
			break // treat a closed stdin as "no"
		}
		switch strings.ToLower(strings.TrimSpace(ans)) {
		case "yes":
			return nil
		case "no":
			i = 100
		}
	}
	if err := transfer.SendError(ctx, s.w, transfer.ErrTextVerifierRejected); err != nil {
		return err
	}
	return &transferError{transfer.ErrTextVerifierRejected}
}

// naturalSize formats a byte count like Python humanize.naturalsize.
func naturalSize(n int64) string {
	if n == 1 {
		return "1 Byte"
	}
	if n < 1000 {
		return fmt.Sprintf("%d Bytes", n)
	}
	v := float64(n)
	for _, unit := range []string{"kB", "MB", "GB", "TB", "PB", "EB"} {
		v /= 1000
		if v < 1000 {
			return fmt.Sprintf("%.1f %s", v, unit)
		}
	}
	return fmt.Sprintf("%.1f ZB", v/1000)
}
