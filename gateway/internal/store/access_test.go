package store_test

import (
	"testing"

	"github.com/tether-iot/tether/gateway/internal/store"
)

// Access flags are kept across a restart; an idle node's forgetting keeps
// them (an operator's decision, a TLS-only ID); Forget drops them.
func TestAccessFlags(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.MarkSeen("pump1"))
	must(s.SetAccess("pump1", store.FlagApproved|store.FlagTLS, 0))
	must(s.SetAccess("gone", store.FlagDenied, 0))
	must(s.SetAccess("gone", 0, store.FlagDenied)) // all clear: forgotten in memory
	if got := s.Access("gone"); got != 0 {
		t.Fatalf("gone: %b", got)
	}
	if gone, err := s.ForgetIdle("pump1", false); err != nil || !gone {
		t.Fatalf("ForgetIdle: %v, %v", gone, err)
	}
	if s.Seen("pump1") || s.Access("pump1") != store.FlagApproved|store.FlagTLS {
		t.Fatalf("after ForgetIdle: seen %v, flags %b", s.Seen("pump1"), s.Access("pump1"))
	}
	s.Close()
	s = open(t, dir)
	if got := s.Access("pump1"); got != store.FlagApproved|store.FlagTLS {
		t.Fatalf("after a restart: flags %b", got)
	}
	if m := s.WithAccess(store.FlagTLS); len(m) != 1 {
		t.Fatalf("WithAccess: %v", m)
	}
	if _, _, err := s.Forget("pump1"); err != nil {
		t.Fatal(err)
	}
	if got := s.Access("pump1"); got != 0 {
		t.Fatalf("after Forget: flags %b", got)
	}
	s.Close()
	s = open(t, dir)
	defer s.Close()
	if got := s.Access("pump1"); got != 0 {
		t.Fatalf("after Forget and a restart: flags %b", got)
	}
}
