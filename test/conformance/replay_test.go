package conformance

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/harness/lagprobe"
	"github.com/tether-iot/tether/internal/harness/legacy"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// replaySpeed compresses the recorded timing (T = 2 s): the longest
// recorded silence, 3.3 s in a black hole, becomes 165 ms, well inside
// replayT, so that no replayed connection times out.
const (
	replaySpeed = 20
	replayT     = 400 * time.Millisecond
)

// transcripts loads every recording (testdata/transcripts); a missing or
// empty directory fails the test.
func transcripts(t *testing.T) map[string][]legacy.Event {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testutil.TranscriptDir(t), "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string][]legacy.Event)
	for _, f := range files {
		evs, err := legacy.LoadTranscript(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		m[strings.TrimSuffix(filepath.Base(f), ".jsonl")] = evs
	}
	return m
}

// recorded is what one direction of a transcript carried: the node's ID,
// and per connection the ids of its complete messages; payloads lists
// each distinct message payload once, in order of first appearance.
type recorded struct {
	id       string
	acks     map[int][]int
	payloads []string
	partial  map[int]string // a line cut by the end of the connection
}

func analyse(t *testing.T, evs []legacy.Event, dir string) recorded {
	t.Helper()
	r := recorded{acks: make(map[int][]int), partial: make(map[int]string)}
	seen := make(map[string]bool)
	for _, c := range legacy.Conns(evs) {
		lines, partial := legacy.Lines(evs, c, dir)
		r.partial[c] = partial
		if dir == legacy.C2S && len(lines) > 0 {
			r.id, lines = lines[0], lines[1:]
		}
		for _, s := range lines {
			l, err := legacy.ParseLine(s)
			if err != nil {
				t.Fatalf("conn %d %s: recorded line %q: %v", c, dir, s, err)
			}
			if l.Kind != legacy.Message {
				continue
			}
			r.acks[c] = append(r.acks[c], l.ID)
			if !seen[l.Payload] {
				seen[l.Payload] = true
				r.payloads = append(r.payloads, l.Payload)
			}
		}
	}
	if dir == legacy.S2C {
		r.id = firstLine(evs)
	}
	return r
}

// firstLine is the node's ID: the first line it sent.
func firstLine(evs []legacy.Event) string {
	lines, _ := legacy.Lines(evs, legacy.Conns(evs)[0], legacy.C2S)
	return lines[0]
}

// withoutFirst returns evs without the first chunk of connection c in
// direction dir (the ID, written apart), and that chunk's bytes after the
// ID line.
func withoutFirst(evs []legacy.Event, c int, dir string) ([]legacy.Event, string) {
	for i, e := range evs {
		if e.IsData() && !e.Dropped && e.Conn == c && e.Dir == dir {
			_, rest, _ := strings.Cut(e.Data, "\n")
			return slices.Delete(slices.Clone(evs), i, i+1), rest
		}
	}
	return evs, ""
}

// collectAcks reads the other side's lines until it has seen the ACKs of
// want, in order; every line must be a keepalive or the next ACK.
func collectAcks(ctx context.Context, p *rawPeer, c int, want []int) error {
	for i, id := range want {
		l, err := p.parsedErr(ctx)
		if err != nil {
			return fmt.Errorf("conn %d: waiting for the ACK of %02x: %w", c, id, err)
		}
		if l.Kind != legacy.Ack || l.ID != id {
			return fmt.Errorf("conn %d: line %d: got %v %02x %q, want the ACK of %02x", c, i, l.Kind, l.ID, l.Payload, id)
		}
	}
	return nil
}

// drain returns every line already received by l.
func drain(ctx context.Context, t *testing.T, l end) []string {
	t.Helper()
	var got []string
	for l.Buffered() > 0 {
		s, err := l.ReadLine(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	return got
}

// checkDelivered compares what the application read with each recorded
// message once, in order of first appearance.
func checkDelivered(t *testing.T, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	t.Errorf("the application read %d messages, want %d (each recorded message once, in order)", len(got), len(want))
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("message %d: read %q, want %q", i, g, w)
		}
	}
}

// TestReplayServer drives our server with the node side of each legacy
// transcript: per recorded connection, the ID, then (once our server has
// answered) the node's bytes chunk by chunk at 20 times the recorded pace.
// Our server must ACK every message in order and send only well-formed
// lines, and its application must read each message exactly once: the
// repeated 00 of mid0-c2s once, and in partial-line the message 07, not
// the fragment of it that ended connection 1 glued onto the next line.
//
// In mid0-c2s the ACK of 00 was lost on the way; replayed on loopback,
// the replaying node's TCP stack acknowledges our server's ACK before the
// connection is closed, which is evidence that the node got it (see
// link.Window, rule 2): its next identical 00 would be a new life. The
// server's sockets hide their TCP state here (opaqueConn), as on a system
// without TCP_INFO, so that our server decides as it would have on the
// recorded path: by the horizon.
//
// No replayed silence comes near replayT, so our server never times out
// on its own: if it does, the replay ran late, and it is void only if the
// process was measurably stalled for that long (see replayAttempts).
func TestReplayServer(t *testing.T) {
	t.Parallel()
	for name, evs := range transcripts(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			replayAttempts(t, evs, legacy.C2S, func(ctx context.Context, probe *lagprobe.Probe) *voidReplay {
				return replayServerOnce(ctx, t, name, evs, probe)
			})
		})
	}
}

