package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// sqliteSchemaVersion is stored in the version table of databases we create.
const sqliteSchemaVersion = 1

// The channel tables follow the reference server's channel-v1 schema (times
// are REAL rather than INTEGER, as the reference actually stores floats); the
// usage tables follow usage-v2, prefixed usage_ because they share the file.
const sqliteSchema = `
CREATE TABLE IF NOT EXISTS version (version INTEGER);
CREATE TABLE IF NOT EXISTS mailboxes (
 app_id VARCHAR, id VARCHAR PRIMARY KEY, updated REAL, for_nameplate BOOLEAN);
CREATE INDEX IF NOT EXISTS mailboxes_idx ON mailboxes (app_id, id);
CREATE TABLE IF NOT EXISTS nameplates (
 id INTEGER PRIMARY KEY AUTOINCREMENT, app_id VARCHAR, name VARCHAR,
 mailbox_id VARCHAR REFERENCES mailboxes(id), request_id VARCHAR);
CREATE INDEX IF NOT EXISTS nameplates_idx ON nameplates (app_id, name);
CREATE INDEX IF NOT EXISTS nameplates_mailbox_idx ON nameplates (app_id, mailbox_id);
CREATE TABLE IF NOT EXISTS nameplate_sides (
 nameplates_id REFERENCES nameplates(id), claimed BOOLEAN, side VARCHAR, added REAL);
CREATE INDEX IF NOT EXISTS nameplate_sides_idx ON nameplate_sides (nameplates_id);
CREATE TABLE IF NOT EXISTS mailbox_sides (
 mailbox_id REFERENCES mailboxes(id), opened BOOLEAN, side VARCHAR, added REAL, mood VARCHAR);
CREATE INDEX IF NOT EXISTS mailbox_sides_idx ON mailbox_sides (mailbox_id);
CREATE TABLE IF NOT EXISTS messages (
 app_id VARCHAR, mailbox_id VARCHAR, side VARCHAR, phase VARCHAR, body VARCHAR,
 server_rx REAL, msg_id VARCHAR);
CREATE INDEX IF NOT EXISTS messages_idx ON messages (app_id, mailbox_id);
CREATE TABLE IF NOT EXISTS current (
 rebooted REAL, updated REAL, blur_time REAL, connections_websocket INTEGER);
CREATE TABLE IF NOT EXISTS usage_nameplates (
 app_id VARCHAR, started REAL, waiting_time REAL, total_time REAL, result VARCHAR);
CREATE TABLE IF NOT EXISTS usage_mailboxes (
 app_id VARCHAR, for_nameplate BOOLEAN, started REAL, total_time REAL,
 waiting_time REAL, result VARCHAR);
CREATE TABLE IF NOT EXISTS client_versions (
 app_id VARCHAR, side VARCHAR, connect_time REAL, implementation VARCHAR, version VARCHAR);
`

// SQLiteStore is a Store in a SQLite database file (pure Go driver
// modernc.org/sqlite). Every Update is one transaction, so a restarted
// server finds every committed nameplate, mailbox and queued message.
type SQLiteStore struct {
	db *sql.DB

	mu      sync.Mutex
	stmts   map[string]*sql.Stmt // prepared once, reused by every transaction
	pending map[string]bool      // seen inside a transaction, to prepare after it
}

// OpenSQLiteStore opens (creating if needed) the database at path.
func OpenSQLiteStore(path string) (*SQLiteStore, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if _, err := db.Exec(sqliteSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite store %s: create schema: %w", path, err)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM version").Scan(&n); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	if n == 0 {
		if _, err := db.Exec("INSERT INTO version (version) VALUES (?)", sqliteSchemaVersion); err != nil {
			db.Close()
			return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
		}
	} else {
		var v int
		if err := db.QueryRow("SELECT version FROM version").Scan(&v); err != nil {
			db.Close()
			return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
		}
		if v != sqliteSchemaVersion {
			db.Close()
			return nil, fmt.Errorf("open sqlite store %s: schema version %d, want %d", path, v, sqliteSchemaVersion)
		}
	}
	return &SQLiteStore{db: db, stmts: make(map[string]*sql.Stmt), pending: make(map[string]bool)}, nil
}

// Update implements Store: fn runs inside one SQLite transaction.
func (s *SQLiteStore) Update(ctx context.Context, fn func(Tx) error) (err error) {
	defer s.preparePending()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		if errors.Is(err, sql.ErrConnDone) || err.Error() == "sql: database is closed" {
			return fmt.Errorf("%w: %v", ErrStoreClosed, err)
		}
		return fmt.Errorf("sqlite store: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(sqlTx{tx, s}); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("sqlite store: commit: %w", err)
	}
	return nil
}

