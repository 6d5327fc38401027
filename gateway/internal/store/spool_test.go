package store_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/tether-iot/tether/gateway/internal/store"
	"github.com/tether-iot/tether/link"
)

// spoolUp spools payload for node id with its up topic and a route.
func spoolUp(s *store.Store, id, payload string, lim store.Limit) error {
	return spoolUpW(s, id, payload, link.Window{}, lim)
}

func spoolUpW(s *store.Store, id, payload string, w link.Window, lim store.Limit) error {
	_, err := s.SpoolUp(id, w, store.Up{Payload: payload, Pubs: []store.Pub{
		{Kind: 0, Topic: "tether/" + id + "/up"},
		{Kind: 1, Topic: "tether/other/down"},
	}}, lim)
	return err
}

// TestSpool: spooled messages come back in order with their topics,
// across a reopen; the window is saved with each; the spool has its own
// depth, bounded by Limit.Messages, and counts against Limit.TotalBytes
// with the queues (both ways).
func TestSpool(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	lim := store.Limit{Messages: 3, Bytes: 1, TotalBytes: 20} // Bytes is the queues' only
	qlim := store.Limit{Messages: 3, TotalBytes: 20}
	var w link.Window // any window but the zero one
	b, _ := w.MarshalBinary()
	b[1], b[33] = 0x80, 4 // after the version byte: the first bits, the flags (any)
	if err := w.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SpoolUp("n", link.Window{}, store.Up{Payload: "first", Pubs: []store.Pub{{Kind: 0, Topic: "tether/n/up"}}}, lim); err != nil {
		t.Fatal(err)
	}
	if err := spoolUp(s, "n", "second", lim); err != nil {
		t.Fatal(err)
	}
	if err := spoolUpW(s, "n", "third", w, lim); err != nil {
		t.Fatal(err)
	}
	if err := spoolUp(s, "n", "x", lim); !errors.Is(err, store.ErrFull) {
		t.Fatalf("a fourth message in a spool of 3: %v, want ErrFull", err)
	}
	if d := s.UpDepth("n"); d != (store.Depth{Messages: 3, Bytes: 16}) {
		t.Fatalf("UpDepth = %+v", d)
	}
	// 16 bytes spooled: a queue has 4 bytes left, and the other way.
	if _, _, err := s.Enqueue("m", "12345", store.Origin{}, qlim); !errors.Is(err, store.ErrStoreFull) {
		t.Fatalf("a queued message past the total with the spools: %v, want ErrStoreFull", err)
	}
	if _, _, err := s.Enqueue("m", "1234", store.Origin{}, qlim); err != nil {
		t.Fatal(err)
	}
	if err := spoolUp(s, "o", "x", lim); !errors.Is(err, store.ErrStoreFull) {
		t.Fatalf("a spooled message past the total with the queues: %v, want ErrStoreFull", err)
	}
	if u := s.Used(); u != (store.Depth{Messages: 4, Bytes: 20}) {
		t.Errorf("Used = %+v", u)
	}
	if tot := s.Total(); tot != (store.Depth{Messages: 1, Bytes: 4}) {
		t.Errorf("Total (queues only) = %+v", tot)
	}
	s.Close()

	s = open(t, dir)
	defer s.Close()
	snap, err := s.Snapshot("n")
	if err != nil {
		t.Fatal(err)
	}
	if snap.Window != w {
		t.Errorf("window not saved with the last spooled message")
	}
	if got := s.Spools(); !equal(got, []string{"n"}) {
		t.Errorf("Spools after reopen = %v", got)
	}
	if tot := s.UpTotal(); tot != (store.Depth{Messages: 3, Bytes: 16}) {
		t.Errorf("UpTotal after reopen = %+v", tot)
	}
	var got []string
	for {
		u, ok, err := s.UpHead("n")
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		want := []store.Pub{{Kind: 0, Topic: "tether/n/up"}, {Kind: 1, Topic: "tether/other/down"}}
		if u.Payload == "first" {
			want = want[:1]
		}
		if !reflect.DeepEqual(u.Pubs, want) {
			t.Errorf("%s: topics %+v, want %+v", u.Payload, u.Pubs, want)
		}
		got = append(got, u.Payload)
		if err := s.RemoveUp("n", u.Seq); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveUp("n", u.Seq); err != nil {
			t.Fatalf("removing twice: %v", err)
		}
	}
	if !equal(got, []string{"first", "second", "third"}) {
		t.Fatalf("spool = %v", got)
	}
	if d := s.UpTotal(); d != (store.Depth{}) || len(s.Spools()) != 0 {
		t.Errorf("after draining: UpTotal %+v, Spools %v", d, s.Spools())
	}
	if got := drain(t, s, "m"); !equal(got, []string{"1234"}) {
		t.Errorf("the queue beside the spool = %v", got)
	}
}
