package web

import (
	"bytes"
	"testing"

	"github.com/tether-iot/tether/internal/harness/testutil"
)

// TestSlowSubscriber: a subscriber whose queue is full is dropped, and the
// others still get every message.
func TestSlowSubscriber(t *testing.T) {
	s, err := New(Config{SubscriberQueue: 2, Logger: testutil.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	slow := &subscriber{ch: make(chan []byte, 2), gone: make(chan struct{})}
	fast := &subscriber{ch: make(chan []byte, 2), gone: make(chan struct{})}
	for _, sub := range []*subscriber{slow, fast} {
		s.hub.join <- sub
		if msg := <-sub.ch; !bytes.HasPrefix(msg, []byte("event: status\n")) {
			t.Fatalf("first message %q, want a status", msg)
		}
	}
	for i := range 3 {
		s.hub.broadcast([]byte{byte('a' + i)})
		<-fast.ch
	}
	select {
	case <-slow.gone:
	default:
		t.Fatal("a subscriber that read nothing was not dropped")
	}
	select {
	case <-fast.gone:
		t.Fatal("a subscriber that kept up was dropped")
	default:
	}
	if got := len(slow.ch); got != 2 {
		t.Errorf("slow subscriber holds %d messages, want its queue's 2", got)
	}
	s.hub.leave(slow) // a second drop is harmless
}
