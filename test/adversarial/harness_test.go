package adversarial

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/gateway"
	"github.com/tether-iot/tether/internal/harness/lagprobe"
	"github.com/tether-iot/tether/link"
)

// T is the link timeout of the gateway and the honest node. Pauses of the
// honest traffic are judged in multiples of it.
const T = time.Second

// honestID is the honest node's ID.
const honestID = "honest"

// options adjust a harness.
type options struct {
	// configure adjusts the gateway's config before it starts.
	configure func(*gateway.Config)
	// maxPause is the longest pause allowed between two honest messages
	// in either direction during and after the attack, beyond the time
	// the process was stalled within it (see lagprobe); zero means 6T.
	maxPause time.Duration
	// goroutines, heap and fds are the slack over the baseline allowed
	// once the attack is over; zero means 25 goroutines, 8 MiB, 8 files.
	goroutines int
	heap       uint64
	fds        int
}

// harness is a real gateway with an honest node and an MQTT client
// exchanging qos messages with it both ways.
type harness struct {
	t    *testing.T
	opts options
	ctx  context.Context // ends with the test (bounded)

	g        *gateway.Gateway
	nodeAddr string // host:port of the node listener
	mqttAddr string // host:port of the embedded broker
	webURL   string // http://host:port of the status page
	logs     *logRecorder
	probe    *lagprobe.Probe // the process's stalls
	outMu    sync.Mutex
	outages  []outage // the honest node's

	node *client.Client
	mqtt paho.Client

	up   *stream // honest node -> MQTT subscriber
	down *stream // MQTT publisher -> honest node

	stopSend chan struct{}
	senders  sync.WaitGroup
	readerWG sync.WaitGroup
	sentUp   int // messages the node wrote (after the senders stop)
	sentDown int // messages published on the node's down topic
}

