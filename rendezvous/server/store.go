package server

import (
	"context"
	"encoding/json"
	"errors"
)

// ErrStoreClosed is returned by a Store used after Close.
var ErrStoreClosed = errors.New("server: store closed")

// Store holds the mailbox server's durable state: nameplates, mailboxes,
// their sides, queued messages and usage records. The server serialises all
// calls to Update, so an implementation need not support concurrent
// transactions, but it must be safe to call Update from several goroutines.
//
// Two implementations are provided: NewMemoryStore and OpenSQLiteStore.
type Store interface {
	// Update runs fn in one transaction. If fn returns an error the
	// transaction is rolled back where the store supports it (the memory
	// store does not roll back; the server only returns errors from fn
	// before it writes).
	Update(ctx context.Context, fn func(Tx) error) error
	// Close releases the store's resources.
	Close() error
}

// Tx is the set of row-level operations the server performs inside a
// transaction. Times are float Unix seconds, like the reference server.
type Tx interface {
	// Nameplate looks up a nameplate by name within an app.
	Nameplate(app, name string) (n Nameplate, ok bool, err error)
	// NameplateNames lists the distinct names in use by an app.
	NameplateNames(app string) ([]string, error)
	// CreateNameplate inserts a nameplate row and returns its row id.
	CreateNameplate(app, name, mailboxID string) (int64, error)
	// NameplatesForMailbox lists the nameplates that point at a mailbox.
	NameplatesForMailbox(app, mailboxID string) ([]Nameplate, error)
	// NameplateSides lists the sides that claimed a nameplate.
	NameplateSides(npid int64) ([]NameplateSide, error)
	// AddNameplateSide inserts a claimed side row.
	AddNameplateSide(npid int64, side string, added float64) error
	// ReleaseNameplateSide clears the claimed flag of a side.
	ReleaseNameplateSide(npid int64, side string) error
	// DeleteNameplate deletes a nameplate and its side rows.
	DeleteNameplate(npid int64) error

	// Mailbox looks up a mailbox of an app.
	Mailbox(app, id string) (m Mailbox, ok bool, err error)
	// Mailboxes lists all mailboxes of an app.
	Mailboxes(app string) ([]Mailbox, error)
	// CreateMailbox inserts a mailbox row.
	CreateMailbox(m Mailbox) error
	// TouchMailbox sets a mailbox's updated time.
	TouchMailbox(id string, when float64) error
	// MailboxSides lists the sides that opened a mailbox.
	MailboxSides(id string) ([]MailboxSide, error)
	// AddMailboxSide inserts an opened side row.
	AddMailboxSide(id, side string, added float64) error
	// CloseMailboxSide clears the opened flag of a side and records its mood.
	CloseMailboxSide(id, side, mood string) error
	// DeleteMailbox deletes a mailbox, its sides and its messages.
	DeleteMailbox(id string) error
	// MailboxCount counts the mailboxes of all apps.
	MailboxCount() (int, error)
	// Apps lists every app id that has a nameplate, mailbox or message.
	Apps() ([]string, error)

	// AddMessage appends a message to a mailbox's queue.
	AddMessage(app, mailboxID string, m Message) error
	// Messages returns a mailbox's messages ordered by ServerRx (ties in
	// insertion order).
	Messages(app, mailboxID string) ([]Message, error)
	// MessageStats returns the number of queued messages of a mailbox and the
	// total length of their bodies.
	MessageStats(app, mailboxID string) (count int, bodyBytes int64, err error)

	// AddUsage appends a usage record for operators.
	AddUsage(u Usage) error
	// AddClientVersion records the client_version sent with a bind.
	AddClientVersion(v ClientVersion) error
	// SetCurrent replaces the single "current" status row.
	SetCurrent(c Current) error
	// UsageRecords returns the stored usage records (the SQLite store lists
	// nameplate records before mailbox records).
	UsageRecords() ([]Usage, error)
	// ClientVersions returns the stored client versions, oldest first.
	ClientVersions() ([]ClientVersion, error)
	// Current returns the status row (zero if none was written).
	Current() (Current, error)
}

// Nameplate is a row of the nameplates table.
type Nameplate struct {
	ID        int64
	App       string
	Name      string
	MailboxID string
}

// NameplateSide records one side's claim on a nameplate.
type NameplateSide struct {
	Side    string
	Claimed bool
	Added   float64
}

// Mailbox is a row of the mailboxes table.
type Mailbox struct {
	App          string
	ID           string
	Updated      float64
	ForNameplate bool
}

// MailboxSide records one side's use of a mailbox.
type MailboxSide struct {
	Side   string
	Opened bool
	Added  float64
	Mood   string // "" when the side has not closed with a mood
}

// Message is one queued mailbox message. Phase and Body are stored as the
// client sent them; ID is the JSON value of the add's "id" (null if absent).
type Message struct {
	Side     string
	Phase    string
	Body     string
	ServerRx float64
	ID       json.RawMessage
}

// UsageKind says what a usage record summarises.
type UsageKind string

// Usage record kinds.
const (
	UsageNameplate UsageKind = "nameplate"
	UsageMailbox   UsageKind = "mailbox"
)

// Usage summarises one retired nameplate or mailbox, like the reference
// server's usage database. WaitingTime is nil when only one side appeared.
// Result is one of happy, lonely, pruney, crowded (nameplates) or happy,
// lonely, quiet, errory, scary, pruney, crowded (mailboxes).
type Usage struct {
	Kind         UsageKind
	App          string
	ForNameplate bool // mailboxes only
	Started      float64
	WaitingTime  *float64
	TotalTime    float64
	Result       string
}

// ClientVersion is the client_version a side sent with bind.
type ClientVersion struct {
	App            string
	Side           string
	ConnectTime    float64
	Implementation *string
	Version        *string
}

// Current is the server status row rewritten on every prune pass.
type Current struct {
	Rebooted    float64
	Updated     float64
	BlurTime    float64 // seconds, 0 if not blurring
	Connections int
}
