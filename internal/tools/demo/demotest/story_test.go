package demotest

import (
	"context"
	"fmt"
	"regexp"
	"runtime"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Await returns once enough matching lines have been written, by another
// goroutine, in several writes; All and Count see them too.
func TestStoryAwait(t *testing.T) {
	s := NewStory()
	go func() {
		for i := range 5 {
			fmt.Fprintf(s, "line %d\nother\n", i)
		}
	}()
	re := regexp.MustCompile(`^line (\d)$`)
	m := s.Await(t.Context(), t, re, 5)
	if len(m) != 5 || m[4][1] != "4" {
		t.Fatalf("Await = %q", m)
	}
	if n := s.Count(regexp.MustCompile(`^other$`)); n != 5 {
		t.Fatalf("Count = %d, want 5", n)
	}
}

// Await fails the test when ctx ends first.
func TestStoryAwaitGivesUp(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ft := &fakeT{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		NewStory().Await(ctx, ft, regexp.MustCompile(`x`), 1)
	}()
	<-done
	if !ft.failed {
		t.Fatal("Await returned without failing the test")
	}
}

// fakeT records Fatalf and ends its goroutine, as testing.T does.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(string, ...any) {
	f.failed = true
	runtime.Goexit()
}