// Close implements Store.
func (s *SQLiteStore) Close() error {
	s.mu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	s.stmts = nil
	s.mu.Unlock()
	return s.db.Close()
}

type sqlTx struct {
	tx *sql.Tx
	s  *SQLiteStore
}

// preparePending prepares the statements first seen in a transaction. It
// runs after the transaction, because the store's only connection is busy
// during one.
func (s *SQLiteStore) preparePending() {
	s.mu.Lock()
	var qs []string
	for q := range s.pending {
		qs = append(qs, q)
	}
	clear(s.pending)
	s.mu.Unlock()
	for _, q := range qs {
		st, err := s.db.Prepare(q)
		if err != nil {
			continue // the query itself reported the error
		}
		s.mu.Lock()
		if _, dup := s.stmts[q]; dup || s.stmts == nil {
			st.Close()
		} else {
			s.stmts[q] = st
		}
		s.mu.Unlock()
	}
}

// stmt returns q prepared, bound to this transaction.
func (t sqlTx) stmt(q string) (*sql.Stmt, error) {
	t.s.mu.Lock()
	st, ok := t.s.stmts[q]
	if !ok {
		t.s.pending[q] = true
	}
	t.s.mu.Unlock()
	if ok {
		return t.tx.Stmt(st), nil
	}
	st, err := t.tx.Prepare(q)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: prepare: %w", err)
	}
	return st, nil
}

