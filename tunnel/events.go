package tunnel

import (
	"encoding/json"
	"time"
)

// Event kinds. The first group has the names and keys of fowld's output
// messages (fowl src/fowl/messages.py, serialised by
// _proto.py fowld_output_to_json: the attrs fields plus "kind"), so a
// controller written for fowld can read wh-tunnel --json. The second group
// are wh-tunnel extensions.
const (
	EvWelcome            = "welcome"               // url, welcome
	EvCodeAllocated      = "code-allocated"        // code
	EvPeerConnected      = "peer-connected"        // verifier, versions
	EvListening          = "listening"             // name, listening_port
	EvListeningFailed    = "listening-failed"      // name, reason
	EvAwaitingConnect    = "awaiting-connect"      // name, local_port
	EvRemoteConnectFail  = "remote-connect-failed" // id, reason
	EvOutgoingConnection = "outgoing-connection"   // service_name, id
	EvOutgoingDone       = "outgoing-done"         // service_name (+ id)
	EvOutgoingLost       = "outgoing-lost"         // service_name, reason (+ id)
	EvIncomingConnection = "incoming-connection"   // service_name, id
	EvIncomingDone       = "incoming-done"         // id
	EvIncomingLost       = "incoming-lost"         // id, reason
	EvBytesIn            = "bytes-in"              // id, bytes
	EvBytesOut           = "bytes-out"             // id, bytes
	EvClosed             = "closed"                // result
	EvError              = "error"                 // message

	// Extensions.
	EvPeerConnection = "peer-connection" // state, hint: Dilation connection changes
	EvTransfer       = "transfer"        // demo: bytes, seconds, mib_per_s, sha256_ok
)

// Event is one status event. Only the fields belonging to Kind are used;
// MarshalJSON writes fowld's keys for each kind.
//
// Direction conventions follow fowl: bytes-in counts bytes read from a
// local TCP connection and sent into the tunnel, bytes-out bytes received
// from the tunnel and written to the local TCP connection. outgoing-* are
// connections accepted by one of our listeners (we opened the subchannel),
// incoming-* are subchannels the peer opened (we connect locally).
type Event struct {
	Kind    string
	Time    time.Time
	Name    string // service (unique-name)
	ID      int64  // connection id, unique within this Tunnel, from 1
	Port    int    // listening_port / local_port
	Bytes   int64  // bytes since the previous bytes-in/out event of this id
	Reason  string
	Message string
	Target  string // where we connect (awaiting-connect, incoming-connection)

	Code     string
	URL      string
	Verifier string
	Versions map[string]any
	Welcome  map[string]any
	Result   string
	State    string // peer-connection: connecting, connected, reconnecting, stopped
	Hint     string // peer-connection: how the connection was made
	Extra    map[string]any
}

// MarshalJSON writes one fowld-style object: {"kind": ..., ...}.
func (e Event) MarshalJSON() ([]byte, error) {
	m := map[string]any{"kind": e.Kind}
	switch e.Kind {
	case EvWelcome:
		m["url"] = e.URL
		m["welcome"] = orEmpty(e.Welcome)
	case EvCodeAllocated:
		m["code"] = e.Code
	case EvPeerConnected:
		m["verifier"] = e.Verifier
		m["versions"] = orEmpty(e.Versions)
	case EvListening:
		m["name"] = e.Name
		m["listening_port"] = e.Port
	case EvListeningFailed:
		m["name"] = e.Name
		m["reason"] = e.Reason
	case EvAwaitingConnect:
		m["name"] = e.Name
		m["local_port"] = e.Port
		m["connect"] = e.Target
	case EvRemoteConnectFail:
		m["id"] = e.ID
		m["reason"] = e.Reason
	case EvOutgoingConnection, EvIncomingConnection:
		m["service_name"] = e.Name
		m["id"] = e.ID
		if e.Target != "" {
			m["endpoint"] = e.Target
		}
	case EvOutgoingDone:
		m["service_name"] = e.Name
		m["id"] = e.ID
	case EvOutgoingLost:
		m["service_name"] = e.Name
		m["id"] = e.ID
		m["reason"] = e.Reason
	case EvIncomingDone:
		m["id"] = e.ID
	case EvIncomingLost:
		m["id"] = e.ID
		m["reason"] = e.Reason
	case EvBytesIn, EvBytesOut:
		m["id"] = e.ID
		m["bytes"] = e.Bytes
	case EvClosed:
		m["result"] = e.Result
	case EvError:
		m["message"] = e.Message
	case EvPeerConnection:
		m["state"] = e.State
		if e.Hint != "" {
			m["hint"] = e.Hint
		}
		if e.Reason != "" {
			m["reason"] = e.Reason
		}
	}
	for k, v := range e.Extra {
		if _, ok := m[k]; !ok {
			m[k] = v
		}
	}
	return json.Marshal(m)
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
