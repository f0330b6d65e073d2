package tunnel_test

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/wormhole-go/wormhole/dilate"
	"github.com/wormhole-go/wormhole/dilate/dilatetest"
	"github.com/wormhole-go/wormhole/tunnel"
)

// Every session-parameterised test also runs over real Dilation: two
// dilate.Dilations on loopback TCP (Noise, L3 records, L4 acks, L5
// subchannels), with the L1 mailbox records carried by dilatetest's
// in-memory pair.
func init() {
	extraSessionKinds = append(extraSessionKinds, sessionMaker{"dilate", dilatePair})
}

func dilatePair(t *testing.T) (tunnel.Session, tunnel.Session) {
	t.Helper()
	sa, sb := dilatetest.Pair()
	key := sha256.Sum256([]byte("tunnel test dilation key"))
	ctx := context.Background()
	a, err := dilate.New(ctx, key[:], sa, dilate.Options{ListenAddr: "127.0.0.1:0", Side: "aaaaaaaaaaaaaaaa"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := dilate.New(ctx, key[:], sb, dilate.Options{ListenAddr: "127.0.0.1:0", Side: "bbbbbbbbbbbbbbbb"})
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.Close()
		b.Close()
		sa.Close()
		sb.Close()
	})
	return a, b
}
