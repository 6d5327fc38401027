package lagprobe

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// A real-time test may fail for the machine's doing: a link times out, as
// it must, after T of silence that a stall of the process made. Retry
// runs such a test's body again when it ended by VoidIfStalled: when what
// went wrong came while the process was measurably stalled. Any other
// failure stands.

type attempt struct {
	probe *Probe
	start time.Time
}

var attempts sync.Map // testing.TB -> *attempt

type voided struct{ why string }

// Retry runs body until it completes without being voided, at most tries
// times; the last void attempt fails the test.
func Retry(t *testing.T, tries int, body func()) {
	t.Helper()
	a := &attempt{probe: New(t)}
	attempts.Store(t, a)
	t.Cleanup(func() { attempts.Delete(t) })
	for try := 1; ; try++ {
		a.start = time.Now()
		v := run(body)
		if v == nil {
			return
		}
		if try >= tries {
			t.Fatalf("attempt %d of %d void: %s", try, tries, v.why)
		}
		t.Logf("attempt %d void, running again: %s", try, v.why)
	}
}

func run(body func()) (v *voided) {
	defer func() {
		if r := recover(); r != nil {
			vd, ok := r.(voided)
			if !ok {
				panic(r)
			}
			v = &vd
		}
	}()
	body()
	return nil
}

// VoidIfStalled ends the current attempt of a test run by Retry as void
// if the process was stalled for need or more of some window since the
// attempt began; otherwise it returns, and the caller reports the failure
// what describes. Outside Retry it does nothing.
func VoidIfStalled(t testing.TB, window, need time.Duration, what string) {
	v, ok := attempts.Load(t)
	if !ok {
		return
	}
	a := v.(*attempt)
	now := time.Now()
	if st := a.probe.MaxStalled(a.start, now, window); st >= need {
		panic(voided{fmt.Sprintf("%s; the process stalled %v of %v (%s)", what, st.Round(time.Millisecond), window, a.probe.Summary(a.start, now))})
	}
}
