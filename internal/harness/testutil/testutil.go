// Package testutil holds helpers shared by Tether's tests.
package testutil

import (
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// Logger returns a logger for tests: silent unless TETHER_TEST_LOG is set,
// then text on stderr at debug level.
func Logger() *slog.Logger {
	if os.Getenv("TETHER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Listen returns a TCP listener on a free loopback port, closed at the end
// of the test.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// TranscriptDir returns the folder of the recordings of the original
// micropython-iot peers, testdata/transcripts at the module's root (see
// its README.md), found from the test's working directory. It fails the
// test when the folder holds no *.jsonl file.
func TranscriptDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("no go.mod above the test's directory: cannot find testdata/transcripts")
		}
		dir = up
	}
	dir = filepath.Join(dir, "testdata", "transcripts")
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts of the legacy peers (*.jsonl) in %s (%v)", dir, err)
	}
	return dir
}
