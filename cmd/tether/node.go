package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/link"
)

const nodeUsage = `Usage: tether node --id ID --server HOST:PORT [flags]

A node from the shell, to script the link from any language. Each line
read on stdin is written to the server (by default with qos: repeated
across outages until acknowledged, delivered exactly once, in order); each
line the server sends is printed on stdout. State changes go to stderr as
slog text lines, one per change, such as

  level=INFO msg="link down" node=7 state=down reason="peer closed the connection" reconnects=0
  level=INFO msg="link up" node=7 state=up remote=10.0.0.2:8123 connects=2 reconnects=1

When stdin ends, the node waits until every line has been sent (and, with
qos, acknowledged), then exits 0 (with --stay it keeps printing what it
receives until interrupted). Exit status 1: a line could not be sent (too
long, not UTF-8) or the node was interrupted first; 2: bad flags.

It works against a Tether server (tether serve) and against the original
micropython-iot server; --timeout must match the server's. With --cert,
--key and --ca (tether ca issue writes them) the link is TLS, for a
gateway run with --tls: the node checks the gateway's certificate, and
the gateway checks that the node's names its ID.

Examples:
  echo hello | tether node --id 7 --server 192.168.0.10:8123
  tether node --id 7 --server gw:8123 --stay < /dev/null   # receive only
  sensor | tether node --id 7 --server gw:8123 --qos=false # latest wins

Flags:
`

type nodeFlags struct {
	id, server         string
	log                logFlags
	timeout, reconnect time.Duration
	maxReconnect       time.Duration
	qos, wait          bool
	retry, stay        bool
	maxLine            int
	cert, key, ca      string
}

func runNode(ctx context.Context, e *env, args []string) error {
	var f nodeFlags
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), nodeUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&f.id, "id", "", "this node's `ID`, unique among the server's nodes (required)")
	fs.StringVar(&f.server, "server", "", "the server's `host:port`; a missing port means 8123 (required)")
	fs.DurationVar(&f.timeout, "timeout", link.DefaultTimeout, "T, the link timeout; must match the server's (2s for the original server)")
	fs.BoolVar(&f.qos, "qos", true, "repeat each line until acknowledged (exactly once); false: send once, may be lost in an outage")
	fs.BoolVar(&f.wait, "wait", true, "with qos, send a line only once the previous one is acknowledged (keeps order); false: send at once, up to 64 in flight")
	fs.BoolVar(&f.retry, "retry", false, "if the server cannot be reached at start-up, keep trying instead of failing")
	fs.BoolVar(&f.stay, "stay", false, "when stdin ends, stay connected and keep printing received lines until interrupted")
	fs.DurationVar(&f.reconnect, "reconnect-delay", 0, "shortest pause after an outage before reconnecting (0: 2T, as the original nodes); a random jitter is added")
	fs.DurationVar(&f.maxReconnect, "max-reconnect-delay", 0, "longest pause between attempts while they fail (0: 8 x reconnect-delay; equal to reconnect-delay: a fixed pause, no jitter nor backoff)")
	fs.IntVar(&f.maxLine, "max-line", link.DefaultMaxLine, "longest line sent or received, in `bytes`")
	fs.StringVar(&f.cert, "cert", "", "TLS: this node's certificate `file` (PEM, from tether ca issue); with --key and --ca the link is TLS, and the gateway checks that the certificate names --id")
	fs.StringVar(&f.key, "key", "", "TLS: this node's key `file` (PEM)")
	fs.StringVar(&f.ca, "ca", "", "TLS: the gateway's CA certificate `file` (PEM): the node checks the gateway against it")
	f.log.register(fs, "info", "log `level` on stderr: debug, info (state changes), warn, error")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("node takes no arguments (got %q): lines to send come on stdin. See tether help node", fs.Arg(0))
	case f.id == "":
		return errors.New("no --id: give this node's ID, e.g. --id 7")
	case f.server == "":
		return errors.New("no --server: give the server's address, e.g. --server 192.168.0.10:8123")
	case f.timeout <= 0:
		return fmt.Errorf("--timeout %v: T must be positive and match the server's, e.g. --timeout 2s", f.timeout)
	}
	log, err := f.log.logger(e, e.stderr)
	if err != nil {
		return err
	}
	cfg := client.Config{
		ID:                f.id,
		Server:            f.server,
		Timeout:           f.timeout,
		ReconnectDelay:    f.reconnect,
		MaxReconnectDelay: f.maxReconnect,
		MaxLine:           f.maxLine,
		Logger:            log,
	}
	if f.cert != "" || f.key != "" || f.ca != "" {
		if cfg.TLS, err = client.LoadTLS(f.cert, f.key, f.ca); err != nil {
			return fmt.Errorf("%w: give --cert, --key and --ca together (tether ca issue writes them)", err)
		}
	}
	if f.retry {
		cfg.BadServer = func(ctx context.Context, err error) error {
			log.Warn("server not reachable yet; retrying", "node", f.id, "server", f.server, "err", err)
			return nil
		}
	}
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var opErr *net.OpError
		var dnsErr *net.DNSError
		if errors.As(err, &opErr) || errors.As(err, &dnsErr) {
			return explainDial(err, f.server)
		}
		return fmt.Errorf("%w (check --id and --server)", err)
	}
	out := &nodeOutput{w: bufio.NewWriter(e.stdout)}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		out.copy(c)
	}()
	sendErr := sendLines(ctx, e.stdin, c, f, log)
	if sendErr == nil && f.stay {
		<-ctx.Done()
	}
	c.Close()
	<-readDone
	if sendErr != nil {
		return sendErr
	}
	return nil
}