// start starts the gateway, the honest node and the MQTT client, and the
// honest traffic; everything is stopped at the end of the test.
func start(t *testing.T, opts options) *harness {
	t.Helper()
	if opts.maxPause == 0 {
		opts.maxPause = 6 * T
	}
	if opts.goroutines == 0 {
		opts.goroutines = 25
	}
	if opts.heap == 0 {
		opts.heap = 8 << 20
	}
	if opts.fds == 0 {
		opts.fds = 8
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	probe := lagprobe.New(t)
	h := &harness{t: t, opts: opts, ctx: ctx, logs: newLogRecorder(), probe: probe,
		up: newStream("up", probe), down: newStream("down", probe), stopSend: make(chan struct{})}

	cfg := gateway.Config{
		Name:    "adversarial",
		Listen:  "127.0.0.1:0",
		Timeout: gateway.Duration(T),
		Data:    t.TempDir(),
		MQTT:    gateway.MQTTConfig{Listen: "127.0.0.1:0"},
		Web:     gateway.WebConfig{Addr: "127.0.0.1:0"},
		Logger:  slog.New(h.logs),
	}
	if opts.configure != nil {
		opts.configure(&cfg)
	}
	g, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(ctx); err != nil {
		g.Close()
		t.Fatal(err)
	}
	h.g = g
	t.Cleanup(func() {
		h.stopHonest()
		g.Close()
	})
	h.nodeAddr = g.Addr().String()
	h.mqttAddr = g.MQTTAddr().String()
	if a := g.WebAddr(); a != nil {
		h.webURL = "http://" + a.String()
	}

	// The MQTT side: subscribed to the honest node's up topic, and
	// publishing on its down topic.
	o := paho.NewClientOptions().AddBroker("tcp://" + h.mqttAddr).
		SetClientID(fmt.Sprintf("honest-app-%d", time.Now().UnixNano())).
		SetOrderMatters(true).SetAutoReconnect(false).SetCleanSession(true)
	h.mqtt = paho.NewClient(o)
	if err := waitToken(ctx, h.mqtt.Connect()); err != nil {
		t.Fatalf("honest MQTT client: %v", err)
	}
	t.Cleanup(func() { h.mqtt.Disconnect(50) })
	upTopic := g.Topics().Up(honestID)
	if err := waitToken(ctx, h.mqtt.Subscribe(upTopic, 1, func(_ paho.Client, m paho.Message) {
		h.up.got(string(m.Payload()))
	})); err != nil {
		t.Fatalf("subscribe %s: %v", upTopic, err)
	}

	// The honest node.
	h.node, err = client.Dial(ctx, client.Config{ID: honestID, Server: h.nodeAddr, Timeout: T, Logger: slog.New(h.logs),
		OnEvent: h.nodeEvent})
	if err != nil {
		t.Fatalf("honest node: %v", err)
	}
	t.Cleanup(func() {
		h.node.Close()
		h.readerWG.Wait()
	})
	h.readerWG.Add(1)
	go func() {
		defer h.readerWG.Done()
		for {
			line, err := h.node.ReadLine(ctx)
			if err != nil {
				return
			}
			h.down.got(line)
		}
	}()

	h.senders.Add(2)
	go h.sendUp()
	go h.sendDown(g.Topics().Down(honestID))
	t.Cleanup(h.stopHonest) // first: before the node and the client close
	return h
}

// pace is the interval between two honest messages in each direction.
const pace = T / 4

func (h *harness) sendUp() {
	defer h.senders.Done()
	tick := time.NewTicker(pace)
	defer tick.Stop()
	for i := 1; ; i++ {
		if err := h.node.Write(h.ctx, "u"+strconv.Itoa(i)); err != nil {
			h.t.Errorf("honest node: write u%d: %v", i, err)
			return
		}
		h.sentUp = i
		select {
		case <-tick.C:
		case <-h.stopSend:
			return
		}
	}
}

func (h *harness) sendDown(topic string) {
	defer h.senders.Done()
	tick := time.NewTicker(pace)
	defer tick.Stop()
	for i := 1; ; i++ {
		if err := waitToken(h.ctx, h.mqtt.Publish(topic, 1, false, "d"+strconv.Itoa(i))); err != nil {
			h.t.Errorf("honest MQTT client: publish d%d: %v", i, err)
			return
		}
		h.sentDown = i
		select {
		case <-tick.C:
		case <-h.stopSend:
			return
		}
	}
}

// outage is one of the honest node's outages.
type outage struct {
	at      time.Time
	err     error
	stalled time.Duration // of the T before it, the process was stalled
}

// machineMade reports whether the outage is the machine's doing: the
// process was stalled for T/2 or more of the T before it, so that one side
// heard nothing for T although the other kept writing every T/4.
func (o outage) machineMade() bool { return o.stalled >= T/2 }

func (o outage) String() string {
	return fmt.Sprintf("%s %v (stalled %v of the T before)", o.at.Format("15:04:05.000"), o.err, o.stalled.Round(time.Millisecond))
}

// recovery is what an outage costs the honest traffic at most: T to
// notice, then the client's first wait before it connects again, at
// most 1.5 ReconnectDelay (2T by default).
const recovery = T + 3*T

// nodeEvent records the honest node's outages.
func (h *harness) nodeEvent(ev link.Event) {
	if ev.Kind != link.Down {
		return
	}
	h.outMu.Lock()
	defer h.outMu.Unlock()
	h.outages = append(h.outages, outage{at: ev.Time, err: ev.Err})
}

// machineOutages returns how many of the honest node's outages within
// [from, to] the machine made (see outage.machineMade).
func (h *harness) machineOutages(from, to time.Time) int {
	h.outMu.Lock()
	defer h.outMu.Unlock()
	n := 0
	for i := range h.outages {
		o := &h.outages[i]
		o.stalled = h.probe.MaxStalled(o.at.Add(-T), o.at, T)
		if !o.at.Before(from) && !o.at.After(to) && o.machineMade() {
			n++
		}
	}
	return n
}

// stopHonest stops the honest senders (once) and waits for them.
func (h *harness) stopHonest() {
	select {
	case <-h.stopSend:
	default:
		close(h.stopSend)
	}
	h.senders.Wait()
}

// attack runs one attack: it waits for honest traffic both ways, takes
// the baseline, runs attack (which must leave nothing of its own running
// when it returns: it closes its sockets and waits for its goroutines),
// waits for goroutines, heap and open files to come back near the
// baseline, then stops the honest traffic and checks that every honest
// message arrived exactly once, in order, with no pause longer than
// maxPause. It returns the figures it measured.
func (h *harness) attack(attack func(ctx context.Context)) report {
	h.t.Helper()
	h.warmUp()
	var r report
	r.before = settledMeasure()
	h.t.Logf("baseline: %v", r.before)
	start := time.Now()
	h.up.resetGap(start)
	h.down.resetGap(start)

	attack(h.ctx)

	r.attackTook = time.Since(start)
	r.peak = measure()
	r.after = h.settle(r.before)
	h.t.Logf("after the attack (%v): %v", r.attackTook.Round(time.Millisecond), r.after)

	// Honest traffic still flows after the attack: a few more each way.
	for _, s := range []*stream{h.up, h.down} {
		if err := s.waitFor(h.ctx, s.count()+4); err != nil {
			h.t.Fatalf("honest traffic stopped after the attack: %v\n%s", err, h.logs.tail())
		}
	}
	h.stopHonest()
	if h.t.Failed() {
		h.t.FailNow()
	}
	for _, c := range []struct {
		s    *stream
		sent int
	}{{h.up, h.sentUp}, {h.down, h.sentDown}} {
		if err := c.s.waitFor(h.ctx, c.sent); err != nil {
			h.t.Errorf("%s: %d of %d honest messages arrived: %v", c.s.name, c.s.count(), c.sent, err)
		}
		c.s.check(h.t, c.sent)
	}
	// A pause of the honest traffic is judged net of what the machine
	// did: the time the whole process was stalled within it (a loaded
	// machine holds up every goroutine alike), and the recovery of each
	// outage of the honest node that such a stall made (see
	// outage.machineMade). What is left is what the attack cost; an
	// outage the attack made is part of it.
	for _, c := range []struct {
		s     *stream
		pause *time.Duration
	}{{h.up, &r.upPause}, {h.down, &r.downPause}} {
		g := c.s.worstGap(h)
		*c.pause = g.net()
		h.t.Logf("%s: longest pause of honest traffic %v net of %v stalled and %d outages the stalls made (%v from %v; longest of all %v); allowed %v = %.0fT; %s",
			c.s.name, c.pause.Round(time.Millisecond), g.stalled.Round(time.Millisecond), g.outages, g.len.Round(time.Millisecond),
			g.from.Sub(start).Round(time.Millisecond), c.s.longestGap().Round(time.Millisecond), h.opts.maxPause, float64(h.opts.maxPause)/float64(T),
			h.probe.Summary(g.from, g.from.Add(g.len)))
		if *c.pause > h.opts.maxPause {
			h.t.Errorf("%s: honest traffic paused %v (%.1fT) beyond %v the process was stalled and %d outages the stalls made, more than %v",
				c.s.name, c.pause.Round(time.Millisecond), float64(*c.pause)/float64(T), g.stalled.Round(time.Millisecond), g.outages, h.opts.maxPause)
		}
	}
	h.machineOutages(start, time.Now())
	h.outMu.Lock()
	h.t.Logf("sent up %d, down %d; the honest node's outages: %v; the process stalled %s", h.sentUp, h.sentDown, h.outages, h.probe.Summary(start, time.Now()))
	h.outMu.Unlock()
	return r
}

// warmUp waits for a few honest messages each way, so that every lazily
// started goroutine of the honest path is in the baseline.
func (h *harness) warmUp() {
	h.t.Helper()
	for _, s := range []*stream{h.up, h.down} {
		if err := s.waitFor(h.ctx, 4); err != nil {
			h.t.Fatalf("honest traffic did not start: %v\n%s", err, h.logs.tail())
		}
	}
}

// report holds the figures of one attack.
type report struct {
	before, peak, after resources
	attackTook          time.Duration
	upPause, downPause  time.Duration // net of the process's stalls
}

// resources are the process's figures that an attack must give back.
type resources struct {
	goroutines int
	heap       uint64 // live heap after a GC, bytes
	fds        int    // open file descriptors
}

func (r resources) String() string {
	return fmt.Sprintf("%d goroutines, heap %.1f MiB, %d open files", r.goroutines, float64(r.heap)/(1<<20), r.fds)
}

func measure() resources {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return resources{goroutines: runtime.NumGoroutine(), heap: ms.HeapAlloc, fds: openFiles()}
}

// settledMeasure measures twice after a GC, keeping the lower figures:
// the baseline should not include a transient peak.
func settledMeasure() resources {
	a := measure()
	runtime.Gosched()
	b := measure()
	return resources{goroutines: min(a.goroutines, b.goroutines), heap: min(a.heap, b.heap), fds: min(a.fds, b.fds)}
}

func openFiles() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// settle waits, bounded, until goroutines, heap and open files are back
// within the slack of base, and returns the last figures. Goroutines
// ending and memory being freed notify nothing, so it re-measures with a
// growing interval, as goleak does.
func (h *harness) settle(base resources) resources {
	h.t.Helper()
	ok := func(r resources) bool {
		return r.goroutines <= base.goroutines+h.opts.goroutines &&
			r.heap <= base.heap+h.opts.heap &&
			r.fds <= base.fds+h.opts.fds
	}
	deadline := time.Now().Add(20 * time.Second)
	wait := 10 * time.Millisecond
	for {
		r := measure()
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			var b bytes.Buffer
			pprof.Lookup("goroutine").WriteTo(&b, 1)
			h.t.Errorf("resources not back near the baseline 20 s after the attack:\nbaseline %v\nnow      %v\nallowed  +%d goroutines, +%.1f MiB, +%d files\n%s",
				base, r, h.opts.goroutines, float64(h.opts.heap)/(1<<20), h.opts.fds, firstLines(b.String(), 60))
			return r
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-h.ctx.Done():
			t.Stop()
			h.t.Fatalf("settle: %v", h.ctx.Err())
		}
		wait = min(2*wait, 250*time.Millisecond)
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// stream checks one direction of honest traffic: payloads "<p><n>" with
// n = 1, 2, 3... each exactly once, in order; it records the longest
// pause between two arrivals.
type stream struct {
	name string

	probe *lagprobe.Probe // the process's stalls, for waitFor

	mu      sync.Mutex
	next    int // the next n expected
	bad     []string
	last    time.Time
	gaps    []gap         // the pauses longer than pace since resetGap
	changed chan struct{} // closed and replaced on each arrival
}

// gap is a pause between two arrivals.
type gap struct {
	from    time.Time
	len     time.Duration
	stalled time.Duration // of which the process was stalled
	outages int           // the honest node's outages in it that stalls made
}

// net is the pause less the machine's doing.
func (g gap) net() time.Duration { return g.len - g.stalled - time.Duration(g.outages)*recovery }

func newStream(name string, probe *lagprobe.Probe) *stream {
	return &stream{name: name, probe: probe, next: 1, changed: make(chan struct{})}
}

func (s *stream) got(payload string) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := strconv.Atoi(payload[min(1, len(payload)):])
	switch {
	case err != nil:
		s.bad = append(s.bad, fmt.Sprintf("unexpected payload %q", payload))
	case n < s.next:
		s.bad = append(s.bad, fmt.Sprintf("%q again (duplicate or out of order; expected %d next)", payload, s.next))
	case n > s.next:
		s.bad = append(s.bad, fmt.Sprintf("%q while expecting %d: %d lost", payload, s.next, n-s.next))
		s.next = n + 1
	default:
		s.next++
	}
	if !s.last.IsZero() && now.Sub(s.last) > pace {
		s.gaps = append(s.gaps, gap{from: s.last, len: now.Sub(s.last)})
	}
	s.last = now
	close(s.changed)
	s.changed = make(chan struct{})
}

// count returns how many messages arrived in order so far.
func (s *stream) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next - 1
}

