package bus

import "testing"

// TestBackoff: each delay is within [step/2, step], the step doubles
// from minBackoff up to maxBackoff, and reset starts it again.
func TestBackoff(t *testing.T) {
	var b backoff
	step := minBackoff
	for i := range 12 {
		d := b.next()
		if d < step/2 || d > step {
			t.Fatalf("delay %d = %v, want within [%v, %v]", i, d, step/2, step)
		}
		step = min(2*step, maxBackoff)
	}
	b.reset()
	if d := b.next(); d > minBackoff {
		t.Fatalf("after reset: %v, want at most %v", d, minBackoff)
	}
}
