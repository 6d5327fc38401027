package remote_test

import (
	"context"
	"regexp"
	"sync"
	"testing"

	"github.com/tether-iot/tether/internal/tools/demo/demotest"

	"github.com/tether-iot/tether/internal/tools/demo"
	"github.com/tether-iot/tether/internal/tools/demo/remote"
	"github.com/tether-iot/tether/link"
)

const T = demotest.T // the link timeout

// awaitDown waits for a Down event on events.
func awaitDown(ctx context.Context, t *testing.T, events <-chan link.Event) {
	t.Helper()
	for {
		select {
		case ev := <-events:
			if ev.Kind == link.Down {
				return
			}
		case <-ctx.Done():
			t.Fatal("the outage never took the link down")
		}
	}
}

// TestLEDFollowsSwitch runs the remote control demo: with both links up
// the LED shows every flip of the switch; flips made while tx is cut off
// are not queued (qos off), but the switch's state is sent once tx is
// back; a flip made while rx is cut off reaches the LED once rx is back.
func TestLEDFollowsSwitch(t *testing.T) {
	t.Parallel()
	ctx := demotest.Context(t)
	st := demotest.NewStory()
	out := demo.NewPrinter(st)
	sim := demotest.StartSim(ctx, t, out, remote.TX, remote.RX)
	sw := remote.NewSwitch()
	leds := make(chan bool, 64)

	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	wg.Go(func() { errs <- remote.Server(runCtx, sim.Server, out) })
	wg.Go(func() { errs <- remote.TXNode(runCtx, sim.Nodes[remote.TX], sw, out) })
	wg.Go(func() { errs <- remote.RXNode(runCtx, sim.Nodes[remote.RX], out, func(on bool) { leds <- on }) })
	defer func() {
		stop()
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("an app failed: %v", err)
			}
		}
	}()
	led := func() bool {
		t.Helper()
		select {
		case on := <-leds:
			return on
		case <-ctx.Done():
			t.Fatalf("the LED did not change; the story:\n%s", st)
			return false
		}
	}
	st.Await(ctx, t, regexp.MustCompile(`server +all peers are connected$`), 1)

	// Both links up: the LED shows each flip.
	var want bool
	for i := range 4 {
		want = sw.Toggle()
		if got := led(); got != want {
			t.Fatalf("flip %d: LED %v, switch %v", i+1, got, want)
		}
	}
	// tx narrates a send once handed to the socket, maybe after the LED lit.
	if n := len(st.Await(ctx, t, regexp.MustCompile(`node tx +switch (on|off): sent \[[01]\]$`), 4)); n != 4 {
		t.Errorf("tx narrated %d sends for 4 flips", n)
	}
	if n := st.Count(regexp.MustCompile(`server +got \[[01]\] from tx, forwarding it to rx$`)); n != 4 {
		t.Errorf("the server narrated %d forwards for 4 flips", n)
	}

	// tx is cut off and cannot reconnect for a while: five flips meanwhile
	// give at most two messages once it is back, the last one the state
	// of the switch.
	events := make(chan link.Event, 16)
	sim.Nodes[remote.TX].Notify(events)
	p := sim.Proxies[remote.TX]
	p.Refuse(3 * T)
	p.Cut()
	awaitDown(ctx, t, events)
	sim.Nodes[remote.TX].Stop(events)
	for range 5 {
		want = sw.Toggle()
	}
	var after []bool
	for {
		on := led()
		after = append(after, on)
		if on == want {
			break
		}
	}
	if len(after) > 2 {
		t.Errorf("five flips during tx's outage lit the LED %d times (%v): queued, with qos off", len(after), after)
	}

	// rx is reset: a flip meanwhile waits at the server and reaches the LED
	// once rx is back. Earlier messages of tx, if any, all show !want.
	events = make(chan link.Event, 16)
	sim.Nodes[remote.RX].Notify(events)
	sim.Proxies[remote.RX].Reset()
	awaitDown(ctx, t, events)
	sim.Nodes[remote.RX].Stop(events)
	// The server must know too, or it would hand the flip to a dead socket.
	st.Await(ctx, t, regexp.MustCompile(`server +node rx's link down`), 1)
	want = sw.Toggle()
	for led() != want {
	}
	st.Await(ctx, t, regexp.MustCompile(`node rx +link UP again after`), 1)
}

// TestRXNodeSkipsBadLines feeds node rx lines that are not a state: it
// reports them and leaves the LED alone.
func TestRXNodeSkipsBadLines(t *testing.T) {
	t.Parallel()
	ctx := demotest.Context(t)
	st := demotest.NewStory()
	out := demo.NewPrinter(st)
	sim := demotest.StartSim(ctx, t, out, remote.RX)
	leds := make(chan bool, 8)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- remote.RXNode(runCtx, sim.Nodes[remote.RX], out, func(on bool) { leds <- on }) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("RXNode: %v", err)
		}
	}()

	rx, err := sim.Server.Node(ctx, remote.RX)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"hello", "[1,0]", "[1]"} {
		if err := rx.Write(ctx, line); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case on := <-leds:
		if !on {
			t.Error("LED off after [1]")
		}
	case <-ctx.Done():
		t.Fatal("the LED never lit")
	}
	bad := st.All(regexp.MustCompile(`node rx +got a line that is not \[0\] or \[1\]: "(.*)"$`))
	if len(bad) != 2 || bad[0][1] != "hello" || bad[1][1] != "[1,0]" {
		t.Errorf("bad lines reported: %v\n%s", bad, st)
	}
	st.Await(ctx, t, regexp.MustCompile(`node rx +got \[1\]: LED on$`), 1)
}

// TestServerEndsWhileAwaiting checks that the server side ends quietly
// when its run ends before both nodes have connected.
func TestServerEndsWhileAwaiting(t *testing.T) {
	t.Parallel()
	ctx := demotest.Context(t)
	st := demotest.NewStory()
	out := demo.NewPrinter(st)
	sim := demotest.StartSim(ctx, t, out, remote.RX)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- remote.Server(runCtx, sim.Server, out) }()
	st.Await(ctx, t, regexp.MustCompile(`server +awaiting nodes tx and rx$`), 1)
	stop()
	if err := <-done; err != nil {
		t.Errorf("Server ended with %v, want nil", err)
	}
	if st.Count(regexp.MustCompile(`all peers are connected`)) != 0 {
		t.Error("the server said all peers are connected without tx")
	}
}

func TestSwitch(t *testing.T) {
	sw := remote.NewSwitch()
	if !sw.Toggle() || sw.Toggle() {
		t.Error("a new switch toggles to on, then off")
	}
	sw.Set(true)
	if sw.Toggle() {
		t.Error("a switch set on toggles to off")
	}
}
