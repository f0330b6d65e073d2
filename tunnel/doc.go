// Package tunnel forwards TCP connections between two peers over the
// subchannels of a dilated magic-wormhole (or any Session), in the style of
// ssh -L / -R, speaking the wire protocol of fowl
// (https://github.com/meejah/fowl, "Forward Over Wormhole Locally") so a
// wh-tunnel user and a fowl user can forward to each other.
//
// # What fowl speaks
//
// Read from fowl 25.10.0 (commit e825346): docs/protocol.rst,
// src/fowl/_proto.py, src/fowl/api.py, src/fowl/cli.py, src/fowl/messages.py,
// src/fowl/status.py and docs/frontend-protocol.rst. Nothing of fowl's code
// is copied here; this is a description and an independent implementation.
//
//   - Wormhole: AppID "meejah.ca/wormhole/forward" (_proto.py APPID), created
//     with dilation=True and app versions {"fowl": {"features": ["core-v1"]}}.
//     Dilation's transit relay defaults to the public one.
//   - Two Dilation subprotocols, both listened for on both peers as soon as
//     the wormhole is dilated (api.py _FowlCoop.dilate):
//     "fowl-commands" for requests and "fowl" for forwarded streams.
//   - Every structured message is a 2-byte big-endian length followed by a
//     msgpack map (_proto.py _pack_netstring). The length limits a
//     message to 65535 bytes.
//   - Services are paired by a "unique-name". A service needs both peers:
//     the peer that runs the daemon-style software calls fledge(name)
//     (fowl --remote / --service) and the other, which will listen, called
//     roost(name) (fowl --local / --client), which is the permission to
//     listen.
//   - fledge opens a NEW "fowl-commands" subchannel per request and
//     writes {"kind": "request-listener", "unique-name": N,
//     "listen-port": P or nil} (_SendFowlCommand.send_command). The roost
//     side answers {"kind": "listener-response", "unique-name": N,
//     "listening": true, "desired-port": X} (desired-port only when its
//     --local named a remote-connect port) or {"listening": false,
//     "reason": "..."} (FowlCommands._reply_generic). An unknown name gets
//     "No service permitted for name: N". A non-nil listen-port must be
//     used exactly or the request fails. The fledge side then connects to
//     its own port (or desired-port if it named none; if both are named
//     and differ, it fails).
//   - The roost side keeps its listener only while that commands subchannel
//     lives: FowlCommands.connectionLost stops the ports it opened. fowl's
//     requester never closes it.
//   - FowlCommands.dataReceived and fledge's reply parsing assume one whole
//     message per dataReceived call, i.e. per Dilation DATA record. We
//     therefore write every message with a single Write (one record).
//   - Each TCP connection accepted on a roost listener opens a "fowl"
//     subchannel and sends {"unique-name": N} (FowlNearToFar). The
//     other side (FowlFarToNear) checks N against its fledged services
//     (replying {"connected": false, "reason": "Against local policy"}
//     if unknown), connects to its local port and answers
//     {"connected": true} or {"connected": false, "reason": ...}. The
//     opener must send nothing else before the reply; afterwards the
//     subchannel carries raw bytes both ways. FowlNearToFar treats any
//     bytes after the reply within the same record as an error
//     ("too much data"), so we send the reply as its own record.
//   - fowl has no half-close: its protocols are not IHalfCloseableProtocol,
//     so a subchannel CLOSE, or EOF from a local socket, closes the whole
//     forwarded connection (ConnectionForward.stream_closed,
//     FowlFarToNear forwarding_bytes.upon(subchannel_closed)). A client
//     that half-closes towards a fowl peer loses the reply. Between two
//     wh-tunnel peers half-close is carried through (EOF on one TCP side
//     becomes CloseWrite of the subchannel, whose CLOSE becomes CloseWrite
//     of the other TCP connection).
//   - Session end: a mailbox application message {"closing": <next phase
//     number>} sent by each side, then the wormhole is closed
//     (FowlWormhole.disconnect_session). That is a wormhole-level message,
//     handled by cmd/wh-tunnel, not by this package.
//   - fowld's frontend (stdin/stdout) protocol: one JSON object per line
//     with a "kind". Output kinds and keys are the attrs fields of the
//     classes in messages.py (the docs/frontend-protocol.rst text is older
//     and differs, e.g. "listening" has name and listening_port, not
//     listen/connect). Event.MarshalJSON writes those keys; wh-tunnel
//     --json emits them.
//
// Bugs noticed in fowl (not worked around, they do not affect the wire):
// FowlCommands.connectionLost refers to self._done, which it never sets;
// status.outgoing_done/outgoing_lost put the connection id in the
// "service_name" field.
//
// What Dilation must provide for this: named subchannels (Python
// magic-wormhole >= 0.20 "ged" with the subprotocol in OPEN), Listen on
// both names before the peer opens them (early OPENs queued), and one DATA
// record per small Write. package dilate provides all three; nothing
// fowl needs is missing. Python Dilation's expected_subprotocols is not
// enforced, so an OPEN for a name nobody listens on just waits.
//
// # What this package implements
//
// The fowl wire protocol above, with both roles: a Local forward (-L) is a
// roost with a fixed listen address, a Remote forward (-R) is a fledge with
// a fixed target. Forward names are fowl's unique-names.
//
// Policy (least authority). A forward only exists when both peers name it:
//
//   - The listening side listens only for names of its own -L forwards,
//     on its own bind address and port (port 0 lets the system choose).
//     A request whose listen-port differs from ours is refused; we never
//     let the peer choose our port or address.
//   - The connecting side dials only the target of its own -R forward of
//     that name; the name in the peer's OPEN selects one of our own
//     targets and is never used as an address. An unknown name gets
//     "Against local policy" and nothing is dialled.
//   - So `-L 8080:localhost:80` on one side pairs with `-R
//     8080:localhost:80` on the other: the first side chooses where it
//     listens, the second where it connects. The ports written on the
//     "other" side are cross-checked (listen-port in the request,
//     desired-port in the answer) and a mismatch is refused with a reason.
//     The default name is "PORT:HOST:HOSTPORT"; name forwards explicitly
//     (NAME=...) to pair with fowl, whose names cannot contain ':'.
//   - A -R spec may not name a bind address: that is the listener's choice.
//
// Forwarded connections ride on Dilation subchannels, so they survive a
// lost Dilation connection: Dilation reconnects and retransmits unacked
// records (tested by cutting the relay path mid-transfer).
//
// Half-close towards a fowl peer: when fowl closes the subchannel after
// its local server finished, we half-close our local connection; a local
// client that never closes its own side keeps that connection until it
// does (between wh-tunnel peers this is exactly TCP's half-close).
//
// Verified against a running fowl 25.10.0 (commit e825346) on upstream
// Python magic-wormhole 0.24.0-32-g6fa0e455, by hand because CI cannot
// install them: package tunnel/fowlinterop drives fowld and the wh-tunnel
// binary against each other (both inviting, forwards listening on each
// side, sha256-checked transfers, policy and port refusals, orderly close
// both ways) when WH_FOWL names fowl's PYTHONPATH; docs/fowl-interop.md
// records the runs. The msgpack encoding is also checked byte for byte
// against Python's msgpack.
//
// Everything is bounded: control messages by their 16-bit length, msgpack
// nesting and counts by the input size, handshakes by timeouts, copies by
// fixed buffers, concurrent connections by Options.MaxConnections.
package tunnel
