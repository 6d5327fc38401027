package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
)

// Helpers shared by the demo, node and soak commands.

// listenTCP listens on addr and explains the usual failures.
func listenTCP(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	switch {
	case err == nil:
		return ln, nil
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("cannot listen on %s: the port is already in use (another tether server?): stop it or choose another port with --addr, e.g. --addr :8124", addr)
	case errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("cannot listen on %s: permission denied: ports below 1024 need root; use a higher one, e.g. --addr :8123", addr)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return nil, fmt.Errorf("cannot listen on %s: this host has no such address: use one of its own, or :PORT for all", addr)
	}
	return nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
}

// explainDial turns a start-up connection failure into advice.
func explainDial(err error, addr string) error {
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot reach the server at %s: connection refused: is the server running there (tether serve, or the demo's --serve)? Check the host and port, or add --retry to keep trying: %w", addr, err)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return fmt.Errorf("cannot reach the server at %s: no route to the host: check the address and this machine's network, or add --retry: %w", addr, err)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Errorf("cannot reach the server at %s: unknown host %q: check the name in --server: %w", addr, dnsErr.Name, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("cannot reach the server at %s: no answer in time (a firewall, or the wrong address?); add --retry to keep trying: %w", addr, err)
	}
	return fmt.Errorf("cannot reach the server at %s: %w", addr, err)
}

// wantsHelp reports whether args ask for help, so that help goes to
// stdout with exit status 0.
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help":
			return true
		case "--":
			return false
		}
	}
	return false
}

// parseFlags parses args with fs, printing errors and usage on stderr and
// help on stdout. It returns flag.ErrHelp after help and errUsage after a
// bad flag. The flags' environment variables are applied first
// (environ.go), so that the command line overrides them.
func parseFlags(e *env, fs *flag.FlagSet, args []string) error {
	if e.onFlagSet != nil {
		e.onFlagSet(fs)
	}
	if wantsHelp(args) {
		fs.SetOutput(e.stdout)
		fs.Usage()
		envHelp(e.stdout, fs)
		return flag.ErrHelp
	}
	fs.SetOutput(e.stderr)
	if err := applyEnv(fs, e.getenv); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	return nil
}

// isTerminal reports whether w is a terminal, where a live status line
// can be redrawn in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// liveOutput shares one stream (stderr) between log lines and a live
// status line: on a terminal the status line is redrawn in place at the
// bottom and log lines are written above it; elsewhere each status is a
// line of its own.
type liveOutput struct {
	mu     sync.Mutex
	w      io.Writer
	tty    bool
	status string // shown at the bottom, on a terminal
}

func newLiveOutput(w io.Writer) *liveOutput {
	return &liveOutput{w: w, tty: isTerminal(w)}
}

// Write writes log output above the status line.
func (o *liveOutput) Write(p []byte) (int, error) {
	return o.above(o.w, p)
}

// Above returns a writer to w (stdout, say) whose lines appear above the
// status line, when both streams go to the same terminal.
func (o *liveOutput) Above(w io.Writer) io.Writer {
	return writerFunc(func(p []byte) (int, error) { return o.above(w, p) })
}

func (o *liveOutput) above(w io.Writer, p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.tty && o.status != "" {
		io.WriteString(o.w, "\r\033[K")
	}
	n, err := w.Write(p)
	if o.tty && o.status != "" {
		io.WriteString(o.w, o.status)
	}
	return n, err
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Status shows s as the live status line.
func (o *liveOutput) Status(s string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s = strings.ReplaceAll(s, "\n", " ")
	if !o.tty {
		fmt.Fprintln(o.w, s)
		return
	}
	o.status = s
	fmt.Fprintf(o.w, "\r\033[K%s", s)
}

// Done ends the live status line, leaving its last state on screen.
func (o *liveOutput) Done() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.tty && o.status != "" {
		io.WriteString(o.w, "\n")
	}
	o.status = ""
}

// portOf returns the port of a host:port address.
func portOf(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return port
}
