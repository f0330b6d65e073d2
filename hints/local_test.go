package hints

import (
	"context"
	"net"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func fakeIfaces(addrs map[string][]string, down ...string) AddrOptions {
	return AddrOptions{
		Interfaces: func() ([]net.Interface, error) {
			var out []net.Interface
			for _, n := range []string{"lo", "eth0", "wlan0", "dock0"} {
				if _, ok := addrs[n]; !ok {
					continue
				}
				fl := net.FlagUp
				for _, dn := range down {
					if dn == n {
						fl = 0
					}
				}
				out = append(out, net.Interface{Name: n, Flags: fl})
			}
			return out, nil
		},
		InterfaceAddrs: func(i net.Interface) ([]net.Addr, error) {
			var out []net.Addr
			for _, s := range addrs[i.Name] {
				_, n, err := net.ParseCIDR(s)
				if err != nil {
					panic(err)
				}
				ip, _, _ := net.ParseCIDR(s)
				n.IP = ip
				out = append(out, n)
			}
			return out, nil
		},
	}
}

func TestLocalAddresses(t *testing.T) {
	all := map[string][]string{
		"lo":    {"127.0.0.1/8", "::1/128"},
		"eth0":  {"192.168.1.5/24", "fe80::1/64", "2001:db8::5/64"},
		"wlan0": {"10.0.0.7/8"},
		"dock0": {"172.17.0.1/16"},
	}
	for _, tc := range []struct {
		name string
		o    AddrOptions
		want []string
	}{
		{"default", fakeIfaces(all), []string{"192.168.1.5", "10.0.0.7", "172.17.0.1", "2001:db8::5"}},
		{"down iface skipped", fakeIfaces(all, "dock0"), []string{"192.168.1.5", "10.0.0.7", "2001:db8::5"}},
		{"loopback only when alone", fakeIfaces(map[string][]string{"lo": all["lo"], "eth0": {"fe80::1/64"}}), []string{"127.0.0.1", "::1"}},
		{"no ipv6", func() AddrOptions { o := fakeIfaces(all); o.NoIPv6 = true; return o }(), []string{"192.168.1.5", "10.0.0.7", "172.17.0.1"}},
		{"include loopback", func() AddrOptions { o := fakeIfaces(all, "dock0", "wlan0"); o.IncludeLoopback = true; return o }(),
			[]string{"192.168.1.5", "127.0.0.1", "2001:db8::5", "::1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LocalAddresses(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, a := range got {
				s = append(s, a.String())
			}
			if !reflect.DeepEqual(s, tc.want) {
				t.Fatalf("got %v want %v", s, tc.want)
			}
		})
	}
	// The real machine: never empty, never link-local.
	got, err := LocalAddresses(AddrOptions{})
	if err != nil || len(got) == 0 {
		t.Fatalf("real interfaces: %v %v", got, err)
	}
	for _, a := range got {
		if a.IsLinkLocalUnicast() {
			t.Fatalf("link-local %v", a)
		}
	}
}

func TestListenBothFamiliesAndRace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := Listen(ctx, ListenOptions{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	hs := l.Hints()
	if len(hs) == 0 || hs[0] != (DirectTCPV1{Hostname: "127.0.0.1", Port: l.Port()}) {
		t.Fatalf("hints %v", hs)
	}
	// Serve a one-line greeting on every accepted connection.
	go func() {
		for {
			c, err := l.Accept(ctx)
			if err != nil {
				return
			}
			c.Write([]byte("hello\n"))
			c.Close()
		}
	}()
	var dialer net.Dialer
	dial := func(ctx context.Context, c Candidate) (net.Conn, error) {
		return dialer.DialContext(ctx, "tcp", c.Hint.(DirectTCPV1).Addr())
	}
	for _, h := range hs {
		w, err := Race(ctx, []Candidate{{Hint: h}}, dial, readHello, RaceOptions{})
		if err != nil {
			t.Fatalf("%v: %v", h, err)
		}
		w.Conn.Close()
	}
	if len(hs) < 2 {
		t.Logf("no IPv6 loopback here; only IPv4 tested")
	} else if hs[1] != (DirectTCPV1{Hostname: "::1", Port: l.Port()}) {
		t.Fatalf("IPv6 hint %v", hs[1])
	}
	// A refused port shows up in the RaceError.
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadPort := dead.Addr().(*net.TCPAddr).Port
	dead.Close()
	_, err = Race(ctx, []Candidate{{Hint: DirectTCPV1{Hostname: "127.0.0.1", Port: deadPort}}}, dial, readHello, RaceOptions{})
	if re := (*RaceError)(nil); err == nil || !asRace(err, &re) || len(re.Attempts) != 1 {
		t.Fatalf("dead port: %v", err)
	}
	cancel()
	l.Close()
	if _, err := l.Accept(context.Background()); err != ErrListenerClosed {
		t.Fatalf("accept after close: %v", err)
	}
	_ = netip.Addr{}
}

func asRace(err error, re **RaceError) bool {
	r, ok := err.(*RaceError)
	*re = r
	return ok
}
