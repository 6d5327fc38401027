package store_test

import (
	"testing"

	"github.com/tether-iot/tether/gateway/internal/store"
	"github.com/tether-iot/tether/link"
)

// ForgetIdle deletes a node that never sent a message and has nothing
// queued; it keeps one with a window (unless whole) or a queue. Forget
// deletes everything and says what it deleted.
func TestForget(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.MarkSeen("idle"))
	must(s.MarkSeen("sent"))
	must(s.SaveWindow("sent", link.Window{}))
	must(s.MarkSeen("queued"))
	if _, _, err := s.Enqueue("queued", "m", store.Origin{}, store.Limit{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id          string
		whole, gone bool
	}{
		{"idle", false, true},
		{"sent", false, false},
		{"queued", true, false},
		{"sent", true, true},
		{"never", false, false},
	} {
		gone, err := s.ForgetIdle(tc.id, tc.whole)
		if err != nil || gone != tc.gone {
			t.Errorf("ForgetIdle(%q, %v) = %v, %v; want %v", tc.id, tc.whole, gone, err, tc.gone)
		}
		if gone && s.Seen(tc.id) {
			t.Errorf("%q still seen", tc.id)
		}
	}
	q, sp, err := s.Forget("queued")
	if err != nil || q != 1 || sp != 0 || s.Len("queued") != 0 || s.Total().Messages != 0 || s.Seen("queued") {
		t.Errorf("Forget: %d queued, %d spooled, %v; then len %d, total %+v", q, sp, err, s.Len("queued"), s.Total())
	}
	ids, err := s.Nodes()
	if err != nil || len(ids) != 0 {
		t.Errorf("nodes left: %q, %v", ids, err)
	}
}
