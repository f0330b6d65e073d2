package wormhole

// Event is one thing that happened to a wormhole, delivered in order on
// Events() when Options.Events is set. The concrete types are WelcomeEvent,
// CodeEvent, KeyEvent, VerifierEvent, VersionsEvent, MessageEvent and
// ClosedEvent (always last).
type Event interface{ isEvent() }

// WelcomeEvent: the mailbox server's welcome arrived.
type WelcomeEvent struct{ Welcome Welcome }

// CodeEvent: the wormhole code is known (allocated, set or typed).
type CodeEvent struct{ Code string }

// KeyEvent: the PAKE finished; Key is the shared key, not yet confirmed by
// the peer.
type KeyEvent struct{ Key []byte }

// VerifierEvent: the first peer message decrypted; Verifier can be compared
// out of band (the CLI shows it as hex).
type VerifierEvent struct{ Verifier []byte }

// VersionsEvent: the peer's app_versions.
type VersionsEvent struct{ AppVersions map[string]any }

// MessageEvent: the next application message from the peer, in order.
type MessageEvent struct{ Body []byte }

// ClosedEvent: the wormhole closed; Err is nil for a happy close, otherwise
// what Close returns (ErrLonely, ErrWrongPassword, *ServerError, ...).
type ClosedEvent struct{ Err error }

func (WelcomeEvent) isEvent()  {}
func (CodeEvent) isEvent()     {}
func (KeyEvent) isEvent()      {}
func (VerifierEvent) isEvent() {}
func (VersionsEvent) isEvent() {}
func (MessageEvent) isEvent()  {}
func (ClosedEvent) isEvent()   {}

// eventQueue is an unbounded FIFO of events drained by one dispatcher
// goroutine into the user's channel. push is called with w.mu held, so
// events are queued in state-machine order.
type eventQueue struct {
	ch     chan Event    // user-facing, closed after ClosedEvent
	notify chan struct{} // cap 1
	q      []Event
	done   bool // ClosedEvent queued
}

func newEventQueue() *eventQueue {
	return &eventQueue{ch: make(chan Event), notify: make(chan struct{}, 1)}
}
