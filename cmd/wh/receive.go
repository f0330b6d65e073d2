package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/term"

	"github.com/wormhole-go/wormhole/cmd/wh/internal/codeinput"
	"github.com/wormhole-go/wormhole/hints"
	"github.com/wormhole-go/wormhole/transfer"
	"github.com/wormhole-go/wormhole/transit"
)

const receiveHelp = `Usage: wh receive [OPTIONS] [CODE]

  Receive a text message, file, or directory (from 'wormhole send').

  Give the CODE the sender read to you. Without a CODE, wh asks for it; on a
  terminal, <Tab> completes the nameplate (the number) from the server's list
  and then the words. Text is printed on stdout; everything else on stderr.
  For a file or directory, wh shows its name and size and asks "ok? (Y/n)"
  (--accept-file skips the question); it never overwrites an existing file
  unless you name it with --output-file.

Examples:
  wh receive 7-guitarist-revenge
  wh receive                       # type 7<Tab>gu<Tab>re<Tab><Enter>
  echo 7-guitarist-revenge | wh receive
  wh receive --verify 7-guitarist-revenge
  wh receive --accept-file -o copy.pdf 7-guitarist-revenge

Options:
  --code CODE              the code (same as giving CODE as an argument)
  -t, --only-text          refuse file transfers, only accept text transfers
  --accept-file            accept file transfer without asking for confirmation
  -o, --output-file NAME   the file or directory to create, overriding the
                           name suggested by the sender
` + commonHelp

func runReceive(ctx context.Context, e *env, g globals, args []string) int {
	fs := newFlagSet("wh receive")
	g.register(fs)
	var o receiveOptions
	o.register(fs)
	c := &o.commonOptions
	var code string
	fs.StringVar(&code, "code", "", "")
	fs.BoolVar(&o.onlyText, "only-text", false, "")
	fs.BoolVar(&o.onlyText, "t", false, "")
	fs.BoolVar(&o.acceptFile, "accept-file", false, "")
	fs.StringVar(&o.outputFile, "output-file", "", "")
	fs.StringVar(&o.outputFile, "o", "", "")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return usageError(e, "wh receive", err)
	}
	if c.help {
		fmt.Fprint(e.stdout, receiveHelp)
		return exitOK
	}
	switch {
	case len(pos) > 1:
		return usageError(e, "wh receive", fmt.Errorf("pass either no code or just one code; you passed %d: %s", len(pos), strings.Join(pos, ", ")))
	case len(pos) == 1 && code != "" && pos[0] != code:
		return usageError(e, "wh receive", fmt.Errorf("the code was given twice (%q and %q)", code, pos[0]))
	case c.zeroMode && (code != "" || len(pos) == 1):
		return usageError(e, "wh receive", fmt.Errorf("-0 and a code cannot be used together"))
	}
	if len(pos) == 1 {
		code = pos[0]
	}
	if _, err := hints.ParseRelayLocation(g.transitHelper); err != nil {
		return usageError(e, "wh receive", fmt.Errorf("bad --transit-helper %q: %v", g.transitHelper, err))
	}

	s, err := openSession(ctx, e, g)
	if err != nil {
		return report(e.stderr, err, g.relayURL, ctx.Err() != nil)
	}
	err = receive(ctx, s, o, code)
	err = s.close(ctx, err)
	return report(e.stderr, err, g.relayURL, ctx.Err() != nil)
}

func receive(ctx context.Context, s *session, o receiveOptions, code string) error {
	c := o.commonOptions
	e := s.e
	if err := s.welcome(ctx); err != nil {
		return err
	}
	if c.zeroMode {
		code = "0-"
	}
	if code != "" {
		if err := s.w.SetCode(code); err != nil {
			return err
		}
	} else if err := inputCode(ctx, s); err != nil {
		return err
	}
	if _, err := s.w.Code(ctx); err != nil {
		return err
	}
	if _, err := waitNotice(ctx, e, "Waiting for sender...", s.w.UnverifiedKey); err != nil {
		return err
	}
	verifier, err := waitNotice(ctx, e, "Key established, waiting for confirmation...", s.w.Verifier)
	if err != nil {
		return err
	}
	if c.verify {
		fmt.Fprintf(e.stderr, "Verifier %s.\n", verifierHex(verifier))
	}

	var t *transit.Transit
	defer func() {
		if t != nil {
			t.Close()
		}
	}()
	onTransit := func(peer *transfer.Transit) error {
		if o.onlyText {
			return nil
		}
		var err error
		if t, err = transitFor(s, c, false); err != nil {
			return err
		}
		t.AddPeerHints(peerHints(peer))
		tm, err := transitMessage(ctx, t)
		if err != nil {
			return err
		}
		return transfer.SendTransit(ctx, s.w, tm)
	}
	offer, err := transfer.ReceiveOffer(ctx, s.w, onTransit)
	if err != nil {
		var re *transfer.RemoteError
		if errors.As(err, &re) { // Python: TransferError(them_d["error"])
			return &transferError{re.Message}
		}
		return err
	}
	switch offer.Kind() {
	case transfer.KindText:
		s.mark("print")
		fmt.Fprintln(e.stdout, *offer.Message)
		return transfer.AcceptText(ctx, s.w)
	case transfer.KindFile, transfer.KindDirectory:
		if o.onlyText {
			fmt.Fprintf(e.stderr, "The sender offered a %s, but --only-text was given.\n", offer.Kind())
			err = &respondError{transfer.ErrTextRejected}
		} else {
			err = receiveFile(ctx, s, o, offer, t)
		}
	default:
		fmt.Fprintf(e.stderr, "I don't know what they're offering\n\nOffer details: %s\n", offer.Raw)
		err = &respondError{transfer.ErrTextUnknownOffer}
	}
	var re *respondError
	if errors.As(err, &re) {
		if serr := transfer.SendError(ctx, s.w, re.response); serr != nil {
			return serr
		}
		return &transferError{re.response}
	}
	return err
}

// inputCode asks the person for the code: with the Tab-completing line
// editor on a terminal, else one line from stdin.
func inputCode(ctx context.Context, s *session) error {
	e := s.e
	ci, err := s.w.InputCode()
	if err != nil {
		return err
	}
	comp := codeinput.NewCompleter(inputHelper{ci})
	const prompt = "Enter receive wormhole code: "
	if e.stdinFd < 0 {
		fmt.Fprint(e.stdout, prompt)
		line, err := e.readLine()
		if err != nil {
			fmt.Fprintln(e.stdout)
			return &usageErr{"no code given (stdin ended)"}
		}
		if err := comp.Finish(ctx, strings.TrimSpace(line)); err != nil {
			return err
		}
	} else {
		old, err := term.MakeRaw(e.stdinFd)
		if err != nil {
			return fmt.Errorf("setting the terminal to raw mode: %w", err)
		}
		ed := &codeinput.Editor{In: e.stdin, Out: e.stdout, Prompt: prompt, C: comp}
		_, err = ed.ReadCode(ctx)
		_ = term.Restore(e.stdinFd, old)
		if errors.Is(err, io.EOF) {
			return &usageErr{"no code given"}
		}
		if err != nil {
			return err
		}
	}
	if !comp.UsedCompletion {
		fmt.Fprintln(e.stderr, " (note: you can use <Tab> to complete words)")
	}
	return nil
}

func isTerminal(fd int) bool { return term.IsTerminal(fd) }
