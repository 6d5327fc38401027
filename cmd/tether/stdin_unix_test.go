//go:build unix

package main

import (
	"errors"
	"io"
	"os"
	"testing"
)

// A pollReader reads what is written, ends with EOF when the writer
// closes, and its Close ends a blocked Read.
func TestPollReader(t *testing.T) {
	r, w := openPipe(t)
	pr, err := interruptible(r)
	if err != nil {
		t.Fatal(err)
	}
	defer pr.release()
	w.WriteString("a\tline\n")
	buf := make([]byte, 64)
	if n, err := pr.Read(buf); err != nil || string(buf[:n]) != "a\tline\n" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	blocked := make(chan error, 1)
	go func() {
		_, err := pr.Read(buf)
		blocked <- err
	}()
	pr.Close()
	if err := <-blocked; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("blocked read after Close: %v, want os.ErrClosed", err)
	}

	r2, w2 := openPipe(t)
	pr2, err := interruptible(r2)
	if err != nil {
		t.Fatal(err)
	}
	defer pr2.release()
	w2.WriteString("x")
	w2.Close()
	if b, err := io.ReadAll(pr2); err != nil || string(b) != "x" {
		t.Fatalf("read to EOF: %q, %v", b, err)
	}
}
