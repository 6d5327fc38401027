package client

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/link"
)

const T = 2 * time.Second

// fakeRadio records what the client does to the network.
type fakeRadio struct {
	mu     sync.Mutex
	up     bool
	fail   int // Connect calls to fail
	log    []string
	starts []time.Time
}

func (r *fakeRadio) Connect(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, "connect")
	r.starts = append(r.starts, time.Now())
	if r.fail > 0 {
		r.fail--
		return errors.New("no AP")
	}
	r.up = true
	return nil
}

func (r *fakeRadio) Disconnect() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, "disconnect")
	r.up = false
	return nil
}

func (r *fakeRadio) Connected() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.up
}

// fakeServer accepts the client's "connections" (pipes) and serves them
// with a server-role link, recording when each arrived.
type fakeServer struct {
	l      *link.Link
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn // the server's ends
	nodes  []net.Conn // the client's ends
	dials  []time.Time
	refuse bool
	hangup bool // accept, read the ID, close
}

func newFakeServer(t *testing.T) *fakeServer {
	l, err := link.New(link.Config{ID: "n", Timeout: T, Logger: testutil.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{l: l}
	t.Cleanup(func() {
		l.Close()
		s.wg.Wait()
	})
	return s
}

func (s *fakeServer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dials = append(s.dials, time.Now())
	if s.refuse {
		return nil, errors.New("connection refused")
	}
	a, b := net.Pipe()
	hangup := s.hangup
	s.conns = append(s.conns, a)
	s.nodes = append(s.nodes, b)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		id := make([]byte, 2)
		if _, err := a.Read(id); err != nil || string(id) != "n\n" || hangup {
			a.Close()
			return
		}
		s.l.Attach(context.Background(), a)
	}()
	return b, nil
}

// cut closes the server's side of the current connection.
func (s *fakeServer) cut() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns[len(s.conns)-1].Close()
}

func dialTest(t *testing.T, cfg Config) *Client {
	t.Helper()
	cfg.ID, cfg.Server, cfg.Timeout = "n", "gw.test:8123", T
	if cfg.Logger == nil {
		cfg.Logger = testutil.Logger()
	}
	c, err := Dial(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// The legacy outage procedure, in fake time: drop the radio, wait 2T (and
// a jitter of up to T), bring it back, wait 3 s for stability, connect and
// send the ID.
func TestOutageProcedure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer(t)
		radio := &fakeRadio{}
		events := make(chan link.Event, 16)
		c := dialTest(t, Config{Radio: radio, Dial: srv.dial, Events: events})
		if err := c.WaitUp(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := c.Write(t.Context(), "before"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		cut := time.Now()
		srv.cut()
		if err := c.Write(t.Context(), "after"); err != nil { // waits through the outage
			t.Fatal(err)
		}
		radio.mu.Lock()
		log, starts := radio.log, radio.starts
		radio.mu.Unlock()
		want := []string{"connect", "disconnect", "connect"}
		if len(log) != 3 || log[0] != want[0] || log[1] != want[1] || log[2] != want[2] {
			t.Fatalf("radio calls %v, want %v", log, want)
		}
		wait := starts[1].Sub(cut)
		if wait < 2*T || wait > 3*T {
			t.Fatalf("radio reconnected %v after the outage, want 2T to 3T", wait)
		}
		srv.mu.Lock()
		redial := srv.dials[1].Sub(cut)
		srv.mu.Unlock()
		if redial != wait+3*time.Second {
			t.Fatalf("redialled %v after the outage, want %v (radio) + 3 s", redial, wait)
		}
		for _, want := range []string{"before", "after"} {
			if got, err := srv.l.ReadLine(t.Context()); err != nil || got != want {
				t.Fatalf("server got %q, %v; want %q", got, err, want)
			}
		}
		if c.Connects() != 2 {
			t.Fatalf("Connects = %d", c.Connects())
		}
	})
}

// At start-up, no network and no server call the hooks; by default they
// end Dial with an error.
func TestStartupHooks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer(t)
		_, err := Dial(t.Context(), Config{ID: "n", Server: "gw.test", Radio: &fakeRadio{fail: 1}, Dial: srv.dial, Logger: testutil.Logger()})
		if err == nil {
			t.Fatal("Dial succeeded with no network")
		}
		srv.refuse = true
		_, err = Dial(t.Context(), Config{ID: "n", Server: "gw.test", Dial: srv.dial, Logger: testutil.Logger()})
		if err == nil {
			t.Fatal("Dial succeeded with no server")
		}
		// Hooks that keep trying: the client connects once the server is back.
		var badNet, badSrv int
		go func() {
			time.Sleep(10 * T)
			srv.mu.Lock()
			srv.refuse = false
			srv.mu.Unlock()
		}()
		c, err := Dial(t.Context(), Config{ID: "n", Server: "gw.test", Timeout: T, Radio: &fakeRadio{fail: 1},
			Dial:       srv.dial,
			BadNetwork: func(ctx context.Context, err error) error { badNet++; return nil },
			BadServer:  func(ctx context.Context, err error) error { badSrv++; return nil },
			Logger:     testutil.Logger()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if badNet != 1 || badSrv != 1 {
			t.Fatalf("hooks called %d, %d times; want once each", badNet, badSrv)
		}
		if err := c.WaitUp(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

// The heartbeat toggles on each keepalive; the watchdog is fed by them
// and while reconnecting.
func TestHeartbeatAndWatchdog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer(t)
		var mu sync.Mutex
		var beats []bool
		feeds := 0
		c := dialTest(t, Config{Dial: srv.dial,
			Heartbeat: func(on bool) { mu.Lock(); beats = append(beats, on); mu.Unlock() },
			Watchdog:  func() { mu.Lock(); feeds++; mu.Unlock() },
		})
		if err := c.WaitUp(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(T + T/8)
		mu.Lock()
		if len(beats) != 4 || !beats[0] || beats[1] || !beats[2] || beats[3] {
			t.Fatalf("heartbeat %v over 4 keepalive intervals, want on/off x2", beats)
		}
		before := feeds
		mu.Unlock()
		srv.cut()
		time.Sleep(2*T + T/8) // the reconnect wait
		mu.Lock()
		defer mu.Unlock()
		if feeds-before < 8 {
			t.Fatalf("watchdog fed %d times during a 2T reconnect wait, want every T/4", feeds-before)
		}
	})
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Server: "x"},
		{ID: "a\nb", Server: "x"},
		{ID: "n"},
		{ID: "n", Server: "x", Timeout: -1},
	} {
		if _, err := Dial(context.Background(), cfg); err == nil {
			t.Errorf("Dial(%+v) succeeded", cfg)
		}
	}
}

// A socket closed under the client (not by Close) is an outage like any
// other: the client reconnects.
func TestReconnectAfterLocalClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer(t)
		c := dialTest(t, Config{Dial: srv.dial})
		if err := c.WaitUp(t.Context()); err != nil {
			t.Fatal(err)
		}
		srv.mu.Lock()
		srv.nodes[0].Close()
		srv.mu.Unlock()
		if err := c.Write(t.Context(), "after"); err != nil {
			t.Fatal(err)
		}
		if got, err := srv.l.ReadLine(t.Context()); err != nil || got != "after" || c.Connects() != 2 {
			t.Fatalf("got %q, %v, connects %d", got, err, c.Connects())
		}
	})
}
