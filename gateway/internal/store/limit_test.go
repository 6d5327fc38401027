package store_test

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"

	"github.com/tether-iot/tether/gateway/internal/store"
	bolt "go.etcd.io/bbolt"
)

func open(t *testing.T, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// drain removes and returns node id's queue, oldest first.
func drain(t *testing.T, s *store.Store, id string) []string {
	t.Helper()
	var got []string
	for {
		it, ok, err := s.Head(id)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return got
		}
		got = append(got, it.Payload)
		if err := s.Remove(id, it.Seq); err != nil {
			t.Fatal(err)
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestLimit: a full queue refuses the newest message with ErrFull and
// keeps what it has, in order; room made by Remove is usable at once;
// the byte bound counts payload bytes; queues are bounded one by one.
func TestLimit(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	lim := store.Limit{Messages: 3}
	for _, p := range []string{"a", "bb", "ccc"} {
		if _, ok, err := s.Enqueue("n", p, store.Origin{}, lim); err != nil || !ok {
			t.Fatalf("Enqueue %q: %v %v", p, ok, err)
		}
	}
	if _, ok, err := s.Enqueue("n", "dddd", store.Origin{}, lim); !errors.Is(err, store.ErrFull) || ok {
		t.Fatalf("Enqueue past the limit: %v %v, want ErrFull", ok, err)
	}
	if d := s.Depth("n"); d != (store.Depth{Messages: 3, Bytes: 6}) {
		t.Fatalf("Depth = %+v, want 3 messages, 6 bytes", d)
	}
	// Another node is not held up by n's full queue.
	if _, _, err := s.Enqueue("m", "x", store.Origin{}, lim); err != nil {
		t.Fatal(err)
	}
	if d := s.Total(); d != (store.Depth{Messages: 4, Bytes: 7}) {
		t.Fatalf("Total = %+v, want 4 messages, 7 bytes", d)
	}
	head, _, _ := s.Head("n")
	if err := s.Remove("n", head.Seq); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("n", head.Seq); err != nil { // already gone: no change
		t.Fatal(err)
	}
	if _, _, err := s.Enqueue("n", "e", store.Origin{}, lim); err != nil {
		t.Fatalf("Enqueue after a Remove: %v", err)
	}
	if got := drain(t, s, "n"); !equal(got, []string{"bb", "ccc", "e"}) {
		t.Fatalf("queue = %q, want bb ccc e", got)
	}
	if d := s.Depth("n"); d != (store.Depth{}) {
		t.Fatalf("Depth after draining = %+v", d)
	}

	// The byte bound: 5 bytes hold "abc" and "de", not "f".
	blim := store.Limit{Messages: 100, Bytes: 5}
	for _, p := range []string{"abc", "de"} {
		if _, _, err := s.Enqueue("b", p, store.Origin{}, blim); err != nil {
			t.Fatalf("Enqueue %q: %v", p, err)
		}
	}
	if _, _, err := s.Enqueue("b", "f", store.Origin{}, blim); !errors.Is(err, store.ErrFull) {
		t.Fatalf("Enqueue past the byte bound: %v, want ErrFull", err)
	}

	// A redelivery of a message already stored is recognised even when
	// the queue is full: it is not a drop.
	o := store.Origin{Client: "broker", PacketID: 9, Topic: "tether/b/down"}
	if err := s.Remove("m", 1); err != nil { // m's "x": room for one
		t.Fatal(err)
	}
	if _, ok, err := s.Enqueue("m", "y", o, store.Limit{Messages: 1}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	o.Dup = true
	if _, ok, err := s.Enqueue("m", "y", o, store.Limit{Messages: 1}); ok || err != nil {
		t.Fatalf("redelivery into a full queue: %v %v, want not stored and no error", ok, err)
	}
}

// TestDepthSurvivesReopen: depths are stored with the queues.
func TestDepthSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	for _, p := range []string{"one", "two"} {
		if _, _, err := s.Enqueue("n", p, store.Origin{}, store.Limit{}); err != nil {
			t.Fatal(err)
		}
	}
	s.Enqueue("m", "three", store.Origin{}, store.Limit{})
	s.Close()
	s = open(t, dir)
	defer s.Close()
	if d := s.Depth("n"); d != (store.Depth{Messages: 2, Bytes: 6}) {
		t.Fatalf("Depth after reopen = %+v", d)
	}
	if d := s.Total(); d != (store.Depth{Messages: 3, Bytes: 11}) {
		t.Fatalf("Total after reopen = %+v", d)
	}
}

// TestDepthOfOldStore: a store written before depths were kept (queue
// items, no depth) is counted at Open.
func TestDepthOfOldStore(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, store.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		nodes, err := tx.CreateBucket([]byte("nodes"))
		if err != nil {
			return err
		}
		for _, id := range []string{"a", "b", "empty"} {
			b, err := nodes.CreateBucket([]byte(id))
			if err != nil {
				return err
			}
			q, err := b.CreateBucket([]byte("queue"))
			if err != nil {
				return err
			}
			if id == "empty" {
				continue
			}
			for i, p := range []string{"hello", "world!"} {
				// flags, link id, payload: the first one was assigned id 41.
				v := append([]byte{byte(1 - min(i, 1)), 0x41}, p...)
				if err := q.Put(binary.BigEndian.AppendUint64(nil, uint64(i+1)), v); err != nil {
					return err
				}
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	for range 2 { // counted, then read back
		s := open(t, dir)
		if d := s.Depth("a"); d != (store.Depth{Messages: 2, Bytes: 11}) {
			t.Fatalf("Depth of an old queue = %+v, want 2 messages, 11 bytes", d)
		}
		if d := s.Total(); d != (store.Depth{Messages: 4, Bytes: 22}) {
			t.Fatalf("Total = %+v", d)
		}
		if n := s.Len("empty"); n != 0 {
			t.Fatalf("Len(empty) = %d", n)
		}
		s.Close()
	}
	s := open(t, dir)
	defer s.Close()
	if got := drain(t, s, "a"); !equal(got, []string{"hello", "world!"}) {
		t.Fatalf("old queue = %q", got)
	}
	if d := s.Total(); d != (store.Depth{Messages: 2, Bytes: 11}) {
		t.Fatalf("Total after draining a = %+v", d)
	}
}

// TestTotalLimit: past Limit.TotalBytes (all the queues together) a new
// message is refused with ErrStoreFull, whatever its node; room made by
// any node's Remove is usable at once.
func TestTotalLimit(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	lim := store.Limit{Messages: 10, TotalBytes: 10}
	for _, m := range []struct{ id, p string }{{"a", "1234"}, {"b", "1234"}, {"c", "12"}} {
		if _, _, err := s.Enqueue(m.id, m.p, store.Origin{}, lim); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Enqueue("d", "x", store.Origin{}, lim); !errors.Is(err, store.ErrStoreFull) {
		t.Fatalf("past the total: %v, want ErrStoreFull", err)
	}
	if _, _, err := s.Enqueue("a", "x", store.Origin{}, store.Limit{Messages: 1, TotalBytes: 10}); !errors.Is(err, store.ErrFull) {
		t.Fatalf("a full queue in a full store: %v, want ErrFull (the node's own bound first)", err)
	}
	if q := s.Queues(); !equal(q, []string{"a", "b", "c"}) {
		t.Errorf("Queues = %v, want a b c", q)
	}
	if got := drain(t, s, "c"); !equal(got, []string{"12"}) {
		t.Fatalf("c = %v", got)
	}
	if _, _, err := s.Enqueue("d", "xy", store.Origin{}, lim); err != nil {
		t.Fatalf("after c drained: %v", err)
	}
	if tot := s.Total(); tot.Bytes != 10 || tot.Messages != 3 {
		t.Errorf("total = %+v, want 3 messages, 10 bytes", tot)
	}
}

// TestSeen: MarkSeen survives a reopen; a store written before MarkSeen
// counts a node with sequence state as seen.
func TestSeen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if s.Seen("a") {
		t.Fatal("a seen in a new store")
	}
	if err := s.MarkSeen("a"); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveNext("old", 5); err != nil { // as an older gateway did
		t.Fatal(err)
	}
	if _, _, err := s.Enqueue("stranger", "x", store.Origin{}, store.Limit{}); err != nil {
		t.Fatal(err)
	}
	if !s.Seen("a") || s.Seen("stranger") {
		t.Errorf("seen: a %v, stranger %v; want true, false", s.Seen("a"), s.Seen("stranger"))
	}
	s.Close()
	s = open(t, dir)
	defer s.Close()
	for id, want := range map[string]bool{"a": true, "old": true, "stranger": false, "none": false} {
		if s.Seen(id) != want {
			t.Errorf("after a reopen, Seen(%q) = %v, want %v", id, !want, want)
		}
	}
}
