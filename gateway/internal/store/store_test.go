package store_test

import (
	"errors"
	"testing"

	"github.com/tether-iot/tether/gateway/internal/store"
	"github.com/tether-iot/tether/link"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestQueueSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := store.Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Open(dir, 0); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second Open: got %v, want ErrLocked", err)
	}
	for _, p := range []string{"one", "two", "three"} {
		if _, ok, err := s.Enqueue("n", p, store.Origin{}, store.Limit{}); err != nil || !ok {
			t.Fatal(ok, err)
		}
	}
	head, ok, err := s.Head("n")
	if err != nil || !ok || head.Payload != "one" || head.Assigned {
		t.Fatalf("Head: %+v %v %v", head, ok, err)
	}
	if err := s.Assign("n", head.Seq, 0x41); err != nil {
		t.Fatal(err)
	}
	var w link.Window // a window is saved and read back whole
	if err := s.SaveWindow("n", w); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = store.Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	snap, err := s.Snapshot("n")
	if err != nil || snap.Next != 0x42 {
		t.Fatalf("Snapshot after reopen: %+v %v, want Next 42", snap, err)
	}
	head, _, _ = s.Head("n")
	if !head.Assigned || head.ID != 0x41 || head.Payload != "one" {
		t.Fatalf("Head after reopen: %+v", head)
	}
	if err := s.Remove("n", head.Seq); err != nil {
		t.Fatal(err)
	}
	if n := s.Len("n"); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}
	if ids, _ := s.Nodes(); len(ids) != 1 || ids[0] != "n" {
		t.Fatalf("Nodes = %v", ids)
	}
}

// TestRedelivery: a broker's redelivery (DUP) of the last message stored
// from a publisher is recognised; a new message is not.
func TestRedelivery(t *testing.T) {
	s, err := store.Open(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o := store.Origin{Client: "broker", PacketID: 7, Topic: "tether/n/down"}
	if _, ok, _ := s.Enqueue("n", "hello", o, store.Limit{}); !ok {
		t.Fatal("first copy not stored")
	}
	o.Dup = true
	if _, ok, _ := s.Enqueue("n", "hello", o, store.Limit{}); ok {
		t.Fatal("redelivery stored twice")
	}
	if _, ok, _ := s.Enqueue("n", "other", o, store.Limit{}); !ok {
		t.Fatal("a different message with the same packet id was taken for a redelivery")
	}
	o.Dup, o.PacketID = false, 8
	if _, ok, _ := s.Enqueue("n", "other", o, store.Limit{}); !ok {
		t.Fatal("a new message (no DUP) was dropped")
	}
	if n := s.Len("n"); n != 3 {
		t.Fatalf("Len = %d, want 3", n)
	}
}