func replayServerOnce(ctx context.Context, t *testing.T, name string, evs []legacy.Event, probe *lagprobe.Probe) *voidReplay {
	rec := analyse(t, evs, legacy.C2S)
	srv := startServerOn(t, server.Config{Timeout: replayT, RecvQueue: 1000}, true)
	void := func() *voidReplay { return timedOut(srv.events, probe, evs, legacy.C2S) }
	var sl *link.Link
	for k, c := range legacy.Conns(evs) {
		// A broken connection: our server's Down event, dispatched
		// apart, tells whether it timed out; wait for it first.
		voidAfterDown := func(err error) *voidReplay {
			t.Helper()
			srv.events.waitDown(ctx, k+1)
			return voidOr(t, void(), err)
		}
		p := dialRaw(ctx, t, srv.addr)
		p.send(rec.id + "\n")
		if _, err := p.next(ctx); err != nil { // our server's first line
			return voidAfterDown(err)
		}
		if sl == nil {
			var err error
			if sl, err = srv.Node(ctx, rec.id); err != nil {
				t.Fatal(err)
			}
		}
		rest, after := withoutFirst(evs, c, legacy.C2S)
		if after != "" {
			p.send(after)
		}
		if err := (legacy.ReplayConfig{Speed: replaySpeed}).Replay(ctx, p.conn, rest, c, legacy.C2S); err != nil {
			return voidAfterDown(err)
		}
		if err := collectAcks(ctx, p, c, rec.acks[c]); err != nil {
			return voidAfterDown(err)
		}
		p.conn.Close()
		if err := srv.events.waitDown(ctx, k+1); err != nil {
			t.Fatal(err)
		}
	}
	if v := void(); v != nil {
		return v
	}
	got := drain(ctx, t, sl)
	checkDelivered(t, got, rec.payloads)
	st := sl.Stats()
	if st.Malformed+st.TooLong+st.NotUTF8+st.PeerRestarts+st.Refused != 0 {
		t.Errorf("stats: %d malformed, %d too long, %d not UTF-8, %d restarts, %d refused; want none", st.Malformed, st.TooLong, st.NotUTF8, st.PeerRestarts, st.Refused)
	}
	t.Logf("%d connections, %d messages read, %d duplicates ACKed and dropped", len(legacy.Conns(evs)), len(got), st.Duplicates)
	switch name {
	case "mid0-c2s":
		if n := countPrefix(got, "[0, "); n != 1 {
			t.Errorf("message 00 read %d times, want once", n)
		}
		if st.Duplicates == 0 {
			t.Error("the repeat of 00 was not counted as a duplicate")
		}
	case "partial-line":
		if n := countPrefix(got, "[7, "); n != 1 {
			t.Errorf("message 07 read %d times, want once", n)
		}
		if frag := rec.partial[1]; frag == "" || slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, frag[2:]+"07") }) {
			t.Errorf("connection 1's fragment %q was glued onto a later line", frag)
		}
	}
	return nil
}

// voidReplay says why a replay attempt proves nothing: our side timed
// out, as it must after replayT of silence, and the process was stalled
// long enough within that time to have made the replayer that late.
type voidReplay struct {
	at      time.Time
	stalled time.Duration
	need    time.Duration
}

func (v *voidReplay) String() string {
	return fmt.Sprintf("our side timed out at %s; the process was stalled %v within the T before (more than the %v of T no replayed silence uses)",
		v.at.Format("15:04:05.000"), v.stalled.Round(time.Millisecond), v.need.Round(time.Millisecond))
}

