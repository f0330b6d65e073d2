package tunnel_test

import (
	"fmt"
	"io"
	"net"
	"reflect"
	"testing"

	"github.com/wormhole-go/wormhole/tunnel"
)

// These tests drive our Tunnel with a peer scripted by hand after fowl's
// documented and coded behaviour (fowl 25.10 src/fowl/_proto.py, api.py;
// see doc.go), checking the exact messages fowl would send and expect.

// fowl fledges (fowl --remote chat): it asks us to listen; we are the -L
// (roost) side. Each local connection to our listener opens a "fowl"
// subchannel that fowl answers, then bytes flow.
func TestFowlFledgesOurListener(t *testing.T) {
	forEachSession(t, func(t *testing.T, mk sessionMaker) {
		sa, fowl := mk.make(t)
		us := startPeer(t, sa, mustParse(t, tunnel.Local, "chat=0:localhost:6667"))

		// fowl: _SendFowlCommand.send_command on a new fowl-commands subchannel.
		cmd, err := fowl.Dial(tctx(t), "fowl-commands")
		if err != nil {
			t.Fatal(err)
		}
		defer cmd.Close()
		if err := tunnel.WriteMessage(cmd, tunnel.Message{"kind": "request-listener", "unique-name": "chat", "listen-port": nil}); err != nil {
			t.Fatal(err)
		}
		reply, err := tunnel.ReadMessage(cmd)
		if err != nil {
			t.Fatal(err)
		}
		// FowlCommands._reply_generic's shape; desired-port is our HOSTPORT,
		// which fowl uses when its --remote named no port.
		want := tunnel.Message{"kind": "listener-response", "unique-name": "chat", "listening": true, "desired-port": int64(6667)}
		if !reflect.DeepEqual(reply, want) {
			t.Fatalf("reply %#v, want %#v", reply, want)
		}
		st, err := us.t.WaitReady(tctx(t), "chat")
		if err != nil {
			t.Fatal(err)
		}
		// fowl listens for "fowl" subchannels (FowlSubprotocolListener).
		fl, err := fowl.Listen("fowl")
		if err != nil {
			t.Fatal(err)
		}
		defer fl.Close()
		client, err := net.Dial("tcp", st.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		io.WriteString(client, "NICK go\r\n") // must not reach fowl before its reply
		sc, err := fl.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		open, err := tunnel.ReadMessage(sc)
		if err != nil || !reflect.DeepEqual(open, tunnel.Message{"unique-name": "chat"}) {
			t.Fatalf("open %#v %v", open, err)
		}
		// FowlFarToNear.send_positive_reply, then the daemon talks first.
		tunnel.WriteMessage(sc, tunnel.Message{"connected": true})
		io.WriteString(sc, ":server 001 go :welcome\r\n")
		buf := make([]byte, len(":server 001 go :welcome\r\n"))
		if _, err := io.ReadFull(client, buf); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len("NICK go\r\n"))
		if _, err := io.ReadFull(sc, got); err != nil || string(got) != "NICK go\r\n" {
			t.Fatalf("fowl got %q %v", got, err)
		}
		// fowl has no half-close: it closes the subchannel; our client sees EOF.
		sc.Close()
		if rest, err := io.ReadAll(client); err != nil || len(rest) != 0 {
			t.Fatalf("after fowl's close: %q %v", rest, err)
		}
	})
}

// fowl roosts (fowl --local chat:...): we fledge with -R and fowl's
// listener opens "fowl" subchannels to us; we connect only to our target.
func TestFowlRoostsOurService(t *testing.T) {
	forEachSession(t, func(t *testing.T, mk sessionMaker) {
		echo := startEcho(t)
		sa, fowl := mk.make(t)
		cl, err := fowl.Listen("fowl-commands")
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		us := startPeer(t, sa, mustParse(t, tunnel.Remote, fmt.Sprintf("chat=8123:127.0.0.1:%d", echo)))
		cmd, err := cl.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer cmd.Close()
		req, err := tunnel.ReadMessage(cmd)
		want := tunnel.Message{"kind": "request-listener", "unique-name": "chat", "listen-port": int64(8123)}
		if err != nil || !reflect.DeepEqual(req, want) {
			t.Fatalf("request %#v %v, want %#v", req, err, want)
		}
		// fowl's positive reply without desired-port (its --local named no
		// remote-connect port).
		tunnel.WriteMessage(cmd, tunnel.Message{"kind": "listener-response", "unique-name": "chat", "listening": true})
		if _, err := us.t.WaitReady(tctx(t), "chat"); err != nil {
			t.Fatal(err)
		}
		// A connection to fowl's listener: FowlNearToFar opens "fowl".
		sc, err := fowl.Dial(tctx(t), "fowl")
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		tunnel.WriteMessage(sc, tunnel.Message{"unique-name": "chat"})
		rep, err := tunnel.ReadMessage(sc)
		if err != nil || !reflect.DeepEqual(rep, tunnel.Message{"connected": true}) {
			t.Fatalf("reply %#v %v", rep, err)
		}
		io.WriteString(sc, "echo me")
		buf := make([]byte, 7)
		if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "echo me" {
			t.Fatalf("%q %v", buf, err)
		}
		if n := us.dials.Load(); n != 1 {
			t.Fatalf("%d dials", n)
		}
		// A negative answer from fowl is a refusal with fowl's reason.
		sb, fowl2 := mk.make(t)
		cl2, _ := fowl2.Listen("fowl-commands")
		defer cl2.Close()
		us2 := startPeer(t, sb, mustParse(t, tunnel.Remote, "ssh=0:127.0.0.1:22"))
		cmd2, err := cl2.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer cmd2.Close()
		tunnel.ReadMessage(cmd2)
		tunnel.WriteMessage(cmd2, tunnel.Message{"kind": "listener-response", "unique-name": "ssh", "listening": false, "reason": "No service permitted for name: ssh"})
		if _, err := us2.t.WaitReady(tctx(t), "ssh"); !isRefused(err) {
			t.Fatalf("want refusal, got %v", err)
		}
	})
}
