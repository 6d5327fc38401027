package demo_test

import (
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tether-iot/tether/internal/tools/demo"
)

// TestPrinter checks the narration's layout (time, who in a column of
// ten, text) and that concurrent speakers never mix their lines.
func TestPrinter(t *testing.T) {
	var b strings.Builder // the Printer serialises its writes
	p := demo.NewPrinter(&b)
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { p.Say("node "+strconv.Itoa(i), "count %d, %s", i, strings.Repeat("x", i)) })
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), n, b.String())
	}
	re := regexp.MustCompile(`^ +\d+\.\ds  (node \d+) +count (\d+), (x*)$`)
	seen := make(map[int]bool)
	for _, l := range lines {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %q is not \"TIMEs  WHO TEXT\"", l)
		}
		i, _ := strconv.Atoi(m[2])
		if m[1] != "node "+m[2] || len(m[3]) != i {
			t.Errorf("line %q mixes two speakers", l)
		}
		if strings.Index(l, "count") != 20 {
			t.Errorf("line %q: the text does not start in column 20", l)
		}
		seen[i] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct speakers, want %d", len(seen), n)
	}
	if p.Elapsed() <= 0 {
		t.Errorf("Elapsed = %v, want > 0", p.Elapsed())
	}
}
