package soak

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestReportVerdict(t *testing.T) {
	r := &Report{Outages: 3, Recover: []time.Duration{1, 2, 3}}
	if !r.OK() || !strings.HasPrefix(r.Verdict(), "PASS: 0 lost, 0 duplicated, 0 out of order, 3 outages") {
		t.Errorf("clean report: OK %v, %q", r.OK(), r.Verdict())
	}
	if r.Percentile(50) != 2 || r.Percentile(99) != 2 || r.Percentile(100) != 3 {
		t.Errorf("percentiles: %v %v %v", r.Percentile(50), r.Percentile(99), r.Percentile(100))
	}
	for name, bad := range map[string]*Report{
		"lost":         {Up: Direction{Lost: 1}},
		"duplicated":   {Down: Direction{Duplicated: 1}},
		"out of order": {Up: Direction{OutOfOrder: 1}},
		"failed":       {Failed: []error{errors.New("x")}},
	} {
		if bad.OK() || !strings.HasPrefix(bad.Verdict(), "FAIL") {
			t.Errorf("%s: OK %v, %q", name, bad.OK(), bad.Verdict())
		}
	}
	// Reordering without wait is allowed.
	if r := (&Report{Up: Direction{Reordered: 5}}); !r.OK() {
		t.Error("reordering without wait fails the soak")
	}
}

func TestParseLine(t *testing.T) {
	for _, s := range []string{"hello r1", "d r1 w 7", "d r1 f 0", "end r1 3 4", "end r1 3 4 1 2 3 4 5 6 7 8 9 10"} {
		if _, err := parseLine(s); err != nil {
			t.Errorf("parseLine(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "hello", "d r1 x 7", "d r1 w -1", "end r1 3", "end r1 a b", "bye r1"} {
		if _, err := parseLine(s); err == nil {
			t.Errorf("parseLine(%q): no error", s)
		}
	}
	m, _ := parseLine("end r1 3 4 1 2 3 4 5 6 7 8 9 10")
	if m.sent != [2]uint64{3, 4} || m.view[1].Received != 6 || m.view[0].Unexpected != 5 {
		t.Errorf("parsed %+v %+v", m, m.view)
	}
}

func TestParseFaults(t *testing.T) {
	if f, err := ParseFaults("all"); err != nil || len(f) != 4 {
		t.Errorf("all: %v %v", f, err)
	}
	if f, err := ParseFaults("none"); err != nil || f == nil || len(f) != 0 {
		t.Errorf("none: %v %v", f, err)
	}
	if f, err := ParseFaults("cut, blackhole"); err != nil || len(f) != 2 || f[1] != Blackhole {
		t.Errorf("list: %v %v", f, err)
	}
	if _, err := ParseFaults("cut,flood"); err == nil {
		t.Error("flood: no error")
	}
}
