package conformance

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/tether-iot/tether/internal/harness/legacy"
)

// wireSpec says which side of a recorded transcript is ours and what to
// hold it to.
type wireSpec struct {
	ours       string        // legacy.S2C (our server) or legacy.C2S (our client)
	id         string        // the node ID, the first line of each connection
	t          time.Duration // T
	writePause time.Duration // our server's write pause; zero: not checked
	// newLife lists the connections on which our side is a new process
	// (our client restarted): its ids start at 00 again.
	newLife map[int]bool
	// noRhythm skips the keepalive rhythm check, for transcripts whose
	// timing was not made by live peers.
	noRhythm bool
	// anyOrder lets new ids go out in any order, as a legacy sender
	// without wait does (for the checks of the legacy transcripts).
	anyOrder bool
	// stalled, if set, says how long the test's process was stalled (see
	// lagprobe) between two transcript times: the timing bounds allow for
	// it, since every goroutine of our side was held up as long.
	stalled func(from, to float64) time.Duration
}

// stall returns how long the process was stalled between transcript
// times from and to, zero if not measured.
func (s wireSpec) stall(from, to float64) time.Duration {
	if s.stalled == nil {
		return 0
	}
	return s.stalled(from, to)
}

// wireReport holds the figures of a transcript check.
type wireReport struct {
	conns      int // connections
	lines      int // lines from our side, IDs left out
	keepalives int
	acks       int
	msgs       int // messages from our side, repeats included
	repeats    int
	peerMsgs   int // messages from the peer that reached our side
	unacked    int // of which not ACKed because the connection ended first

	maxGap      time.Duration // longest silence of our side while connected
	maxStall    time.Duration // the most the process stalled within one silence
	maxInFlight int           // our message ids sent and not yet ACKed, at most
	minPause    time.Duration // least wait from the peer's first bytes to our first message
}

func (r wireReport) String() string {
	return fmt.Sprintf("%d conns, %d lines from our side (%d keepalives, %d ACKs, %d messages of which %d repeats), "+
		"%d peer messages (%d unACKed at a cut), longest silence %v (the process stalled up to %v within one), at most %d ids in flight, write pause >= %v",
		r.conns, r.lines, r.keepalives, r.acks, r.msgs, r.repeats, r.peerMsgs, r.unacked,
		r.maxGap.Round(time.Millisecond), r.maxStall.Round(time.Millisecond), r.maxInFlight, r.minPause.Round(time.Millisecond))
}

// reporter is the part of testing.T that checkWire uses, so that its own
// tests can count what it reports.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
}

// wline is one line of a transcript.
type wline struct {
	text  string  // without its LF
	start int     // index of the event holding its first byte
	end   int     // index of the event holding its LF
	t     float64 // time of the start event
}

// splitLines re-assembles the lines of connection conn in direction dir.
// With dropped, the chunks the proxy discarded count too: they were
// written by the peer on that side, though never delivered.
func splitLines(evs []legacy.Event, conn int, dir string, dropped bool) (lines []wline, partial string) {
	var cur strings.Builder
	start := -1
	for i, e := range evs {
		if !e.IsData() || e.Conn != conn || e.Dir != dir || (e.Dropped && !dropped) {
			continue
		}
		for _, s := range strings.SplitAfter(e.Data, "\n") {
			if s == "" {
				continue
			}
			if start < 0 {
				start = i
			}
			if !strings.HasSuffix(s, "\n") {
				cur.WriteString(s)
				continue
			}
			cur.WriteString(strings.TrimSuffix(s, "\n"))
			lines = append(lines, wline{text: cur.String(), start: start, end: i, t: evs[start].T})
			cur.Reset()
			start = -1
		}
	}
	return lines, cur.String()
}

func other(dir string) string {
	if dir == legacy.S2C {
		return legacy.C2S
	}
	return legacy.S2C
}

// nextID is the id after id: 00 is used once, ff wraps to 01.
func nextID(id int) int {
	if id == 0xff {
		return 1
	}
	return id + 1
}

// idCheck follows the ids of one sender's life: 00 first, then each new
// message the next id; anything else must repeat an earlier message
// byte for byte, recent enough to sit in the receiver's window.
type idCheck struct {
	anyOrder bool // new ids may come in any order (legacy, no wait)
	started  bool
	next     int
	serial   int
	last     map[int]sent
}

type sent struct {
	payload string
	serial  int
}

func newIDCheck() *idCheck { return &idCheck{last: make(map[int]sent)} }

