package transit_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/wormhole-go/wormhole/hints"
	"github.com/wormhole-go/wormhole/transit"
)

// Both sides derive the same transit key from the wormhole, exchange their
// LocalHints in the file-transfer "transit" message, and Connect.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	key := make([]byte, transit.KeySize) // in real use: w.DeriveKey(appid+"/transit-key", 32)

	sender, _ := transit.New(transit.Options{IsSender: true, Key: key, Listen: hints.ListenOptions{LoopbackOnly: true}})
	receiver, _ := transit.New(transit.Options{Key: key, Listen: hints.ListenOptions{LoopbackOnly: true}})
	defer sender.Close()
	defer receiver.Close()

	sh, _ := sender.LocalHints(ctx) // -> {"transit": {"abilities-v1": transit.Abilities(), "hints-v1": sh}}
	rh, _ := receiver.LocalHints(ctx)
	sender.AddPeerHints(rh)
	receiver.AddPeerHints(sh)

	done := make(chan *transit.Conn)
	go func() {
		c, err := receiver.Connect(ctx)
		if err != nil {
			panic(err)
		}
		done <- c
	}()
	sc, err := sender.Connect(ctx)
	if err != nil {
		panic(err)
	}
	rc := <-done

	io.WriteString(sc, "file contents") // records of <= 16 KiB
	sc.Close()
	got, _ := io.ReadAll(rc)
	rc.Close()
	fmt.Printf("%s (relayed: %v)\n", got, sc.Relayed())
	// Output: file contents (relayed: false)
}
