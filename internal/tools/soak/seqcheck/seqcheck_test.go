package seqcheck

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestChecker(t *testing.T) {
	var c Checker
	steps := []struct {
		n    uint64
		want Result
	}{
		{0, New}, {1, New}, {3, New}, {2, Late}, {3, Duplicate}, {200, New}, {0, Duplicate},
	}
	for _, s := range steps {
		if got := c.Add(s.n); got != s.want {
			t.Fatalf("Add(%d) = %v, want %v", s.n, got, s.want)
		}
	}
	if c.Received() != 5 || c.Duplicates() != 2 || c.Late() != 1 {
		t.Errorf("received %d duplicates %d late %d, want 5 2 1", c.Received(), c.Duplicates(), c.Late())
	}
	if c.Highest() != 201 || c.Gaps() != 196 {
		t.Errorf("highest %d gaps %d, want 201 196", c.Highest(), c.Gaps())
	}
	if got := c.Missing(4); got != 0 {
		t.Errorf("Missing(4) = %d, want 0", got)
	}
	if got := c.Missing(6); got != 2 {
		t.Errorf("Missing(6) = %d, want 2", got)
	}
	if got := c.Missing(300); got != 295 {
		t.Errorf("Missing(300) = %d, want 295", got)
	}
	if got := c.Unexpected(4); got != 1 {
		t.Errorf("Unexpected(4) = %d, want 1", got)
	}
}

func TestZero(t *testing.T) {
	var c Checker
	if c.Missing(0) != 0 || c.Missing(3) != 3 || c.Gaps() != 0 || c.Has(0) {
		t.Error("zero Checker is not empty")
	}
}

// A number far past the highest is refused, not recorded: a bad sender
// cannot make the record grow without bound.
func TestTooFar(t *testing.T) {
	var c Checker
	c.Add(0) // the highest is now 0: numbers up to MaxAhead may come
	for _, n := range []uint64{1e12, MaxAhead + 1} {
		if r := c.Add(n); r != TooFar {
			t.Fatalf("Add(%d) = %v, want TooFar", n, r)
		}
	}
	if len(c.seen) != 1 || c.Highest() != 1 || c.Received() != 1 {
		t.Fatalf("record changed: %d words, highest %d, received %d", len(c.seen), c.Highest(), c.Received())
	}
	if r := c.Add(MaxAhead); r != New || c.Gaps() != MaxAhead-1 {
		t.Fatalf("Add(MaxAhead) = %v, gaps %d; want New, %d", r, c.Gaps(), MaxAhead-1)
	}
}

func TestFromFirst(t *testing.T) {
	c := Checker{FromFirst: true}
	for _, n := range []uint64{1000, 1001, 1003} {
		c.Add(n)
	}
	if g := c.Gaps(); g != 1 {
		t.Errorf("gaps %d, want 1 (1002)", g)
	}
	if r := c.Add(999); r != Late {
		t.Errorf("999 after 1000: %v, want Late", r)
	}
	if m := c.Missing(1004); m != 1 {
		t.Errorf("missing %d, want 1", m)
	}
	if u := c.Unexpected(1002); u != 1 {
		t.Errorf("unexpected %d, want 1 (1003)", u)
	}
	if r := c.Add(800); r != TooFar {
		t.Errorf("800: %v, want TooFar", r)
	}
	if c.Has(1002) || !c.Has(999) {
		t.Error("Has")
	}
}