// check classifies a message; it returns an error for a violation.
func (c *idCheck) check(id int, payload string) (repeat bool, err error) {
	isNew := (!c.started && id == 0) || (c.started && id == c.next)
	if c.anyOrder && c.started && id != 0 {
		m, ok := c.last[id]
		isNew = !ok || c.serial-m.serial >= 128
	}
	if isNew {
		c.started = true
		c.next = nextID(id)
		c.serial++
		c.last[id] = sent{payload, c.serial}
		return false, nil
	}
	if !c.started {
		return false, fmt.Errorf("first message has id %02x, not 00", id)
	}
	m, ok := c.last[id]
	switch {
	case !ok || m.payload != payload:
		return false, fmt.Errorf("message %02x %q is neither the next id (%02x) nor a repeat of an earlier message", id, payload, c.next)
	case c.serial-m.serial >= 128:
		return false, fmt.Errorf("message %02x repeated %d messages later: outside half the window", id, c.serial-m.serial)
	}
	return true, nil
}

// checkWire holds our side of a recorded transcript to internal/wire/spec.md: each
// line is a keepalive, an ACK or a message; ids go 00, 01, ... ff, 01 with
// repeats byte-identical; every message from the peer is ACKed, in order,
// unless the connection ended first; our server writes no message before
// the write pause has passed; and our side is never silent for much more
// than T/4 while connected.
func checkWire(t reporter, evs []legacy.Event, spec wireSpec) wireReport {
	t.Helper()
	var rep wireReport
	rep.minPause = time.Duration(math.MaxInt64)
	ids := newIDCheck()
	ids.anyOrder = spec.anyOrder
	inflight := make(map[int]bool)
	for _, c := range legacy.Conns(evs) {
		rep.conns++
		if spec.newLife[c] {
			ids = newIDCheck()
			ids.anyOrder = spec.anyOrder
			clear(inflight)
		}
		ours, partial := splitLines(evs, c, spec.ours, true)
		theirs, _ := splitLines(evs, c, other(spec.ours), false)
		if spec.ours == legacy.C2S {
			if len(ours) == 0 {
				continue
			}
			if ours[0].text != spec.id {
				t.Errorf("conn %d: our client's first line is %q, not its ID %q", c, ours[0].text, spec.id)
			}
			ours = ours[1:]
		} else if len(theirs) > 0 {
			theirs = theirs[1:] // the node's ID
		}
		if partial != "" && !validPrefix(partial) {
			t.Errorf("conn %d: our side's last, cut line %q is malformed", c, partial)
		}

		// Walk both directions in recorded order: a peer message counts
		// once its LF has passed, our lines from their first byte.
		var unacked []wmsg // peer messages awaiting our ACK, oldest first
		i, j := 0, 0
		for i < len(ours) || j < len(theirs) {
			if j < len(theirs) && (i == len(ours) || theirs[j].end < ours[i].start) {
				l, err := legacy.ParseLine(theirs[j].text)
				j++
				switch {
				case err != nil:
					t.Logf("conn %d: peer line %q ignored: %v", c, theirs[j-1].text, err)
				case l.Kind == legacy.Message:
					rep.peerMsgs++
					unacked = append(unacked, wmsg{l.ID, evs[theirs[j-1].end].T})
				case l.Kind == legacy.Ack:
					delete(inflight, l.ID)
				}
				continue
			}
			w := ours[i]
			i++
			rep.lines++
			l, err := legacy.ParseLine(w.text)
			if err != nil {
				t.Errorf("conn %d: malformed line from our side %q: %v", c, w.text, err)
				continue
			}
			switch l.Kind {
			case legacy.Keepalive:
				rep.keepalives++
			case legacy.Ack:
				rep.acks++
				if len(unacked) == 0 || unacked[0].id != l.ID {
					t.Errorf("conn %d: our ACK %02x does not answer the oldest unACKed message from the peer (%s)", c, l.ID, hexList(unacked))
					continue
				}
				unacked = unacked[1:]
			case legacy.Message:
				rep.msgs++
				repeat, err := ids.check(l.ID, l.Payload)
				if err != nil {
					t.Errorf("conn %d: %v", c, err)
				}
				if repeat {
					rep.repeats++
				}
				inflight[l.ID] = true
				rep.maxInFlight = max(rep.maxInFlight, len(inflight))
			}
		}
		// A message may go unACKed only if the connection ended before
		// the ACK could be written: within T of the message, or longer
		// by as long as the process was stalled meanwhile.
		if end := connEnd(evs, c); len(unacked) > 0 && end >= 0 {
			late := time.Duration((end - unacked[0].t) * float64(time.Second))
			if stall := spec.stall(unacked[0].t, end); late > spec.t+stall {
				t.Errorf("conn %d: messages %s from the peer never ACKed, though the connection lived %v more (T %v; the process stalled %v meanwhile)", c, hexList(unacked), late, spec.t, stall)
			}
		}
		rep.unacked += len(unacked)

		if spec.writePause > 0 {
			checkPause(t, evs, c, ours, spec, &rep)
		}
		if !spec.noRhythm {
			checkRhythm(t, evs, c, spec, &rep)
		}
	}
	if rep.minPause == time.Duration(math.MaxInt64) {
		rep.minPause = 0
	}
	return rep
}

