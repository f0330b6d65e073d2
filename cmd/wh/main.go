// Command wh is a magic-wormhole client, compatible with the Python
// `wormhole` command (magic-wormhole 0.12+) and with wormhole-william.
//
//	wh send --text "hello"        # prints a code like 7-opulent-preclude
//	wh receive 7-opulent-preclude # prints "hello"
//	wh send report.pdf            # files and directories too
//	wh serve                      # a mailbox server and transit relay
//
// Run `wh --help` or `wh help COMMAND` for details. Exit codes:
//
//	0    success
//	1    the transfer failed or was rejected (by the peer or by you)
//	2    usage error: bad flags or arguments, malformed code
//	3    wrong code: key confirmation failed (typo, or an attacker guessed)
//	4    mailbox server problem: cannot connect, server refused or errored
//	130  interrupted (Ctrl-C)
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitWrongCode   = 3
	exitServer      = 4
	exitInterrupted = 130
)

// env is everything a command may touch outside itself. Tests build their
// own; main builds one from the process.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// stdinFd is stdin's file descriptor when it is a terminal, else -1.
	stdinFd int
	// stderrTTY: stderr is a terminal (the progress line is redrawn there).
	stderrTTY bool
	// slowNotice is how long a wait lasts before a "Waiting for …" notice
	// (Python: 1 s).
	slowNotice time.Duration

	lines *bufio.Reader // lazily wraps stdin for line input
}

// readLine reads one line from stdin, without the line ending.
func (e *env) readLine() (string, error) {
	if e.lines == nil {
		e.lines = bufio.NewReader(e.stdin)
	}
	s, err := e.lines.ReadString('\n')
	if err != nil && (err != io.EOF || s == "") {
		return "", err
	}
	return strings.TrimRight(s, "\r\n"), nil
}

// command is one subcommand.
type command struct {
	name    string
	aliases []string
	summary string
	run     func(ctx context.Context, e *env, g globals, args []string) int
}

// commands lists the subcommands; adding one is adding an entry here.
func commands() []command {
	cmds := []command{
		{name: "send", aliases: []string{"tx"}, summary: "Send a text message, file, or directory", run: runSend},
		{name: "receive", aliases: []string{"rx", "recv", "recieve"}, summary: "Receive a text message, file, or directory (from 'wormhole send')", run: runReceive},
		{name: "serve", summary: "Run a mailbox server and a transit relay (testing, private use)", run: func(ctx context.Context, e *env, _ globals, args []string) int {
			return runServe(ctx, args, e.stdout, e.stderr)
		}},
		{name: "help", summary: "Show help for wh or for one command", run: nil}, // handled by dispatch
	}
	sort.SliceStable(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	return cmds
}

func findCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
		for _, a := range c.aliases {
			if a == name {
				return c, true
			}
		}
	}
	return command{}, false
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fd := -1
	if isTerminal(int(os.Stdin.Fd())) {
		fd = int(os.Stdin.Fd())
	}
	e := &env{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		getenv: os.Getenv, stdinFd: fd, slowNotice: time.Second,
		stderrTTY: isTerminal(int(os.Stderr.Fd())),
	}
	code := run(ctx, e, os.Args[1:])
	stop()
	os.Exit(code)
}

// run parses the global flags, then dispatches to the subcommand.
func run(ctx context.Context, e *env, args []string) int {
	g := defaultGlobals(e.getenv)
	fs := newFlagSet("wh")
	g.register(fs)
	var showVersion, showHelp bool
	fs.BoolVar(&showVersion, "version", false, "")
	fs.BoolVar(&showHelp, "help", false, "")
	fs.BoolVar(&showHelp, "h", false, "")
	if err := fs.Parse(args); err != nil {
		return usageError(e, "wh", err)
	}
	switch {
	case showVersion:
		fmt.Fprintf(e.stdout, "wh %s (wormhole-go; speaks magic-wormhole file-transfer v1)\n", cliVersion)
		return exitOK
	case showHelp:
		topUsage(e.stdout)
		return exitOK
	}
	rest := fs.Args()
	if len(rest) == 0 {
		topUsage(e.stderr)
		return exitUsage
	}
	name := rest[0]
	if name == "help" {
		if len(rest) > 1 {
			if c, ok := findCommand(rest[1]); ok && c.run != nil {
				return c.run(ctx, e, g, []string{"--help"})
			}
			fmt.Fprintf(e.stderr, "Error: unknown command %q\n", rest[1])
			return exitUsage
		}
		topUsage(e.stdout)
		return exitOK
	}
	c, ok := findCommand(name)
	if !ok || c.run == nil {
		fmt.Fprintf(e.stderr, "Error: unknown command %q\nRun 'wh --help' for usage.\n", name)
		return exitUsage
	}
	return c.run(ctx, e, g, rest[1:])
}

func topUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: wh [GLOBAL OPTIONS] COMMAND [ARGS]...

  Create a Magic Wormhole and communicate through it.

  Wormholes are created by speaking the same magic CODE in two different
  places at the same time. Wormholes are secure against anyone who doesn't
  use the same code. wh talks to the Python 'wormhole' tool and to
  wormhole-william.

Examples:
  wh send --text "the password is hunter2"   # prints a code, e.g. 7-guitarist-revenge
  wh receive 7-guitarist-revenge             # on the other computer
  wh receive                                 # type the code, <Tab> completes it

Commands:
`)
	for _, c := range commands() {
		names := c.name
		if len(c.aliases) > 0 {
			names += " (" + strings.Join(c.aliases, ", ") + ")"
		}
		fmt.Fprintf(w, "  %-32s %s\n", names, c.summary)
	}
	fmt.Fprint(w, `
Global options (also accepted after the command):
  --relay-url URL          mailbox (rendezvous) server to use [env WORMHOLE_RELAY_URL]
                           (default `+defaultRelayURL+`)
  --transit-helper tcp:HOST:PORT
                           transit relay to use [env WORMHOLE_TRANSIT_HELPER]
                           (default `+defaultTransitHelper+`)
  --appid APPID            application id (default `+defaultAppID+`)
  --dump-timing FILE.json  (debug) write timing data to FILE.json
  --version                print the version and exit
  -h, --help               show this help

Exit codes: 0 ok, 1 transfer failed or rejected, 2 usage error or malformed
code, 3 wrong code (key confirmation failed), 4 mailbox server problem,
130 interrupted.

Run 'wh COMMAND --help' for a command's options.
`)
}
