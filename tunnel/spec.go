package tunnel

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Direction says which side of a forward listens.
type Direction int

const (
	// Local is ssh's -L: listen here, the peer connects.
	Local Direction = iota
	// Remote is ssh's -R: the peer listens, connect here.
	Remote
)

func (d Direction) String() string {
	if d == Remote {
		return "-R"
	}
	return "-L"
}

// ErrSpec is wrapped by every forward-spec parse error.
var ErrSpec = errors.New("tunnel: bad forward spec")

// DefaultBind is where a Local forward listens when the spec names no bind
// address (as ssh without GatewayPorts).
const DefaultBind = "127.0.0.1"

// Forward is one -L or -R forward.
//
// For Local, this side listens on Bind:ListenPort and the peer connects to
// Host:HostPort; the peer only does so if its own flags name the same
// forward (its -R). For Remote, the peer listens on ListenPort (which it
// must allow with its own -L) and this side connects to Host:HostPort.
type Forward struct {
	Dir Direction
	// Name is fowl's "unique-name" of the service; both peers must use the
	// same one. Default: "<listenport>:<host>:<hostport>".
	Name string
	// Bind is the listen address (Local only); "" means DefaultBind, "*"
	// means all interfaces.
	Bind string
	// ListenPort is the listening port; 0 lets the listening side choose.
	ListenPort int
	// Host and HostPort are the target the connecting side dials.
	Host     string
	HostPort int
}

// Target is Host:HostPort.
func (f Forward) Target() string { return net.JoinHostPort(f.Host, strconv.Itoa(f.HostPort)) }

// ListenAddr is the address a Local forward listens on.
func (f Forward) ListenAddr() string {
	b := f.Bind
	switch b {
	case "":
		b = DefaultBind
	case "*":
		b = ""
	}
	return net.JoinHostPort(b, strconv.Itoa(f.ListenPort))
}

// String is the canonical spec, parseable by ParseForward.
func (f Forward) String() string {
	var sb strings.Builder
	if f.Name != defaultName(f.ListenPort, f.Host, f.HostPort) {
		sb.WriteString(f.Name + "=")
	}
	if f.Bind != "" {
		sb.WriteString(bracket(f.Bind) + ":")
	}
	fmt.Fprintf(&sb, "%d:%s:%d", f.ListenPort, bracket(f.Host), f.HostPort)
	return sb.String()
}

func bracket(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

func defaultName(port int, host string, hostport int) string {
	return fmt.Sprintf("%d:%s:%d", port, bracket(host), hostport)
}

// ParseForward parses an ssh-style spec:
//
//	[NAME=][BIND:]PORT:HOST:HOSTPORT
//
// BIND and HOST may be IPv6 literals in brackets ([::1]); BIND may be "*"
// (all interfaces). PORT may be 0 (the listening side picks a free port).
// NAME (letters, digits, ".-_~+", at most 64) is the service name shared
// with the peer; it is required to pair with a fowl peer, whose names
// cannot contain ':'. A Remote spec may not name BIND: the listening peer
// chooses its own address.
func ParseForward(dir Direction, spec string) (Forward, error) {
	f := Forward{Dir: dir}
	bad := func(format string, a ...any) (Forward, error) {
		return Forward{}, fmt.Errorf("%w %s %q: %s", ErrSpec, dir, spec, fmt.Sprintf(format, a...))
	}
	rest := spec
	if i := strings.IndexByte(rest, '='); i >= 0 {
		f.Name = rest[:i]
		rest = rest[i+1:]
		if err := validName(f.Name); err != nil {
			return bad("%v", err)
		}
	}
	parts, err := splitSpec(rest)
	if err != nil {
		return bad("%v", err)
	}
	switch len(parts) {
	case 3:
	case 4:
		if dir == Remote {
			return bad("a -R forward cannot choose the peer's bind address (the listening side picks its own with -L)")
		}
		f.Bind = parts[0]
		if f.Bind == "" {
			f.Bind = "*" // ssh: an empty bind address means all interfaces
		}
		if f.Bind != "*" && f.Bind != "localhost" && net.ParseIP(f.Bind) == nil {
			return bad("bind address %q is not an IP address, localhost or *", f.Bind)
		}
		parts = parts[1:]
	default:
		if len(parts) > 4 {
			return bad("too many ':' (IPv6 addresses go in brackets: [::1])")
		}
		return bad("want [BIND:]PORT:HOST:HOSTPORT")
	}
	if f.ListenPort, err = parsePort(parts[0], true); err != nil {
		return bad("listen port: %v", err)
	}
	f.Host = parts[1]
	if f.Host == "" {
		return bad("empty host")
	}
	if strings.ContainsAny(f.Host, " \t/\\@") || len(f.Host) > 253 {
		return bad("host %q is not a host name or IP address", f.Host)
	}
	if f.HostPort, err = parsePort(parts[2], false); err != nil {
		return bad("host port: %v", err)
	}
	if f.Name == "" {
		f.Name = defaultName(f.ListenPort, f.Host, f.HostPort)
	}
	return f, nil
}

func validName(n string) error {
	if n == "" || len(n) > 64 {
		return errors.New("name must be 1 to 64 characters")
	}
	for _, c := range n {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.ContainsRune(".-_~+", c):
		default:
			return fmt.Errorf("name %q: character %q not allowed", n, c)
		}
	}
	return nil
}

// splitSpec splits on ':' outside square brackets and removes the
// brackets, which must enclose a whole field holding an IPv6 literal.
func splitSpec(s string) ([]string, error) {
	var parts []string
	for len(parts) < 5 {
		if strings.HasPrefix(s, "[") {
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return nil, errors.New("unclosed '['")
			}
			inner := s[1:end]
			ip := net.ParseIP(inner)
			if ip == nil || !strings.Contains(inner, ":") {
				return nil, fmt.Errorf("[%s] is not an IPv6 address", inner)
			}
			parts = append(parts, inner)
			s = s[end+1:]
			if s == "" {
				return parts, nil
			}
			if s[0] != ':' {
				return nil, errors.New("']' must be followed by ':'")
			}
			s = s[1:]
			continue
		}
		i := strings.IndexByte(s, ':')
		if i < 0 {
			parts = append(parts, s)
			return parts, nil
		}
		if strings.ContainsAny(s[:i], "[]") {
			return nil, errors.New("brackets must enclose a whole field")
		}
		parts = append(parts, s[:i])
		s = s[i+1:]
	}
	return nil, errors.New("too many ':' (IPv6 addresses go in brackets: [::1])")
}

func parsePort(s string, zeroOK bool) (int, error) {
	if s == "" || len(s) > 5 {
		return 0, fmt.Errorf("%q is not a port", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 || (n == 0 && !zeroOK) || s[0] == '+' {
		return 0, fmt.Errorf("%q is not a port", s)
	}
	return n, nil
}
