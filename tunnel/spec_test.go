package tunnel

import (
	"errors"
	"strings"
	"testing"
)

func TestParseForward(t *testing.T) {
	cases := []struct {
		dir  Direction
		spec string
		want Forward // Dir filled from dir
		addr string  // ListenAddr for Local
	}{
		{Local, "8080:localhost:80", Forward{Name: "8080:localhost:80", ListenPort: 8080, Host: "localhost", HostPort: 80}, "127.0.0.1:8080"},
		{Local, "0:127.0.0.1:22", Forward{Name: "0:127.0.0.1:22", Host: "127.0.0.1", HostPort: 22}, "127.0.0.1:0"},
		{Local, "127.0.0.1:8080:example.com:443", Forward{Name: "8080:example.com:443", Bind: "127.0.0.1", ListenPort: 8080, Host: "example.com", HostPort: 443}, "127.0.0.1:8080"},
		{Local, "[::1]:8080:[::1]:80", Forward{Name: "8080:[::1]:80", Bind: "::1", ListenPort: 8080, Host: "::1", HostPort: 80}, "[::1]:8080"},
		{Local, "[::1]:8080:localhost:80", Forward{Name: "8080:localhost:80", Bind: "::1", ListenPort: 8080, Host: "localhost", HostPort: 80}, "[::1]:8080"},
		{Local, "8080:[2001:db8::1]:80", Forward{Name: "8080:[2001:db8::1]:80", ListenPort: 8080, Host: "2001:db8::1", HostPort: 80}, "127.0.0.1:8080"},
		{Local, ":8080:localhost:80", Forward{Name: "8080:localhost:80", Bind: "*", ListenPort: 8080, Host: "localhost", HostPort: 80}, ":8080"},
		{Local, "*:8080:localhost:80", Forward{Name: "8080:localhost:80", Bind: "*", ListenPort: 8080, Host: "localhost", HostPort: 80}, ":8080"},
		{Local, "web=8080:localhost:80", Forward{Name: "web", ListenPort: 8080, Host: "localhost", HostPort: 80}, "127.0.0.1:8080"},
		{Local, "chat=[::]:0:[::1]:6667", Forward{Name: "chat", Bind: "::", Host: "::1", HostPort: 6667}, "[::]:0"},
		{Remote, "8080:localhost:80", Forward{Name: "8080:localhost:80", ListenPort: 8080, Host: "localhost", HostPort: 80}, ""},
		{Remote, "web=0:[::1]:3000", Forward{Name: "web", Host: "::1", HostPort: 3000}, ""},
	}
	for _, c := range cases {
		f, err := ParseForward(c.dir, c.spec)
		if err != nil {
			t.Errorf("%s %q: %v", c.dir, c.spec, err)
			continue
		}
		c.want.Dir = c.dir
		if f != c.want {
			t.Errorf("%s %q:\n got %+v\nwant %+v", c.dir, c.spec, f, c.want)
		}
		if c.addr != "" && f.ListenAddr() != c.addr {
			t.Errorf("%q: ListenAddr %q, want %q", c.spec, f.ListenAddr(), c.addr)
		}
		// String round-trips.
		g, err := ParseForward(c.dir, f.String())
		if err != nil || g != f {
			t.Errorf("%q: String %q re-parses to %+v, %v", c.spec, f.String(), g, err)
		}
	}
}

func TestParseForwardErrors(t *testing.T) {
	cases := []struct {
		dir  Direction
		spec string
		msg  string
	}{
		{Local, "", "want [BIND:]PORT"},
		{Local, "8080", "want [BIND:]PORT"},
		{Local, "8080:localhost", "want [BIND:]PORT"},
		{Local, "a:b:c:d:e", "too many"},
		{Local, "::1:8080:localhost:80", "too many"},
		{Local, "8080:::1:80", "too many"},
		{Local, "70000:localhost:80", "not a port"},
		{Local, "8080:localhost:0", "not a port"},
		{Local, "8080:localhost:-1", "not a port"},
		{Local, "+80:localhost:80", "not a port"},
		{Local, "8080::80", "empty host"},
		{Local, "[::1:8080:localhost:80", "unclosed"},
		{Local, "[localhost]:8080:localhost:80", "not an IPv6"},
		{Local, "[1.2.3.4]:8080:localhost:80", "not an IPv6"},
		{Local, "[::1]8080:localhost:80", "followed by ':'"},
		{Local, "x[::1]:8080:localhost:80", "whole field"},
		{Local, "example.com:8080:localhost:80", "bind address"},
		{Local, "bad name=8080:localhost:80", "not allowed"},
		{Local, "=8080:localhost:80", "1 to 64"},
		{Local, "a:b=8080:localhost:80", "not allowed"},
		{Local, "8080:local host:80", "not a host"},
		{Remote, "127.0.0.1:8080:localhost:80", "bind address"},
	}
	for _, c := range cases {
		_, err := ParseForward(c.dir, c.spec)
		if err == nil || !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s %q: got %v, want error containing %q", c.dir, c.spec, err, c.msg)
		}
	}
}

func FuzzParseForward(f *testing.F) {
	for _, s := range []string{
		"8080:localhost:80", "[::1]:8080:[::1]:80", "web=0:127.0.0.1:22", "*:1:a:2",
		"[::1", "[]:1:2:3", "a=b=c:1:d:2", ":::::", "[::ffff:1.2.3.4]:1:h:2",
	} {
		f.Add(uint8(0), s)
		f.Add(uint8(1), s)
	}
	f.Fuzz(func(t *testing.T, d uint8, spec string) {
		dir := Direction(d & 1)
		fw, err := ParseForward(dir, spec)
		if err != nil {
			if !errors.Is(err, ErrSpec) {
				t.Fatalf("error not ErrSpec: %v", err)
			}
			return
		}
		if fw.HostPort < 1 || fw.HostPort > 65535 || fw.ListenPort < 0 || fw.ListenPort > 65535 || fw.Host == "" || fw.Name == "" {
			t.Fatalf("accepted bad forward %+v from %q", fw, spec)
		}
		g, err := ParseForward(dir, fw.String())
		if err != nil || g != fw {
			t.Fatalf("%q: String %q re-parses to %+v, %v; want %+v", spec, fw.String(), g, err, fw)
		}
	})
}
