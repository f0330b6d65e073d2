package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"

	wormhole "github.com/wormhole-go/wormhole"
)

// Defaults, as in Python's wormhole/cli/public_relay.py and cmd_send.py.
const (
	defaultRelayURL      = "ws://relay.magic-wormhole.io:4000/v1"
	defaultTransitHelper = "tcp:transit.magic-wormhole.io:4001"
	defaultAppID         = "lothar.com/wormhole/text-or-file-xfer"
)

// cliVersion is wh's version (the library's).
const cliVersion = wormhole.Version

// globals are the options Python takes on the top-level "wormhole"
// command. wh also accepts them after the subcommand name.
type globals struct {
	appID         string
	relayURL      string
	transitHelper string
	dumpTiming    string
}

func defaultGlobals(getenv func(string) string) globals {
	g := globals{appID: "", relayURL: defaultRelayURL, transitHelper: defaultTransitHelper}
	if v := getenv("WORMHOLE_RELAY_URL"); v != "" {
		g.relayURL = v
	}
	if v := getenv("WORMHOLE_TRANSIT_HELPER"); v != "" {
		g.transitHelper = v
	}
	return g
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.appID, "appid", g.appID, "")
	fs.StringVar(&g.relayURL, "relay-url", g.relayURL, "")
	fs.StringVar(&g.transitHelper, "transit-helper", g.transitHelper, "")
	fs.StringVar(&g.dumpTiming, "dump-timing", g.dumpTiming, "")
}

// appIDOrDefault is the application id to use.
func (g *globals) appIDOrDefault() string {
	if g.appID != "" {
		return g.appID
	}
	return defaultAppID
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseInterleaved parses flags that may come before, between or after
// positional arguments (as Python's click allows); "--" ends the flags.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for i := 0; i <= len(args); i++ { // bounded: every round consumes an argument
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		consumed := len(args) - fs.NArg()
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, fs.Args()...), nil
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return pos, nil
}

// usageError reports a flag or argument problem (exit 2).
func usageError(e *env, cmd string, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	fmt.Fprintf(e.stderr, "Error: %v\nRun '%s --help' for usage.\n", err, cmd)
	return exitUsage
}

// intFlag is an int flag that remembers whether it was set.
type intFlag struct {
	v   int
	set bool
}

func (f *intFlag) String() string { return strconv.Itoa(f.v) }
func (f *intFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%q is not a number", s)
	}
	f.v, f.set = n, true
	return nil
}

// commonOptions are Python's CommonArgs (send and receive).
type commonOptions struct {
	zeroMode     bool
	codeLength   intFlag
	verify       bool
	hideProgress bool
	noListen     bool
	listen       bool
	help         bool
}

func (c *commonOptions) register(fs *flag.FlagSet) {
	c.codeLength.v = 2
	fs.BoolVar(&c.zeroMode, "0", false, "")
	fs.Var(&c.codeLength, "code-length", "")
	fs.Var(&c.codeLength, "c", "")
	fs.BoolVar(&c.verify, "verify", false, "")
	fs.BoolVar(&c.verify, "v", false, "")
	fs.BoolVar(&c.hideProgress, "hide-progress", false, "")
	fs.BoolVar(&c.listen, "listen", true, "")
	fs.BoolVar(&c.noListen, "no-listen", false, "")
	fs.BoolVar(&c.help, "help", false, "")
	fs.BoolVar(&c.help, "h", false, "")
}

const commonHelp = `  -0                     enable no-code anything-goes mode (code "0-")
  -c, --code-length N    length of code (in bytes/words) (default 2)
  -v, --verify           display verification string (and wait for approval)
  --hide-progress        suppress progress-bar display
  --listen/--no-listen   (debug) don't open a listening socket for Transit
  --relay-url URL        mailbox server [env WORMHOLE_RELAY_URL]
  --transit-helper tcp:HOST:PORT
                         transit relay [env WORMHOLE_TRANSIT_HELPER]
  --appid APPID          application id (both sides must use the same)
  --dump-timing FILE     (debug) write timing data to FILE as JSON
  -h, --help             show this help
`