// stuck is how long a stream may make no progress, beyond the time the
// process was stalled meanwhile.
const stuck = 10 * time.Second

// waitFor waits until message n has arrived, or for stuck without
// progress (net of the process's stalls).
func (s *stream) waitFor(ctx context.Context, n int) error {
	since := time.Now()
	for {
		s.mu.Lock()
		have, ch := s.next-1, s.changed
		s.mu.Unlock()
		if have >= n {
			return nil
		}
		left := stuck
		if s.probe != nil {
			now := time.Now()
			left -= now.Sub(since) - s.probe.Stalled(since, now)
		}
		if left <= 0 {
			return fmt.Errorf("%s: stuck at %d of %d for %v (beyond the process's stalls: %s)", s.name, have, n, stuck, s.probe.Summary(since, time.Now()))
		}
		t := time.NewTimer(left)
		select {
		case <-ch:
			t.Stop()
			since = time.Now()
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// resetGap starts measuring pauses at now.
func (s *stream) resetGap(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last, s.gaps = now, nil
}

// longestGap returns the longest pause.
func (s *stream) longestGap() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var most time.Duration
	for _, g := range s.gaps {
		most = max(most, g.len)
	}
	return most
}

// worstGap returns the pause that is longest net of the machine's doing
// (see gap.net).
func (s *stream) worstGap(h *harness) gap {
	s.mu.Lock()
	defer s.mu.Unlock()
	var worst gap
	for _, g := range s.gaps {
		to := g.from.Add(g.len)
		g.stalled = h.probe.Stalled(g.from, to)
		g.outages = h.machineOutages(g.from, to)
		if g.net() > worst.net() {
			worst = g
		}
	}
	return worst
}

// check reports every message lost, duplicated or reordered, and any
// message beyond sent.
func (s *stream) check(t *testing.T, sent int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.bad {
		t.Errorf("%s: %s", s.name, b)
	}
	if s.next-1 != sent {
		t.Errorf("%s: %d messages arrived, %d sent", s.name, s.next-1, sent)
	}
}

func waitToken(ctx context.Context, tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// logRecorder is a slog handler that keeps the text of the last log
// lines (for failure messages and assertions on what was logged), and
// copies them to stderr when TETHER_TEST_LOG is set.
type logRecorder struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
	h   slog.Handler
}

const logKeep = 1 << 20

func newLogRecorder() *logRecorder {
	r := &logRecorder{mu: new(sync.Mutex), buf: new(bytes.Buffer)}
	var w io.Writer = r.buf
	if os.Getenv("TETHER_TEST_LOG") != "" {
		w = io.MultiWriter(r.buf, os.Stderr)
	}
	r.h = slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})
	return r
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *logRecorder) Handle(ctx context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.buf.Len() > logKeep {
		b := r.buf.Bytes()
		keep := append([]byte(nil), b[len(b)-logKeep/2:]...)
		r.buf.Reset()
		r.buf.Write(keep)
	}
	return r.h.Handle(ctx, rec)
}

func (r *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	c := *r
	c.h = r.h.WithAttrs(as)
	return &c
}

func (r *logRecorder) WithGroup(name string) slog.Handler {
	c := *r
	c.h = r.h.WithGroup(name)
	return &c
}

// text returns the lines logged so far (the last MiB or so).
func (r *logRecorder) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// tail returns the last lines logged, for failure messages.
func (r *logRecorder) tail() string {
	s := r.text()
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	return s
}
