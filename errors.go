package wormhole

import (
	"errors"
)

// Sentinel errors. They mirror the Python library's exception classes
// (wormhole/errors.py); test for them with errors.Is.
var (
	// ErrLonely is returned by Close when the wormhole closed before a peer
	// was ever heard from (Python: LonelyError, mood "lonely").
	ErrLonely = errors.New("wormhole: closed before the peer connected (lonely)")

	// ErrWrongPassword is returned by Close and by every pending or later
	// call once a peer message failed to decrypt or the peer's PAKE message
	// was unusable: either side typed the code wrong, or an attacker guessed
	// wrong (Python: WrongPasswordError, mood "scary").
	ErrWrongPassword = errors.New("wormhole: key confirmation failed: wrong code (or an attacker guessed wrong)")

	// ErrClosed is returned by calls that wait for something the wormhole
	// can no longer deliver because it was closed happily (Python:
	// WormholeClosed).
	ErrClosed = errors.New("wormhole: closed")

	// ErrNoKey is returned by DeriveKey before the shared key is known
	// (Python: NoKeyError).
	ErrNoKey = errors.New("wormhole: no key yet")

	// ErrOnlyOneCode: AllocateCode, SetCode and InputCode were called more
	// than once in total (Python: OnlyOneCodeError).
	ErrOnlyOneCode = errors.New("wormhole: only one of AllocateCode, SetCode, InputCode may be called")

	// ErrMustChooseNameplateFirst: word completion or ChooseWords was asked
	// for before ChooseNameplate (Python: MustChooseNameplateFirstError).
	ErrMustChooseNameplateFirst = errors.New("wormhole: must choose the nameplate first")

	// ErrAlreadyChoseNameplate: nameplate refresh, completion or choice after
	// the nameplate was chosen (Python: AlreadyChoseNameplateError).
	ErrAlreadyChoseNameplate = errors.New("wormhole: the nameplate was already chosen")

	// ErrAlreadyChoseWords: word completion or choice after the words were
	// chosen (Python: AlreadyChoseWordsError).
	ErrAlreadyChoseWords = errors.New("wormhole: the words were already chosen")

	// ErrProtocol wraps a peer or server message that could not be processed
	// at all (e.g. an undecodable PAKE message or version dict). Like
	// Python's "error" path, the wormhole stops without sending a mood.
	ErrProtocol = errors.New("wormhole: protocol error")

	// ErrEventsMode is returned by Receive when the wormhole was created with
	// Options.Events: messages are then delivered only as MessageEvents.
	ErrEventsMode = errors.New("wormhole: messages are delivered as events (Options.Events is set)")
)

// WelcomeError means the mailbox server's welcome message carried an error,
// usually because this client is too old; the wormhole closes with mood
// "unwelcome" (Python: WelcomeError).
type WelcomeError struct {
	Message string
	Err     error // the underlying mailbox-client error, if any
}

func (e *WelcomeError) Error() string { return "wormhole: server refused us: " + e.Message }
func (e *WelcomeError) Unwrap() error { return e.Err }

// ServerError means the mailbox server sent an error message about
// something this client did (e.g. a crowded nameplate); the wormhole closes
// with mood "errory" (Python: ServerError).
type ServerError struct {
	Message string
	Err     error // the underlying mailbox-client error, if any
}

func (e *ServerError) Error() string { return "wormhole: server error: " + e.Message }
func (e *ServerError) Unwrap() error { return e.Err }
