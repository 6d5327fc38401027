package legacy

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tether-iot/tether/internal/harness/testutil"
)

// transcripts maps each recording to whether every write in it used
// wait=True, so that new ids appear in strict order.
var transcripts = map[string]bool{
	"cut":            true,
	"blackhole":      true,
	"targeted":       true,
	"nowait-outages": false,
	"mid0-c2s":       true,
	"partial-line":   true,
}

// loadTranscript fails the test, loudly, when a recording is missing.
func loadTranscript(t *testing.T, name string) []Event {
	t.Helper()
	path := filepath.Join(testutil.TranscriptDir(t), name+".jsonl")
	evs, err := LoadTranscript(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 {
		t.Fatalf("%s is empty", path)
	}
	return evs
}

func TestTranscriptsPresent(t *testing.T) {
	dir := testutil.TranscriptDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil || len(files) != len(transcripts) {
		t.Fatalf("want the %d legacy transcripts in %s, found %v (%v)", len(transcripts), dir, files, err)
	}
}

func TestTranscripts(t *testing.T) {
	for name, strict := range transcripts {
		t.Run(name, func(t *testing.T) {
			evs := loadTranscript(t, name)
			checkConnEvents(t, evs)
			for _, err := range checkLines(name, evs, strict) {
				t.Error(err)
			}
		})
	}
}

// checkConnEvents checks that each connection opens first and closes last.
func checkConnEvents(t *testing.T, evs []Event) {
	t.Helper()
	for _, cn := range Conns(evs) {
		var first, last Event
		for _, e := range evs {
			if e.Conn != cn {
				continue
			}
			if first.Conn == 0 {
				first = e
			}
			last = e
		}
		if first.Ev != "open" || last.Ev != "close" {
			t.Errorf("conn %d: first event %q, last %q", cn, first.Ev, last.Ev)
		}
	}
}

// checkLines re-assembles every connection's lines in time order and
// checks the legacy line forms and id sequences.
func checkLines(id string, evs []Event, strict bool) (errs []error) {
	type key struct {
		conn int
		dir  string
	}
	bufs := make(map[key]string)
	seen := map[string]map[int]string{C2S: {}, S2C: {}} // id -> line
	gens := map[string]*midGen{C2S: {}, S2C: {}}
	gotID := make(map[int]bool)
	other := map[string]string{C2S: S2C, S2C: C2S}
	for _, e := range evs {
		if !e.IsData() {
			continue
		}
		k := key{e.Conn, e.Dir}
		parts := strings.Split(bufs[k]+e.Data, "\n")
		bufs[k] = parts[len(parts)-1]
		for _, s := range parts[:len(parts)-1] {
			if e.Dir == C2S && !gotID[e.Conn] {
				gotID[e.Conn] = true
				if s != id {
					errs = append(errs, fmt.Errorf("conn %d: ID line %q, want %q", e.Conn, s, id))
				}
				continue
			}
			l, err := ParseLine(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("conn %d %s: %v", e.Conn, e.Dir, err))
				continue
			}
			switch l.Kind {
			case Ack:
				if _, ok := seen[other[e.Dir]][l.ID]; !ok {
					errs = append(errs, fmt.Errorf("conn %d %s: ACK %02x of a message never sent", e.Conn, e.Dir, l.ID))
				}
			case Message:
				if prev, ok := seen[e.Dir][l.ID]; ok {
					if prev != s {
						errs = append(errs, fmt.Errorf("%s: repeat of %02x differs: %q vs %q", e.Dir, l.ID, s, prev))
					}
					continue
				}
				seen[e.Dir][l.ID] = s
				if strict {
					if want := gens[e.Dir].next(); l.ID != want {
						errs = append(errs, fmt.Errorf("%s: new id %02x, want %02x (%q)", e.Dir, l.ID, want, s))
					}
				}
			}
		}
	}
	for dir, m := range seen {
		if len(m) == 0 || len(m) > 255 {
			errs = append(errs, fmt.Errorf("%s: %d distinct messages", dir, len(m)))
		}
		var g midGen
		for range len(m) {
			if id := g.next(); m[id] == "" {
				errs = append(errs, fmt.Errorf("%s: ids are not the legacy sequence: %02x missing", dir, id))
			}
		}
	}
	for _, cn := range Conns(evs) {
		if !gotID[cn] {
			errs = append(errs, fmt.Errorf("conn %d sent no ID", cn))
		}
	}
	return errs
}

// The link died mid-line: the node's fragment is the start of the line it
// repeats on the next connection, and the legacy server ACKed the glued
// line.
func TestTranscriptPartialLine(t *testing.T) {
	evs := loadTranscript(t, "partial-line")
	_, frag := Lines(evs, 1, C2S)
	if !strings.HasPrefix(frag, "07") {
		t.Fatalf("conn 1 ends with fragment %q, want the start of message 07", frag)
	}
	lines, _ := Lines(evs, 2, C2S)
	if len(lines) < 2 || !strings.HasPrefix(lines[1], frag) || lines[1] == frag {
		t.Fatalf("conn 2 first message %q does not repeat fragment %q", lines[1], frag)
	}
	acks, _ := Lines(evs, 2, S2C)
	if !slices.Contains(acks, "07") {
		t.Errorf("the server did not ACK the glued line 07: %q", acks)
	}
}

// The ACK of the node's 00 never came: the node repeated 00, identical, on
// the next connection.
func TestTranscriptMid0Repeat(t *testing.T) {
	evs := loadTranscript(t, "mid0-c2s")
	var zeros []string
	for _, cn := range Conns(evs) {
		lines, _ := Lines(evs, cn, C2S)
		for _, s := range lines {
			if strings.HasPrefix(s, "00") && len(s) > 2 {
				zeros = append(zeros, fmt.Sprint(cn, ":", s))
			}
		}
	}
	if len(zeros) != 2 || zeros[0][2:] != zeros[1][2:] || zeros[0][:2] != "1:" || zeros[1][:2] != "2:" {
		t.Fatalf("message 00 from the node: %q, want it once on conn 1 and repeated on conn 2", zeros)
	}
}

// The checker catches what it claims to: a repeat with other bytes, an id
// out of sequence, a line of no legacy form, an ACK of nothing.
func TestCheckLinesRejects(t *testing.T) {
	evs := loadTranscript(t, "mid0-c2s")
	for _, tc := range []struct{ name, old, new string }{
		{"repeat differs", "00[0, \"c:mid0-c2s\", 1795557669.827534]\n", "00[0, \"c:mid0-c2s\", 0]\n"},
		{"id skipped", "01[1, \"c:mid0-c2s\"", "05[1, \"c:mid0-c2s\""},
		{"bad form", "02[2, \"c:mid0-c2s\"", "2x[2, \"c:mid0-c2s\""},
		{"ack of nothing", "03\n", "7f\n"},
	} {
		mut := slices.Clone(evs)
		changed := false
		for i := range mut {
			if !changed && strings.Contains(mut[i].Data, tc.old) {
				mut[i].Data = strings.Replace(mut[i].Data, tc.old, tc.new, 1)
				changed = true
			}
		}
		if !changed {
			t.Fatalf("%s: %q not found", tc.name, tc.old)
		}
		if errs := checkLines("mid0-c2s", mut, true); len(errs) == 0 {
			t.Errorf("%s: not detected", tc.name)
		}
	}
}
