// Package testutil holds helpers shared by Tether's tests.
package testutil

import (
	"io"
	"log/slog"
	"net"
	"os"
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
