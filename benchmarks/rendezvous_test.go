package benchmarks

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/wormhole-go/wormhole/internal/interop"
	"github.com/wormhole-go/wormhole/rendezvous"
)

var rvBodySizes = []int{64, 1 << 10, 64 << 10}

// BenchmarkRendezvousEncodeAdd: client "add" encoding (hex body), the
// client's hot path.
func BenchmarkRendezvousEncodeAdd(b *testing.B) {
	for _, n := range rvBodySizes {
		b.Run(fmt.Sprintf("body=%d", n), func(b *testing.B) {
			m := rendezvous.AddMsg{ID: "1a2b", Phase: "0", Body: bytes.Repeat([]byte{0xa5}, n)}
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(m); err != nil {
					b.Fatal(err)
				}
			}
		})
		// What the client does: the encoder directly, without
		// encoding/json's re-validation of the output.
		b.Run(fmt.Sprintf("direct/body=%d", n), func(b *testing.B) {
			m := rendezvous.AddMsg{ID: "1a2b", Phase: "0", Body: bytes.Repeat([]byte{0xa5}, n)}
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.MarshalJSON(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRendezvousDecodeMessage: server "message" decoding as the
// Python server writes it.
func BenchmarkRendezvousDecodeMessage(b *testing.B) {
	for _, n := range rvBodySizes {
		b.Run(fmt.Sprintf("body=%d", n), func(b *testing.B) {
			frame := []byte(fmt.Sprintf(`{"side": "0123456789", "phase": "0", "body": "%s", "server_rx": 1795937564.9678965, "id": "fbcc", "type": "message", "server_tx": 1795937564.968}`,
				hex.EncodeToString(bytes.Repeat([]byte{0xa5}, n))))
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rendezvous.DecodeServerMessage(frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRendezvousDecodeSmall: the small control messages.
func BenchmarkRendezvousDecodeSmall(b *testing.B) {
	frames := map[string]string{
		"ack":     `{"id": "7dea", "type": "ack", "server_tx": 1795937564.918258}`,
		"welcome": `{"welcome": {"motd": "hi", "your-address": {"port": 5, "ipv4": "127.0.0.1"}}, "type": "welcome", "server_tx": 1795937564.913444}`,
		"claimed": `{"mailbox": "uhopbidvhbtdy", "type": "claimed", "server_tx": 1795937564.9648776}`,
	}
	for name, f := range frames {
		b.Run(name, func(b *testing.B) {
			frame := []byte(f)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rendezvous.DecodeServerMessage(frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("client-bind", func(b *testing.B) {
		frame := []byte(`{"appid": "lothar.com/wormhole/text-or-file-xfer", "side": "c80f0e7bbd", "client_version": ["python", "0.12.0"], "id": "7dea", "type": "bind"}`)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rendezvous.DecodeClientMessage(frame); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode-bind", func(b *testing.B) {
		m := rendezvous.BindMsg{ID: "7dea", AppID: "lothar.com/wormhole/text-or-file-xfer", Side: "c80f0e7bbd", ClientVersion: []string{"wormhole-go", "0.1.0"}}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRendezvousPythonRoundTrip: one 1 KiB message from client A to
// client B and back through Debian's Python mailbox server on loopback.
func BenchmarkRendezvousPythonRoundTrip(b *testing.B) {
	mb := interop.StartPythonMailbox(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	newClient := func() *rendezvous.Client {
		c := rendezvous.New(rendezvous.Options{URL: mb.URL(), AppID: "bench"})
		if err := c.Connect(ctx); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		return c
	}
	a, c := newClient(), newClient()
	np, err := a.Allocate(ctx)
	if err != nil {
		b.Fatal(err)
	}
	box, err := a.Claim(ctx, np)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Claim(ctx, np); err != nil {
		b.Fatal(err)
	}
	if err := a.Open(ctx, box); err != nil {
		b.Fatal(err)
	}
	if err := c.Open(ctx, box); err != nil {
		b.Fatal(err)
	}
	body := bytes.Repeat([]byte{1}, 1024)
	recv := func(cl *rendezvous.Client) {
		select {
		case _, ok := <-cl.Messages():
			if !ok {
				b.Fatal(cl.Err())
			}
		case <-ctx.Done():
			b.Fatal("timeout")
		}
	}
	i := 0
	b.SetBytes(2 * int64(len(body)))
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		phase := fmt.Sprint(i)
		i++
		if err := a.Add(ctx, phase, body); err != nil {
			b.Fatal(err)
		}
		recv(c)
		if err := c.Add(ctx, phase, body); err != nil {
			b.Fatal(err)
		}
		recv(a)
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(i)/1000, "ms/roundtrip")
}
