package lagprobe

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func at(ms int) time.Time { return time.Unix(1000, 0).Add(time.Duration(ms) * time.Millisecond) }

// probeWith is a stopped probe that recorded stalls.
func probeWith(stalls ...Stall) *Probe {
	done := make(chan struct{})
	close(done)
	return &Probe{stalls: stalls, done: done}
}

func TestStalled(t *testing.T) {
	p := probeWith(Stall{at(10), at(20)}, Stall{at(50), at(150)}, Stall{at(300), at(301)})
	for _, c := range []struct {
		from, to int
		want     time.Duration
	}{
		{0, 5, 0},
		{0, 1000, 111 * time.Millisecond},
		{15, 60, 15 * time.Millisecond},  // the end of one, the start of another
		{60, 70, 10 * time.Millisecond},  // inside one
		{20, 50, 0},                      // between two
		{149, 300, 1 * time.Millisecond}, // touching the next
	} {
		if got := p.Stalled(at(c.from), at(c.to)); got != c.want {
			t.Errorf("Stalled(%d, %d) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
	if got := p.MaxStalled(at(0), at(1000), 50*time.Millisecond); got != 50*time.Millisecond {
		t.Errorf("MaxStalled(50ms) = %v, want 50ms", got)
	}
	if got := p.MaxStalled(at(0), at(1000), 200*time.Millisecond); got != 110*time.Millisecond {
		t.Errorf("MaxStalled(200ms) = %v, want 110ms (both first stalls)", got)
	}
	if got := p.Longest(at(0), at(100)); got != 50*time.Millisecond {
		t.Errorf("Longest(0, 100) = %v, want 50ms (clipped)", got)
	}
}

// A probe sees the process stopped: a child stops it with SIGSTOP for
// 200 ms, then continues it.
func TestProbeSeesStop(t *testing.T) {
	p := New(t)
	start := time.Now()
	cmd := exec.Command("sh", "-c", fmt.Sprintf("kill -STOP %d; sleep 0.2; kill -CONT %d", os.Getpid(), os.Getpid()))
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	end := time.Now()
	// Asked at once, while the probe may not have run since the process
	// resumed: it records the stall first.
	t.Log(p.Summary(start, end))
	if l := p.Longest(start, end); l < 150*time.Millisecond {
		t.Fatalf("longest stall %v, want at least 150ms (the process was stopped for 200ms)", l)
	}
	if s := p.Stalled(start, end); s > end.Sub(start) {
		t.Fatalf("stalled %v within %v", s, end.Sub(start))
	}
}

// Retry runs a body again when VoidIfStalled finds the process stopped
// within the attempt; a failure without a stall would stand.
func TestRetryVoidsOnStall(t *testing.T) {
	tries := 0
	Retry(t, 5, func() {
		tries++
		if tries == 1 {
			cmd := exec.Command("sh", "-c", fmt.Sprintf("kill -STOP %d; sleep 0.2; kill -CONT %d", os.Getpid(), os.Getpid()))
			if err := cmd.Run(); err != nil {
				t.Fatal(err)
			}
			VoidIfStalled(t, time.Second, 150*time.Millisecond, "first attempt")
			t.Fatal("the first attempt was not voided, though the process was stopped for 200ms")
		}
	})
	if tries < 2 {
		t.Fatalf("%d attempts, want a second one after the void first", tries)
	}
}
