package server

import (
	"context"
	"testing"
)

// TestMemoryStoreHistoryRing: the memory store keeps the last maxMemUsage
// usage and client-version records, oldest first.
func TestMemoryStoreHistoryRing(t *testing.T) {
	s := NewMemoryStore()
	total := maxMemUsage + 7
	err := s.Update(context.Background(), func(tx Tx) error {
		for i := range total {
			if err := tx.AddUsage(Usage{Kind: UsageMailbox, Started: float64(i)}); err != nil {
				return err
			}
			if err := tx.AddClientVersion(ClientVersion{ConnectTime: float64(i)}); err != nil {
				return err
			}
		}
		us, err := tx.UsageRecords()
		if err != nil {
			return err
		}
		vs, err := tx.ClientVersions()
		if err != nil {
			return err
		}
		if len(us) != maxMemUsage || len(vs) != maxMemUsage {
			t.Fatalf("kept %d usage, %d versions; want %d", len(us), len(vs), maxMemUsage)
		}
		for i := range us {
			want := float64(total - maxMemUsage + i)
			if us[i].Started != want || vs[i].ConnectTime != want {
				t.Fatalf("record %d: usage %v version %v, want %v", i, us[i].Started, vs[i].ConnectTime, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
