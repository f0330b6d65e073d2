package server_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/wormhole-go/wormhole/rendezvous/server"
)

// TestStoreConformance runs the same row operations on both stores and
// compares what they return.
func TestStoreConformance(t *testing.T) {
	sq, err := server.OpenSQLiteStore(t.TempDir() + "/db.sqlite")
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	mem := server.NewMemoryStore()
	defer mem.Close()
	type snapshot struct {
		Names      []string
		NP         server.Nameplate
		NPOK       bool
		NPSides    []server.NameplateSide
		ForMailbox []server.Nameplate
		MB         server.Mailbox
		MBSides    []server.MailboxSide
		Msgs       []server.Message
		Count      int
		Bytes      int64
		Apps       []string
		Usage      []server.Usage
		Versions   []server.ClientVersion
		Current    server.Current
		Gone       bool
	}
	run := func(st server.Store) snapshot {
		var s snapshot
		ctx := context.Background()
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(st.Update(ctx, func(tx server.Tx) error {
			must(tx.CreateMailbox(server.Mailbox{App: "a", ID: "m1", Updated: 10, ForNameplate: true}))
			id, err := tx.CreateNameplate("a", "4", "m1")
			must(err)
			must(tx.AddNameplateSide(id, "s1", 10))
			must(tx.AddNameplateSide(id, "s2", 12.5))
			must(tx.ReleaseNameplateSide(id, "s1"))
			must(tx.AddMailboxSide("m1", "s1", 10))
			must(tx.AddMailboxSide("m1", "s2", 12.5))
			must(tx.CloseMailboxSide("m1", "s2", "scary"))
			must(tx.TouchMailbox("m1", 20))
			must(tx.AddMessage("a", "m1", server.Message{Side: "s1", Phase: "pake", Body: "abcd", ServerRx: 11, ID: json.RawMessage(`"0001"`)}))
			must(tx.AddMessage("a", "m1", server.Message{Side: "s2", Phase: "1", Body: "ef", ServerRx: 10.5, ID: json.RawMessage(`7`)}))
			must(tx.AddMessage("a", "nope", server.Message{Side: "s2", Phase: "1", Body: "ef", ServerRx: 10.5}))
			must(tx.CreateMailbox(server.Mailbox{App: "b", ID: "m2", Updated: 1}))
			w := 2.5
			must(tx.AddUsage(server.Usage{Kind: server.UsageNameplate, App: "a", Started: 10, WaitingTime: &w, TotalTime: 3, Result: "happy"}))
			must(tx.AddUsage(server.Usage{Kind: server.UsageMailbox, App: "a", ForNameplate: true, Started: 10, TotalTime: 3, Result: "lonely"}))
			impl := "python"
			must(tx.AddClientVersion(server.ClientVersion{App: "a", Side: "s1", ConnectTime: 9, Implementation: &impl}))
			must(tx.SetCurrent(server.Current{Rebooted: 1, Updated: 2, Connections: 3}))
			must(tx.SetCurrent(server.Current{Rebooted: 1, Updated: 5, Connections: 4}))
			return nil
		}))
		must(st.Update(ctx, func(tx server.Tx) error {
			s.Names, err = tx.NameplateNames("a")
			must(err)
			s.NP, s.NPOK, err = tx.Nameplate("a", "4")
			must(err)
			s.NPSides, err = tx.NameplateSides(s.NP.ID)
			must(err)
			s.ForMailbox, err = tx.NameplatesForMailbox("a", "m1")
			must(err)
			s.MB, _, err = tx.Mailbox("a", "m1")
			must(err)
			s.MBSides, err = tx.MailboxSides("m1")
			must(err)
			s.Msgs, err = tx.Messages("a", "m1")
			must(err)
			s.Count, s.Bytes, err = tx.MessageStats("a", "m1")
			must(err)
			s.Apps, err = tx.Apps()
			must(err)
			s.Usage, err = tx.UsageRecords()
			must(err)
			s.Versions, err = tx.ClientVersions()
			must(err)
			s.Current, err = tx.Current()
			must(err)
			must(tx.DeleteNameplate(s.NP.ID))
			must(tx.DeleteMailbox("m1"))
			_, ok1, _ := tx.Nameplate("a", "4")
			_, ok2, _ := tx.Mailbox("a", "m1")
			msgs, _ := tx.Messages("a", "m1")
			s.Gone = !ok1 && !ok2 && len(msgs) == 0
			return nil
		}))
		return s
	}
	a, b := run(mem), run(sq)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("stores differ:\nmemory %+v\nsqlite %+v", a, b)
	}
	if !a.Gone || a.Count != 2 || a.Bytes != 6 || a.Msgs[0].Phase != "1" || len(a.Apps) != 2 || a.Current.Updated != 5 {
		t.Fatalf("unexpected snapshot %+v", a)
	}
}