// nodeOutput prints the lines a node receives, one write per line.
type nodeOutput struct {
	w *bufio.Writer
}

func (o *nodeOutput) copy(c *client.Client) {
	for {
		line, err := c.ReadLine(context.Background())
		if err != nil {
			return
		}
		o.w.WriteString(line)
		o.w.WriteByte('\n')
		o.w.Flush()
	}
}

// sendLines writes stdin's lines to the link until stdin ends, then waits
// until everything has been sent and, with qos, acknowledged.
func sendLines(ctx context.Context, r io.Reader, c *client.Client, f nodeFlags, log *slog.Logger) error {
	lines := make(chan string)
	readErr := make(chan error, 1)
	go func() {
		// A blocked read of the process's stdin cannot be interrupted; on
		// an early return this goroutine ends with the process.
		defer close(lines)
		if r == nil {
			readErr <- nil
			return
		}
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				readErr <- nil
				return
			}
		}
		readErr <- sc.Err()
	}()
	opts := []link.WriteOption{link.QoS(f.qos), link.Wait(f.wait)}
	var (
		wg       sync.WaitGroup
		inflight = make(chan struct{}, 64)
		mu       sync.Mutex
		rejected int
	)
	fail := func(n int, err error) {
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		rejected++
		log.Error("stdin line not sent", "node", f.id, "line", n, "err", err)
	}
	n := 0
	for {
		var line string
		var ok bool
		select {
		case line, ok = <-lines:
		case <-ctx.Done():
		}
		if !ok {
			break
		}
		n++
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			log.Warn("stdin line skipped: an empty line cannot be sent", "node", f.id, "line", n)
			continue
		}
		if !f.qos || f.wait {
			if err := c.Write(ctx, line, opts...); err != nil {
				fail(n, err)
			}
			if ctx.Err() != nil {
				break
			}
			continue
		}
		// qos without wait: several lines in flight, given their ids in
		// stdin order.
		select {
		case inflight <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		assigned := make(chan struct{})
		returned := make(chan struct{})
		wg.Add(1)
		go func(n int, line string) {
			defer wg.Done()
			defer func() { <-inflight }()
			defer close(returned)
			err := c.Write(ctx, line, append(opts, link.Assign(func(uint8) error {
				close(assigned)
				return nil
			}))...)
			if err != nil {
				fail(n, err)
			}
		}(n, line)
		select {
		case <-assigned:
		case <-returned:
		}
	}
	wg.Wait()
	if ctx.Err() == nil {
		if err := <-readErr; err != nil {
			return fmt.Errorf("reading stdin: %w", err)
		}
		if err := c.Drain(ctx); err != nil && ctx.Err() == nil {
			return fmt.Errorf("waiting for the last lines to be sent: %w", err)
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted before every line was sent and acknowledged: %w", ctx.Err())
	}
	if rejected > 0 {
		return fmt.Errorf("%d stdin lines were not sent (see the errors above)", rejected)
	}
	log.Info("stdin ended; every line sent", "node", f.id, "lines", n)
	return nil
}