// replayAttempts runs a replay until an attempt is not void, at most
// maxReplays times. An attempt is void only when our side timed out and
// the probe shows why (see timedOut); any other failure fails the test.
func replayAttempts(t *testing.T, evs []legacy.Event, dir string, once func(context.Context, *lagprobe.Probe) *voidReplay) {
	t.Helper()
	const maxReplays = 5
	for try := 1; ; try++ {
		ctx := testCtx(t)
		v := once(ctx, lagprobe.New(t))
		if v == nil {
			return
		}
		if try == maxReplays {
			t.Fatalf("attempt %d of %d void: %v", try, maxReplays, v)
		}
		t.Logf("attempt %d void, replaying again: %v", try, v)
	}
}

// timedOut returns a voidReplay if our side declared an outage for
// silence and the process was stalled, within the T before, at least as
// long as T less the longest replayed silence: no replay that ran on time
// lets our side time out. A timeout without such a stall returns nil,
// and the attempt's failure stands.
func timedOut(ev *events, probe *lagprobe.Probe, evs []legacy.Event, dir string) *voidReplay {
	need := replayT - longestSilence(evs, dir)/replaySpeed
	if at, st, ok := ev.stallTimeout(probe, replayT, need); ok {
		return &voidReplay{at: at, stalled: st, need: need}
	}
	return nil
}

// longestSilence is the longest recorded gap between two chunks of one
// connection in direction dir.
func longestSilence(evs []legacy.Event, dir string) time.Duration {
	var most time.Duration
	for _, c := range legacy.Conns(evs) {
		ch := legacy.Chunks(evs, c, dir)
		for i := 1; i < len(ch); i++ {
			most = max(most, time.Duration((ch[i].T-ch[i-1].T)*float64(time.Second)))
		}
	}
	return most
}

// voidOr returns v if the attempt is void; otherwise err fails the test.
func voidOr(t *testing.T, v *voidReplay, err error) *voidReplay {
	t.Helper()
	if v == nil {
		t.Fatal(err)
	}
	return v
}

func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, s := range lines {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

// TestReplayClient drives our client with the legacy server's side of each
// transcript, from a scripted server: per recorded connection it reads our
// client's ID, then writes the server's bytes chunk by chunk at 20 times
// the recorded pace. Our client must ACK every message in order and send
// only well-formed lines, and its application must read each message
// exactly once. (A timeout of our client voids an attempt as in
// TestReplayServer.)
func TestReplayClient(t *testing.T) {
	t.Parallel()
	for name, evs := range transcripts(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			replayAttempts(t, evs, legacy.S2C, func(ctx context.Context, probe *lagprobe.Probe) *voidReplay {
				return replayClientOnce(ctx, t, evs, probe)
			})
		})
	}
}

func replayClientOnce(ctx context.Context, t *testing.T, evs []legacy.Event, probe *lagprobe.Probe) *voidReplay {
	rec := analyse(t, evs, legacy.S2C)
	ln := testutil.Listen(t)
	ev := newEvents()
	cl := ourClient(ctx, t, client.Config{
		ID:             rec.id,
		Server:         ln.Addr().String(),
		Timeout:        replayT,
		RecvQueue:      1000,
		ReconnectDelay: replayT / 4,
	}, ev)
	void := func() *voidReplay { return timedOut(ev, probe, evs, legacy.S2C) }
	for k, c := range legacy.Conns(evs) {
		voidAfterDown := func(err error) *voidReplay { // see replayServerOnce
			t.Helper()
			ev.waitDown(ctx, k+1)
			return voidOr(t, void(), err)
		}
		p := acceptRaw(ctx, t, ln)
		if id, err := p.next(ctx); err != nil || id != rec.id {
			return voidAfterDown(fmt.Errorf("conn %d: first line %q, %v; want the ID %q", c, id, err, rec.id))
		}
		if err := (legacy.ReplayConfig{Speed: replaySpeed}).Replay(ctx, p.conn, evs, c, legacy.S2C); err != nil {
			return voidAfterDown(err)
		}
		if err := collectAcks(ctx, p, c, rec.acks[c]); err != nil {
			return voidAfterDown(err)
		}
		p.conn.Close()
		if err := ev.waitDown(ctx, k+1); err != nil {
			t.Fatal(err)
		}
	}
	if v := void(); v != nil {
		return v
	}
	got := drain(ctx, t, cl)
	checkDelivered(t, got, rec.payloads)
	st := cl.Stats()
	if st.Malformed+st.TooLong+st.NotUTF8+st.PeerRestarts+st.Refused != 0 {
		t.Errorf("stats: %d malformed, %d too long, %d not UTF-8, %d restarts, %d refused; want none", st.Malformed, st.TooLong, st.NotUTF8, st.PeerRestarts, st.Refused)
	}
	t.Logf("%d connections, %d messages read, %d duplicates ACKed and dropped", len(legacy.Conns(evs)), len(got), st.Duplicates)
	return nil
}
