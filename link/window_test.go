package link

import (
	"fmt"
	"testing"
	"time"
)

func TestNextIDSequence(t *testing.T) {
	id := uint8(0)
	seen := map[uint8]int{}
	for range 255 * 4 {
		id = NextID(id)
		seen[id]++
	}
	if seen[0] != 0 {
		t.Fatal("00 reused after the first message")
	}
	for i := 1; i < 256; i++ {
		if seen[uint8(i)] != 4 {
			t.Fatalf("id %02x used %d times in 4 cycles", i, seen[uint8(i)])
		}
	}
	if NextID(0xff) != 1 || NextID(0) != 1 || NextID(0x7f) != 0x80 {
		t.Fatal("wrap-around wrong")
	}
}

// sender models a sender's id sequence.
type sender struct{ next uint8 }

func (s *sender) id() uint8 { id := s.next; s.next = NextID(id); return id }

// receiveAll runs ids through a window as the link does and returns how
// many were delivered.
func deliver(w *Window, id uint8, p string) bool {
	return deliverOn(w, id, p, true)
}

// deliverOn is deliver with the message's place on its socket: first or
// after others.
func deliverOn(w *Window, id uint8, p string, first bool) bool {
	v := checkOn(w, id, p, first)
	if v == duplicate {
		return false
	}
	w.accept(id, []byte(p), v, testNow)
	return true
}

// testNow is the time of the window tests' checks and accepts: an
// identical 00 with no greeting nor evidence is within the horizon.
var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// checkOn checks a message without greeting, at testNow, with a horizon
// of an hour.
func checkOn(w *Window, id uint8, p string, first bool) verdict {
	v, _ := w.check(id, []byte(p), first, GreetNone, testNow, time.Hour)
	return v
}

// Over tens of thousands of ids (many wraps), every new message is
// delivered once and every repeat within the in-flight span is dropped.
func TestWindowLongRun(t *testing.T) {
	var w Window
	var s sender
	type msg struct {
		id uint8
		p  string
	}
	var sent []msg
	for i := range 20000 {
		m := msg{s.id(), fmt.Sprint("m", i)}
		if !deliver(&w, m.id, m.p) {
			t.Fatalf("message %d (id %02x) not delivered", i, m.id)
		}
		sent = append(sent, m)
		// Repeat each of the last MaxInFlight messages: all duplicates.
		if i%97 == 0 {
			for back := 0; back < DefaultMaxInFlight && back < len(sent); back++ {
				r := sent[len(sent)-1-back]
				if deliver(&w, r.id, r.p) {
					t.Fatalf("repeat of id %02x (%d back) delivered at message %d", r.id, back, i)
				}
			}
		}
	}
}

func TestWindowZeroRule(t *testing.T) {
	var w Window
	if !deliver(&w, 0, "boot") {
		t.Fatal("first 00 not delivered")
	}
	if deliver(&w, 0, "boot") {
		t.Fatal("identical repeat of 00 delivered twice")
	}
	if v := checkOn(&w, 0, "other", true); v != restart {
		t.Fatalf("00 with another payload: %v, want restart", v)
	}
	if !deliver(&w, 1, "a") || deliver(&w, 1, "a") {
		t.Fatal("01 handling")
	}
	// The sender moved on past 00: a 00 now is a restart, even identical.
	if v := checkOn(&w, 0, "boot", true); v != restart {
		t.Fatalf("00 after 01: %v, want restart", v)
	}
	deliver(&w, 0, "boot")
	// A restart clears the window: the new 01 is delivered.
	if !deliver(&w, 1, "a") {
		t.Fatal("01 after a restart not delivered")
	}
}

// A sender restart in the middle of a long run: the new life's messages
// are all delivered although their ids were used by the old life.
func TestWindowAcrossRestart(t *testing.T) {
	var w Window
	for life := range 5 {
		var s sender
		for i := range 1000 + life*37 {
			id := s.id()
			if !deliver(&w, id, fmt.Sprint(life, "/", i)) {
				t.Fatalf("life %d message %d (id %02x) not delivered", life, i, id)
			}
		}
	}
}

func TestWindowMarshal(t *testing.T) {
	var w Window
	for i := range 300 {
		deliver(&w, uint8(i%200), "x")
	}
	b, err := w.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var w2 Window
	if err := w2.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if w2 != w {
		t.Fatalf("round trip differs:\n%+v\n%+v", w, w2)
	}
	if err := w2.UnmarshalBinary(b[:10]); err == nil {
		t.Fatal("short encoding accepted")
	}
}

// A sender without wait on one socket: its 00 may come after 01 (overtaken)
// or be repeated after later ids; neither is a restart, and no repeat is
// delivered twice.
func TestWindowZeroOnSameSocket(t *testing.T) {
	var w Window
	if !deliverOn(&w, 1, "b", true) || !deliverOn(&w, 0, "a", false) {
		t.Fatal("overtaken 00 not delivered")
	}
	if v := checkOn(&w, 1, "b", false); v != duplicate {
		t.Fatal("the overtaken 00 cleared the window: 01 would be delivered again")
	}
	if deliverOn(&w, 2, "c", false); deliverOn(&w, 0, "a", false) {
		t.Fatal("repeat of 00 after later ids on the same socket delivered twice")
	}
	// On a new socket, an identical 00 after the sender moved on is a
	// restart; so is a 00 with another payload, wherever it comes.
	if v := checkOn(&w, 0, "a", true); v != restart {
		t.Fatalf("00 first on a new socket: %v, want restart", v)
	}
	if v := checkOn(&w, 0, "new", false); v != restart {
		t.Fatalf("00 with a new payload: %v, want restart", v)
	}
}
