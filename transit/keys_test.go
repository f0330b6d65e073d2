package transit

import (
	"encoding/hex"
	"testing"
)

// Appendix A of the protocol digest.
func TestKeyVectors(t *testing.T) {
	tk, _ := hex.DecodeString("de3c0dbc93378f17f3f6e253e1f2e43513ee43e78918f4abfd908dd092121a72")
	check := func(name, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s:\n got %q\nwant %q", name, got, want)
		}
	}
	check("sender handshake", string(SenderHandshake(tk)), "transit sender 932a9a816b801f13e5f7da2fe592d3f9e57dc2c2ef289736d4e5d7c77153efab ready\n\n")
	check("receiver handshake", string(ReceiverHandshake(tk)), "transit receiver 9b9c29f8b30d03a3b5d75dc32658347643a4a4966d81f040c5570bc7ffc42672 ready\n\n")
	check("relay token", RelayToken(tk), "8ea19d358188c0403199b3690d4149bf94e0a203ece7a6f9d7bd808561faded9")
	sk, rk := SenderRecordKey(tk), ReceiverRecordKey(tk)
	check("sender record key", hex.EncodeToString(sk[:]), "6290224b13c6f8388fc25c9b1bb97fbe6f228494eacfee2faf2d5f896eae77eb")
	check("receiver record key", hex.EncodeToString(rk[:]), "7e1b561c524ed59040629b82c0eb598f5e0497a97c59365299e2829550362c9c")
	hs, err := RelayHandshake(tk, "0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	check("relay handshake", string(hs), "please relay 8ea19d358188c0403199b3690d4149bf94e0a203ece7a6f9d7bd808561faded9 for side 0123456789abcdef\n")
	for _, bad := range []string{"", "0123456789abcde", "0123456789abcdeg", "0123456789ABCDEF"} {
		if _, err := RelayHandshake(tk, bad); err == nil {
			t.Errorf("side %q accepted", bad)
		}
	}
}