func (t sqlTx) execResult(q string, args ...any) (sql.Result, error) {
	st, err := t.stmt(q)
	if err != nil {
		return nil, err
	}
	r, err := st.Exec(args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	return r, nil
}

func (t sqlTx) exec(q string, args ...any) error {
	_, err := t.execResult(q, args...)
	return err
}

func (t sqlTx) query(q string, args ...any) (*sql.Rows, error) {
	st, err := t.stmt(q)
	if err != nil {
		return nil, err
	}
	return st.Query(args...)
}

// row is a QueryRow whose prepare error surfaces at Scan.
type row struct {
	r   *sql.Row
	err error
}

func (r row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	return r.r.Scan(dest...)
}

func (t sqlTx) queryRow(q string, args ...any) row {
	st, err := t.stmt(q)
	if err != nil {
		return row{err: err}
	}
	return row{r: st.QueryRow(args...)}
}

func (t sqlTx) Nameplate(app, name string) (Nameplate, bool, error) {
	n := Nameplate{App: app, Name: name}
	err := t.queryRow("SELECT id, mailbox_id FROM nameplates WHERE app_id=? AND name=?", app, name).Scan(&n.ID, &n.MailboxID)
	if errors.Is(err, sql.ErrNoRows) {
		return Nameplate{}, false, nil
	}
	if err != nil {
		return Nameplate{}, false, fmt.Errorf("sqlite store: %w", err)
	}
	return n, true, nil
}

func (t sqlTx) strings(q string, args ...any) ([]string, error) {
	rows, err := t.query(q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("sqlite store: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func (t sqlTx) NameplateNames(app string) ([]string, error) {
	return t.strings("SELECT DISTINCT name FROM nameplates WHERE app_id=? ORDER BY name", app)
}

func (t sqlTx) CreateNameplate(app, name, mailboxID string) (int64, error) {
	r, err := t.execResult("INSERT INTO nameplates (app_id, name, mailbox_id) VALUES (?,?,?)", app, name, mailboxID)
	if err != nil {
		return 0, fmt.Errorf("sqlite store: %w", err)
	}
	id, err := r.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("sqlite store: %w", err)
	}
	return id, nil
}

func (t sqlTx) NameplatesForMailbox(app, mailboxID string) ([]Nameplate, error) {
	rows, err := t.query("SELECT id, name FROM nameplates WHERE app_id=? AND mailbox_id=? ORDER BY id", app, mailboxID)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	defer rows.Close()
	var out []Nameplate
	for rows.Next() {
		n := Nameplate{App: app, MailboxID: mailboxID}
		if err := rows.Scan(&n.ID, &n.Name); err != nil {
			return nil, fmt.Errorf("sqlite store: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

func (t sqlTx) NameplateSides(npid int64) ([]NameplateSide, error) {
	rows, err := t.query("SELECT side, claimed, added FROM nameplate_sides WHERE nameplates_id=? ORDER BY rowid", npid)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	defer rows.Close()
	var out []NameplateSide
	for rows.Next() {
		var s NameplateSide
		if err := rows.Scan(&s.Side, &s.Claimed, &s.Added); err != nil {
			return nil, fmt.Errorf("sqlite store: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func (t sqlTx) AddNameplateSide(npid int64, side string, added float64) error {
	return t.exec("INSERT INTO nameplate_sides (nameplates_id, claimed, side, added) VALUES (?,?,?,?)", npid, true, side, added)
}

func (t sqlTx) ReleaseNameplateSide(npid int64, side string) error {
	return t.exec("UPDATE nameplate_sides SET claimed=? WHERE nameplates_id=? AND side=?", false, npid, side)
}

func (t sqlTx) DeleteNameplate(npid int64) error {
	if err := t.exec("DELETE FROM nameplate_sides WHERE nameplates_id=?", npid); err != nil {
		return err
	}
	return t.exec("DELETE FROM nameplates WHERE id=?", npid)
}

func (t sqlTx) Mailbox(app, id string) (Mailbox, bool, error) {
	m := Mailbox{App: app, ID: id}
	err := t.queryRow("SELECT updated, for_nameplate FROM mailboxes WHERE app_id=? AND id=?", app, id).Scan(&m.Updated, &m.ForNameplate)
	if errors.Is(err, sql.ErrNoRows) {
		return Mailbox{}, false, nil
	}
	if err != nil {
		return Mailbox{}, false, fmt.Errorf("sqlite store: %w", err)
	}
	return m, true, nil
}

func (t sqlTx) Mailboxes(app string) ([]Mailbox, error) {
	rows, err := t.query("SELECT id, updated, for_nameplate FROM mailboxes WHERE app_id=? ORDER BY id", app)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	defer rows.Close()
	var out []Mailbox
	for rows.Next() {
		m := Mailbox{App: app}
		if err := rows.Scan(&m.ID, &m.Updated, &m.ForNameplate); err != nil {
			return nil, fmt.Errorf("sqlite store: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func (t sqlTx) CreateMailbox(m Mailbox) error {
	return t.exec("INSERT INTO mailboxes (app_id, id, updated, for_nameplate) VALUES (?,?,?,?)", m.App, m.ID, m.Updated, m.ForNameplate)
}

func (t sqlTx) TouchMailbox(id string, when float64) error {
	return t.exec("UPDATE mailboxes SET updated=? WHERE id=?", when, id)
}

func (t sqlTx) MailboxSides(id string) ([]MailboxSide, error) {
	rows, err := t.query("SELECT side, opened, added, mood FROM mailbox_sides WHERE mailbox_id=? ORDER BY rowid", id)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	defer rows.Close()
	var out []MailboxSide
	for rows.Next() {
		var s MailboxSide
		var mood sql.NullString
		if err := rows.Scan(&s.Side, &s.Opened, &s.Added, &mood); err != nil {
			return nil, fmt.Errorf("sqlite store: %w", err)
		}
		s.Mood = mood.String
		out = append(out, s)
	}
	return out, rows.Err()
}

func (t sqlTx) AddMailboxSide(id, side string, added float64) error {
	return t.exec("INSERT INTO mailbox_sides (mailbox_id, opened, side, added) VALUES (?,?,?,?)", id, true, side, added)
}

func (t sqlTx) CloseMailboxSide(id, side, mood string) error {
	var m any
	if mood != "" {
		m = mood
	}
	return t.exec("UPDATE mailbox_sides SET opened=?, mood=? WHERE mailbox_id=? AND side=?", false, m, id, side)
}

func (t sqlTx) DeleteMailbox(id string) error {
	for _, q := range []string{
		"DELETE FROM messages WHERE mailbox_id=?",
		"DELETE FROM mailbox_sides WHERE mailbox_id=?",
		"DELETE FROM mailboxes WHERE id=?",
	} {
		if err := t.exec(q, id); err != nil {
			return err
		}
	}
	return nil
}

func (t sqlTx) MailboxCount() (int, error) {
	var n int
	if err := t.queryRow("SELECT COUNT(*) FROM mailboxes").Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite store: %w", err)
	}
	return n, nil
}

func (t sqlTx) Apps() ([]string, error) {
	return t.strings("SELECT app_id FROM nameplates UNION SELECT app_id FROM mailboxes ORDER BY 1")
}

// AddMessage drops messages for a mailbox that no longer exists, like
// MemoryStore.
func (t sqlTx) AddMessage(app, mailboxID string, m Message) error {
	var id any
	if len(m.ID) > 0 {
		id = string(m.ID)
	}
	return t.exec("INSERT INTO messages (app_id, mailbox_id, side, phase, body, server_rx, msg_id)"+
		" SELECT ?,?,?,?,?,?,? WHERE EXISTS (SELECT 1 FROM mailboxes WHERE app_id=? AND id=?)",
		app, mailboxID, m.Side, m.Phase, m.Body, m.ServerRx, id, app, mailboxID)
}

func (t sqlTx) Messages(app, mailboxID string) ([]Message, error) {
	rows, err := t.query("SELECT side, phase, body, server_rx, msg_id FROM messages"+
		" WHERE app_id=? AND mailbox_id=? ORDER BY server_rx ASC, rowid ASC", app, mailboxID)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		var m Message
		var id sql.NullString
		if err := rows.Scan(&m.Side, &m.Phase, &m.Body, &m.ServerRx, &id); err != nil {
			return nil, fmt.Errorf("sqlite store: %w", err)
		}
		if id.Valid {
			m.ID = json.RawMessage(id.String)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func (t sqlTx) MessageStats(app, mailboxID string) (int, int64, error) {
	var n int
	var b int64
	err := t.queryRow("SELECT COUNT(*), COALESCE(SUM(LENGTH(CAST(body AS BLOB))),0) FROM messages WHERE app_id=? AND mailbox_id=?", app, mailboxID).Scan(&n, &b)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite store: %w", err)
	}
	return n, b, nil
}

func (t sqlTx) AddUsage(u Usage) error {
	switch u.Kind {
	case UsageNameplate:
		return t.exec("INSERT INTO usage_nameplates (app_id, started, waiting_time, total_time, result) VALUES (?,?,?,?,?)",
			u.App, u.Started, u.WaitingTime, u.TotalTime, u.Result)
	case UsageMailbox:
		return t.exec("INSERT INTO usage_mailboxes (app_id, for_nameplate, started, total_time, waiting_time, result) VALUES (?,?,?,?,?,?)",
			u.App, u.ForNameplate, u.Started, u.TotalTime, u.WaitingTime, u.Result)
	}
	return fmt.Errorf("sqlite store: unknown usage kind %q", u.Kind)
}

func (t sqlTx) AddClientVersion(v ClientVersion) error {
	return t.exec("INSERT INTO client_versions (app_id, side, connect_time, implementation, version) VALUES (?,?,?,?,?)",
		v.App, v.Side, v.ConnectTime, v.Implementation, v.Version)
}

func (t sqlTx) SetCurrent(c Current) error {
	if err := t.exec("DELETE FROM current"); err != nil {
		return err
	}
	return t.exec("INSERT INTO current (rebooted, updated, blur_time, connections_websocket) VALUES (?,?,?,?)",
		c.Rebooted, c.Updated, c.BlurTime, c.Connections)
}

func (t sqlTx) UsageRecords() ([]Usage, error) {
	var out []Usage
	rows, err := t.query("SELECT 'nameplate', app_id, 0, started, waiting_time, total_time, result, rowid FROM usage_nameplates" +
		" UNION ALL SELECT 'mailbox', app_id, for_nameplate, started, waiting_time, total_time, result, rowid FROM usage_mailboxes")
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var u Usage
		var wt sql.NullFloat64
		var rowid int64
		if err := rows.Scan(&u.Kind, &u.App, &u.ForNameplate, &u.Started, &wt, &u.TotalTime, &u.Result, &rowid); err != nil {
			return nil, fmt.Errorf("sqlite store: %w", err)
		}
		if wt.Valid {
			w := wt.Float64
			u.WaitingTime = &w
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func (t sqlTx) ClientVersions() ([]ClientVersion, error) {
	rows, err := t.query("SELECT app_id, side, connect_time, implementation, version FROM client_versions ORDER BY rowid")
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	defer rows.Close()
	var out []ClientVersion
	for rows.Next() {
		var v ClientVersion
		var impl, ver sql.NullString
		if err := rows.Scan(&v.App, &v.Side, &v.ConnectTime, &impl, &ver); err != nil {
			return nil, fmt.Errorf("sqlite store: %w", err)
		}
		if impl.Valid {
			v.Implementation = &impl.String
		}
		if ver.Valid {
			v.Version = &ver.String
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (t sqlTx) Current() (Current, error) {
	var c Current
	err := t.queryRow("SELECT rebooted, updated, blur_time, connections_websocket FROM current").Scan(&c.Rebooted, &c.Updated, &c.BlurTime, &c.Connections)
	if errors.Is(err, sql.ErrNoRows) {
		return Current{}, nil
	}
	if err != nil {
		return Current{}, fmt.Errorf("sqlite store: %w", err)
	}
	return c, nil
}