// validPrefix reports whether s can begin a well-formed line.
func validPrefix(s string) bool {
	for i := 0; i < len(s) && i < 2; i++ {
		if !strings.ContainsRune("0123456789abcdef", rune(s[i])) {
			return false
		}
	}
	return true
}

// wmsg is a message from the peer: its id and when its LF passed.
type wmsg struct {
	id int
	t  float64
}

func hexList(ms []wmsg) string {
	var b strings.Builder
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%02x", m.id)
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// connEnd returns the time of connection c's first "eof" or "close"
// event, or -1.
func connEnd(evs []legacy.Event, c int) float64 {
	for _, e := range evs {
		if e.Conn == c && (e.Ev == "eof" || e.Ev == "close") {
			return e.T
		}
	}
	return -1
}

// checkPause checks that our server wrote no message on connection c
// before the node's first bytes after its ID, plus the write pause. The
// proxy stamps a chunk just before writing it on, to the millisecond: the
// server read the node's bytes after their stamp and the proxy stamped our
// message after the server wrote it.
func checkPause(t reporter, evs []legacy.Event, c int, ours []wline, spec wireSpec, rep *wireReport) {
	t.Helper()
	first := -1.0
	idDone := false
	for _, e := range evs {
		if !e.IsData() || e.Conn != c || e.Dir != other(spec.ours) || e.Dropped {
			continue
		}
		if !idDone {
			_, rest, found := strings.Cut(e.Data, "\n")
			if !found {
				continue
			}
			idDone = true
			if rest == "" {
				continue
			}
		}
		first = e.T
		break
	}
	for _, w := range ours {
		if len(w.text) < 3 {
			continue // keepalives and ACKs may go at once
		}
		if first < 0 {
			t.Errorf("conn %d: our server sent message %q before any byte from the node after its ID", c, w.text)
			return
		}
		wait := time.Duration((w.t - first) * float64(time.Second))
		if wait < spec.writePause-time.Millisecond {
			t.Errorf("conn %d: our server sent %q %v after the node's first bytes: within the %v write pause", c, w.text, wait, spec.writePause)
		}
		rep.minPause = min(rep.minPause, wait)
		return
	}
}

// checkRhythm checks our keepalive rhythm on connection c: from the
// connection's start (the node's ID for our server, the open for our
// client) to its first end (an EOF or the close), no silence from our side
// longer than T/4 plus a tolerance (so less than T: the peer never sees an
// outage), plus as long as the process was stalled within that silence
// (spec.stalled): a stall holds up our keepalive timer as long, and its
// T/4 cadence is checked exactly, in fake time, by link's
// TestKeepaliveAndSilentPeer and TestKeepaliveCadence.
func checkRhythm(t reporter, evs []legacy.Event, c int, spec wireSpec, rep *wireReport) {
	t.Helper()
	limit := spec.t/4 + max(spec.t/4, 150*time.Millisecond)
	if limit >= spec.t {
		limit = spec.t * 7 / 8
	}
	begin, end := -1.0, -1.0
	var times []float64
	for _, e := range evs {
		if e.Conn != c {
			continue
		}
		switch {
		case e.Ev == "open" && spec.ours == legacy.C2S:
			begin = e.T
		case e.IsData() && e.Dir != spec.ours && begin < 0 && spec.ours == legacy.S2C:
			begin = e.T
		case e.IsData() && e.Dir == spec.ours && end < 0:
			times = append(times, e.T)
		case (e.Ev == "eof" || e.Ev == "close") && end < 0:
			end = e.T
		}
	}
	if begin < 0 {
		return
	}
	if end >= 0 {
		times = append(times, end)
	}
	prev := begin
	for _, at := range times {
		gap := time.Duration((at - prev) * float64(time.Second))
		stall := spec.stall(prev, at)
		rep.maxGap = max(rep.maxGap, gap)
		rep.maxStall = max(rep.maxStall, stall)
		if gap > limit+stall {
			t.Errorf("conn %d: our side was silent for %v at t=%.3f (T/4 = %v, limit %v, plus %v the process was stalled meanwhile)", c, gap, prev, spec.t/4, limit, stall)
		}
		prev = at
	}
}
