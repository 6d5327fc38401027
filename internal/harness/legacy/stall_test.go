package legacy

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tether-iot/tether/internal/harness/lagprobe"
)

// These tests run the models with T = 200 ms on real sockets: a process
// stalled for a quarter of that (a loaded machine) makes a model time out
// as it must, after T of silence, and the test fails for the machine's
// doing. A test wrapped in retry runs again when that is what happened:
// when its connection broke, or an outage came that the script did not
// make, and the process was stalled for T/4 or more of a T just before
// (see lagprobe). Without such a stall the failure stands.

// attempt is the state of a test run by retry.
type attempt struct {
	probe *lagprobe.Probe
	start time.Time
}

var attempts sync.Map // *testing.T -> *attempt

// voidAttempt is what a void attempt panics with, for retry to recover.
type voidAttempt struct{ why string }

// retry runs body until it completes without being voided, at most five
// times.
func retry(t *testing.T, body func()) {
	t.Helper()
	const tries = 5
	a := &attempt{probe: lagprobe.New(t)}
	attempts.Store(t, a)
	t.Cleanup(func() { attempts.Delete(t) })
	for try := 1; ; try++ {
		a.start = time.Now()
		v := runAttempt(body)
		if v == nil {
			return
		}
		if try == tries {
			t.Fatalf("attempt %d of %d void: %s", try, tries, v.why)
		}
		t.Logf("attempt %d void, running again: %s", try, v.why)
	}
}

func runAttempt(body func()) (v *voidAttempt) {
	defer func() {
		if r := recover(); r != nil {
			va, ok := r.(voidAttempt)
			if !ok {
				panic(r)
			}
			v = &va
		}
	}()
	body()
	return nil
}

// voidIfStalled ends the attempt of a test run by retry, as void, if the
// process was stalled for T/4 or more of a T since the attempt began:
// enough for a model to time out on a peer that keeps writing every T/4
// (or that is silent for 3T/4 on purpose). what says what went wrong.
func voidIfStalled(t *testing.T, what string) {
	v, ok := attempts.Load(t)
	if !ok {
		return
	}
	a := v.(*attempt)
	now := time.Now()
	if st := a.probe.MaxStalled(a.start, now, T); st >= T/4 {
		panic(voidAttempt{fmt.Sprintf("%s; the process stalled %v of a T (%s)", what, st.Round(time.Millisecond), a.probe.Summary(a.start, now))})
	}
}
