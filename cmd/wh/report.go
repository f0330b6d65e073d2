package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	wormhole "github.com/wormhole-go/wormhole"
	"github.com/wormhole-go/wormhole/cmd/wh/internal/codeinput"
	"github.com/wormhole-go/wormhole/transfer"
)

// The explanations Python prints: the docstrings of wormhole/errors.py.
// Those that start with a newline give Python's "ERROR:  " (two spaces)
// after textwrap.fill, hence the leading space here.
const (
	docWrongPassword = ` Key confirmation failed. Either you or your correspondent typed the code wrong, or a would-be man-in-the-middle attacker guessed incorrectly. You could try again, giving both your correspondent and the attacker another chance.`
	docKeyFormat     = ` The key you entered contains spaces or was missing a dash. Magic-wormhole expects the numerical nameplate and the code words to be separated by dashes. Please reenter the key you were given separating the words with dashes.`
	docWelcome       = ` The relay server told us to signal an error, probably because our version is too old to possibly work. The server said:`
	docServerConn    = `We had a problem connecting to the relay server:`
	docUnsendable    = ` A file you wanted to send couldn't be read, maybe because it's not a file, or because it's a symlink that points to something that doesn't exist.  To ignore this kind of error, you can run wormhole with the --ignore-unsendable-files flag.`
)

// transferError is a failure of the transfer itself (Python's
// TransferError): printed as "TransferError: …", exit 1.
type transferError struct{ msg string }

func (e *transferError) Error() string { return e.msg }

// usageErr is a usage problem found after flag parsing (exit 2).
type usageErr struct{ msg string }

func (e *usageErr) Error() string { return e.msg }

// fill wraps text at width columns like Python's textwrap.fill: each
// whitespace character becomes a space, runs of spaces inside a line are
// kept, and lines break between words (dropping the spaces there).
func fill(text string, width int) string {
	text = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return ' '
		}
		return r
	}, text)
	// tokens alternate between words and runs of spaces
	var tokens []string
	for len(text) > 0 {
		i := 0
		space := text[0] == ' '
		for i < len(text) && (text[i] == ' ') == space {
			i++
		}
		tokens = append(tokens, text[:i])
		text = text[i:]
	}
	var lines []string
	var cur string
	for _, tok := range tokens {
		if strings.TrimSpace(tok) == "" {
			if cur != "" {
				cur += tok
			}
			continue
		}
		if cur != "" && len(cur)+len(tok) > width {
			lines = append(lines, strings.TrimRight(cur, " "))
			cur = ""
		}
		cur += tok
	}
	if c := strings.TrimRight(cur, " "); c != "" {
		lines = append(lines, c)
	}
	return strings.Join(lines, "\n")
}

// report prints err the way Python's _dispatch_command does and returns
// the exit code.
func report(w io.Writer, err error, relayURL string, interrupted bool) int {
	var (
		kfe  *wormhole.KeyFormatError
		we   *wormhole.WelcomeError
		se   *wormhole.ServerError
		te   *transferError
		ue   *usageErr
		re   *transfer.RemoteError
		ae   *transfer.AnswerError
		uoe  *transfer.UnexpectedOfferError
		aine *codeinput.AlreadyInputNameplateError
		une  *unsendableError
	)
	switch {
	case err == nil:
		return exitOK
	case interrupted || errors.Is(err, codeinput.ErrInterrupted):
		fmt.Fprintln(w, "Interrupted.")
		return exitInterrupted
	case errors.Is(err, wormhole.ErrWrongPassword):
		fmt.Fprintln(w, fill("ERROR: "+docWrongPassword, 70))
		return exitWrongCode
	case errors.As(err, &kfe), errors.Is(err, codeinput.ErrIncomplete), errors.As(err, &aine):
		fmt.Fprintf(w, "%s\n\n%s\n", fill("ERROR: "+docKeyFormat, 70), errText(err))
		return exitUsage
	case errors.As(err, &ue):
		fmt.Fprintf(w, "Error: %s\n", ue.msg)
		return exitUsage
	case errors.As(err, &we):
		fmt.Fprintf(w, "%s\n\n%s\n", fill("ERROR: "+docWelcome, 70), we.Message)
		return exitServer
	case errors.Is(err, wormhole.ErrServerConnection):
		fmt.Fprintf(w, "%s\n(relay URL was %s)\n%v\n", fill("ERROR: "+docServerConn, 70), relayURL, err)
		return exitServer
	case errors.As(err, &se):
		fmt.Fprintf(w, "ERROR: the mailbox server (%s) reported an error: %s\n", relayURL, se.Message)
		return exitServer
	case errors.As(err, &une):
		fmt.Fprintf(w, "%s\n\n%s\n", fill("ERROR: "+docUnsendable, 70), une.msg)
		return exitFailed
	case errors.As(err, &te):
		fmt.Fprintf(w, "TransferError: %s\n", te.msg)
		return exitFailed
	case errors.As(err, &re), errors.As(err, &ae), errors.As(err, &uoe), errors.Is(err, transfer.ErrProtocol):
		fmt.Fprintf(w, "TransferError: %v\n", err)
		return exitFailed
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintln(w, "Interrupted.")
		return exitInterrupted
	}
	fmt.Fprintf(w, "ERROR: %v\n", err)
	return exitFailed
}

// errText is the message of the innermost error we know how to show.
func errText(err error) string {
	var kfe *wormhole.KeyFormatError
	if errors.As(err, &kfe) {
		return kfe.Error()
	}
	return err.Error()
}
