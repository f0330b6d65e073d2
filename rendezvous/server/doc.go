// Package server is a magic-wormhole mailbox (rendezvous) server that speaks
// the protocol exactly as the reference Python server
// (magic-wormhole-mailbox-server 0.4.1, as shipped by Debian) does: a
// WebSocket at /v1 carrying one JSON object per text frame (binary frames
// are accepted too), with the same commands, responses, ordering (the ack
// of a command comes before its response or error) and error strings. The
// root path serves "Wormhole Relay\n".
//
//	s, err := server.New(server.Options{Store: store, MOTD: "hello"})
//	...
//	go s.Serve(listener) // or use s as an http.Handler
//	defer s.Close()
//
// State lives behind the Store interface: NewMemoryStore keeps it in
// memory, OpenSQLiteStore in a SQLite file, so a restarted server loses no
// nameplate, mailbox or queued message and clients that reconnect (with the
// same side) carry on. Abandoned channels are pruned like the reference
// (every PruneInterval, after ChannelExpiration without activity; a
// connected subscriber keeps its mailbox alive) and usage summaries (result
// happy/lonely/scary/errory/pruney/crowded/quiet, waiting and total times)
// and client versions are written to the store for operators.
//
// The protocol suite in this package's tests runs against both stores and
// against the Python reference server, so every behaviour it checks is the
// reference's. Where this server deliberately differs:
//
//   - Newer-upstream features: welcome carries "your-address" (server
//     0.8.0+); closing the last side of a mailbox also deletes nameplates
//     still pointing at it (0.4.1 hits a foreign-key error there and drops
//     the connection).
//   - A frame that is not a UTF-8 JSON object (the reference's handler
//     raises and the connection drops) gets an error ("malformed client
//     message: ...") and a close with status 1007. A known key with the
//     wrong JSON type (the reference crashes on some, e.g. a numeric
//     nameplate, and stores others as they are, e.g. a numeric phase) gets
//     an error such as "'nameplate' must be a string"; the connection stays.
//   - Limits the reference does not have, all in Options: frame size (close
//     1009), messages and bytes per mailbox ("mailbox full"), mailboxes in
//     total ("too many mailboxes"), concurrent connections (HTTP 503), bytes
//     queued to a client that does not read (disconnected), unanswered
//     WebSocket pings (disconnected), and the HTTP header timeout for
//     half-open TCP connections.
//   - Optional hashcash permission (the protocols spec's
//     "permission-required"; the reference never asks): accepts
//     "submit-permissions" and the Rust client's "submit-permission",
//     refuses replayed stamps; bind without permission gets "permission
//     required" and a close with status 1008.
//
// The WebSocket layer is the package's own minimal RFC 6455 server side
// (ws.go: handshake over a hijacked net/http connection, masked client
// frames, fragmentation, ping/pong, close handshake, size limit; no
// extensions), built so that an idle client costs about 5 KiB: one
// goroutine blocked reading a frame header into a 14-byte array, no
// bufio buffers kept after the handshake, a time.AfterFunc keepalive
// (a ping arms the read deadline; any frame from the client disarms it)
// and a writer goroutine that exists only while frames are queued. See
// docs/performance.md for figures.
package server
