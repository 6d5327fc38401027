package conformance

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tether-iot/tether/internal/harness/legacy"
)

// counter is a reporter that counts errors instead of failing.
type counter struct {
	t    *testing.T
	errs []string
}

func (c *counter) Helper() {}

func (c *counter) Errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

func (c *counter) Logf(format string, args ...any) { c.t.Logf(format, args...) }

// TestCheckerAcceptsLegacyPeers runs the transcript checks on the legacy
// peers' own recorded bytes (T = 2 s): the legacy server's side and the
// legacy node's side conform to internal/wire/spec.md on the wire, so the checks
// must find nothing. The keepalive rhythm is checked on the recordings
// without a black hole, whose held-back bytes the proxy stamped late.
func TestCheckerAcceptsLegacyPeers(t *testing.T) {
	t.Parallel()
	for name, evs := range transcripts(t) {
		id := firstLine(evs)
		// These hold outages of 3 s during which the proxy held bytes back.
		noRhythm := name == "blackhole" || name == "targeted" || name == "nowait-outages"
		anyOrder := name == "nowait-outages"
		for _, spec := range []wireSpec{
			{ours: legacy.S2C, t: 2 * time.Second, writePause: 200 * time.Millisecond, noRhythm: noRhythm, anyOrder: anyOrder},
			{ours: legacy.C2S, id: id, t: 2 * time.Second, noRhythm: noRhythm, anyOrder: anyOrder},
		} {
			c := &counter{t: t}
			rep := checkWire(c, evs, spec)
			for _, e := range c.errs {
				t.Errorf("%s, %s side: %s", name, spec.ours, e)
			}
			if rep.msgs == 0 || rep.acks == 0 {
				t.Errorf("%s, %s side: nothing checked: %v", name, spec.ours, rep)
			}
		}
	}
}

// synthetic builds a small transcript: one connection from node "n" to
// our server, which follows every rule. Each line is "t dir data", with
// data's \n standing for LF.
func synthetic(lines ...string) []legacy.Event {
	evs := []legacy.Event{{T: 0, Ev: "open", Conn: 1}}
	for _, l := range lines {
		var at float64
		var dir, data string
		fmt.Sscan(l, &at, &dir)
		_, data, _ = strings.Cut(strings.SplitN(l, " ", 2)[1], " ")
		data = strings.ReplaceAll(data, `\n`, "\n")
		if dir == "close" {
			evs = append(evs, legacy.Event{T: at, Ev: "close", Conn: 1})
			continue
		}
		evs = append(evs, legacy.Event{T: at, Conn: 1, Dir: dir, Data: data})
	}
	return evs
}

// cleanServer is a conforming exchange: the node's ID, our keepalive at
// once, the node's first bytes at 0.050, its message 00 ACKed at once, our
// messages after the 200 ms write pause, a repeat of 01, and the end.
var cleanServer = []string{
	`0.001 c2s n\n`,
	`0.002 s2c \n`,
	`0.050 c2s \n`,
	`0.064 s2c \n`,
	`0.100 c2s 00a\n`,
	`0.101 s2c 00\n`,
	`0.251 s2c 00b\n`,
	`0.252 c2s 00\n`,
	`0.300 s2c 01c\n`,
	`0.420 s2c \n01c\n`,
	`0.421 c2s 01\n`,
	`0.450 c2s 01d\n02e\n`,
	`0.451 s2c 01\n02\n`,
	`0.500 close`,
}

// TestCheckerCatches checks that the transcript checks find each kind of
// fault in an otherwise clean exchange.
func TestCheckerCatches(t *testing.T) {
	t.Parallel()
	spec := wireSpec{ours: legacy.S2C, t: T, writePause: 200 * time.Millisecond}
	c := &counter{t: t}
	checkWire(c, synthetic(cleanServer...), spec)
	if len(c.errs) > 0 {
		t.Fatalf("the clean exchange fails the checks: %q", c.errs)
	}
	// edit returns cleanServer with pairs of (old line, new line); an
	// empty new line deletes the old one.
	edit := func(pairs ...string) []string {
		out := slices.Clone(cleanServer)
		for k := 0; k < len(pairs); k += 2 {
			i := slices.Index(out, pairs[k])
			if i < 0 {
				t.Fatalf("no line %q", pairs[k])
			}
			if pairs[k+1] == "" {
				out = slices.Delete(out, i, i+1)
			} else {
				out[i] = pairs[k+1]
			}
		}
		return out
	}
	quiet := spec
	quiet.noRhythm = true
	shortT := spec
	shortT.t = 40 * time.Millisecond // silences over 160 ms are faults
	for _, tc := range []struct {
		name  string
		lines []string
		spec  wireSpec
	}{
		{"malformed ACK", edit(`0.101 s2c 00\n`, `0.101 s2c 0\n`), spec},
		{"upper-case id", edit(`0.300 s2c 01c\n`, `0.300 s2c 0Ac\n`), spec},
		{"id skipped", edit(`0.300 s2c 01c\n`, `0.300 s2c 02c\n`), spec},
		{"00 again", edit(`0.300 s2c 01c\n`, `0.300 s2c 00c\n`), spec},
		{"repeat changed", edit(`0.420 s2c \n01c\n`, `0.420 s2c \n01C\n`), spec},
		{"first id not 00", edit(`0.251 s2c 00b\n`, `0.251 s2c 05b\n`), spec},
		{"ACK missing", edit(`0.451 s2c 01\n02\n`, `0.451 s2c 02\n`), spec},
		{"ACK never sent", edit(`0.101 s2c 00\n`, `0.101 s2c \n`), spec},
		{"ACK of nothing", edit(`0.064 s2c \n`, `0.064 s2c 07\n`), spec},
		{"message in the write pause", edit(`0.251 s2c 00b\n`, `0.240 s2c 00b\n`), spec},
		{"silence", edit(`0.300 s2c 01c\n`, ""), shortT},
		{"ACK not sent, link lives", edit(`0.451 s2c 01\n02\n`, "", `0.500 close`, `0.900 close`), quiet},
		{"fragment", append(slices.Clone(cleanServer[:len(cleanServer)-1]), `0.460 s2c 0x`, `0.500 close`), spec},
		{"wrong ID", cleanServer, wireSpec{ours: legacy.C2S, id: "m", t: T}},
	} {
		c := &counter{t: t}
		checkWire(c, synthetic(tc.lines...), tc.spec)
		if len(c.errs) == 0 {
			t.Errorf("%s: not caught", tc.name)
		} else {
			t.Logf("%s: %s", tc.name, c.errs[0])
		}
	}
}
