// Package demotest holds what the demo packages' tests share: a Story,
// the writer behind a test's demo.Printer, which keeps the narration and
// lets a test wait for lines without polling.
package demotest

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// Story is the writer behind a test's demo.Printer: it keeps the
// narration and lets the test wait for lines without polling. It is safe
// for concurrent use.
type Story struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed, and replaced, at each new line
}

// NewStory returns an empty story.
func NewStory() *Story { return &Story{changed: make(chan struct{})} }

// Write records p's lines.
func (s *Story) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, strings.Split(strings.TrimSuffix(string(p), "\n"), "\n")...)
	close(s.changed)
	s.changed = make(chan struct{})
	return len(p), nil
}

// String returns the whole story.
func (s *Story) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

// All returns the submatches of every line that matches re so far.
func (s *Story) All(re *regexp.Regexp) [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var m [][]string
	for _, l := range s.lines {
		if sm := re.FindStringSubmatch(l); sm != nil {
			m = append(m, sm)
		}
	}
	return m
}

// Count returns how many lines match re so far.
func (s *Story) Count(re *regexp.Regexp) int { return len(s.All(re)) }

// Await blocks until n lines in all match re and returns their
// submatches. It fails the test, showing the story, if ctx ends first.
func (s *Story) Await(ctx context.Context, t testing.TB, re *regexp.Regexp, n int) [][]string {
	t.Helper()
	var m [][]string
	seen := 0
	for {
		s.mu.Lock()
		for _, l := range s.lines[seen:] {
			if sm := re.FindStringSubmatch(l); sm != nil {
				m = append(m, sm)
			}
		}
		seen = len(s.lines)
		ch := s.changed
		s.mu.Unlock()
		if len(m) >= n {
			return m
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("waited in vain for %d lines matching %q (saw %d); the story:\n%s", n, re, len(m), s)
		}
	}
}
