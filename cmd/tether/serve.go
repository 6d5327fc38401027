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
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tether-iot/tether/gateway"
	"github.com/tether-iot/tether/link"
)

const serveUsage = `Usage: tether serve [flags]

Serves nodes on TCP. Every message from a node is printed on stdout as
ID<TAB>payload; every stdin line ID<TAB>payload is written to that node
with qos (queued durably while the node is down, delivered exactly once).
Node events (up/down, reason, reconnects) are logged on stderr. It runs
until SIGINT, SIGTERM or SIGHUP (the end of stdin does not stop it), then
waits up to --grace for the nodes to acknowledge what they were sent; a
second SIGINT or SIGTERM ends it at once.

By default it is also an MQTT gateway with an embedded broker on
127.0.0.1:1883 (see docs/GATEWAY.md): node <id>'s messages are published
on tether/<id>/up, messages published on tether/<id>/down are written to
it, tether/<id>/state says up or down.

With an external broker (--broker) it serves the nodes even while the
broker cannot be reached, from the start on: their messages are spooled
in the store and published once it can, and it retries for ever. Only
errors that retrying cannot cure stop it at start (a bad password, a
certificate it cannot verify); mqtt.require_first_connection in the
config file makes it stop on any failure of the first connection.

Flags (they override the config file):
`

type serveFlags struct {
	mqtt mqttFlags // the embedded broker's (serve_mqtt.go)
	fs   *flag.FlagSet

	config     string
	addr       string
	timeout    time.Duration
	expect     string
	strict     bool
	maxLine    int
	data       string
	name       string
	broker     string
	mqttListen string
	discovery  bool
	webAddr    string
	noWeb      bool
	grace      time.Duration

	queueMessages   int
	queueBytes      int64
	queueTotalBytes int64
	queueNodes      int
	queueUp         int

	access *accessFlags // serve_access.go
	ops    opsFlags     // serve_rules.go
	log    logFlags     // logging.go
	web    webFlags     // serve_web.go
}

func newServeFlags(out io.Writer) *serveFlags {
	f := &serveFlags{fs: flag.NewFlagSet("serve", flag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(out)
	fs.StringVar(&f.config, "config", "", "YAML config `file` (see docs/GATEWAY.md); flags override it")
	fs.StringVar(&f.addr, "addr", ":8123", "TCP `address` nodes connect to")
	fs.DurationVar(&f.timeout, "timeout", link.DefaultTimeout, "T, the link timeout; must match the nodes' (Go duration: 2s, 500ms)")
	fs.StringVar(&f.expect, "expect", "", "expected node `IDs`, comma-separated; others are logged (or refused with --strict)")
	fs.BoolVar(&f.strict, "strict", false, "refuse nodes that are not in --expect")
	fs.IntVar(&f.maxLine, "max-line", link.DefaultMaxLine, "longest line to or from a node, in `bytes` (id included)")
	fs.StringVar(&f.data, "data", "", "`dir`ectory of the durable store (queues, windows); default "+gateway.DefaultDataDir())
	fs.StringVar(&f.name, "name", "", "this gateway's `name` on the broker (MQTT client tether-<name>); default the host name")
	fs.StringVar(&f.broker, "broker", "", "external MQTT broker `URL` (mqtt://host:1883, mqtts://...); \"none\" for no MQTT; default the embedded broker")
	fs.StringVar(&f.mqttListen, "mqtt-listen", gateway.DefaultMQTTListen, "embedded broker's TCP `address`; \"none\" for no listener")
	fs.BoolVar(&f.discovery, "discovery", false, "publish Home Assistant MQTT discovery for each node")
	fs.StringVar(&f.webAddr, "web", gateway.DefaultWebAddr, "status page and metrics HTTP `address`")
	fs.BoolVar(&f.noWeb, "no-web", false, "no status page")
	f.web.register(fs)
	fs.IntVar(&f.queueMessages, "queue-max-messages", gateway.DefaultQueueMessages, "most `messages` queued for one node (queue.max_messages); -1: no bound")
	fs.Int64Var(&f.queueBytes, "queue-max-bytes", 0, "most payload `bytes` queued for one node (queue.max_bytes); 0: no byte bound")
	fs.Int64Var(&f.queueTotalBytes, "queue-max-total-bytes", gateway.DefaultQueueTotalBytes, "most payload `bytes` queued for all nodes together (queue.max_total_bytes); -1: no bound")
	fs.IntVar(&f.queueNodes, "queue-max-nodes", gateway.DefaultQueueNodes, "most node `IDs` never seen connected that messages from MQTT are kept for (queue.max_nodes); -1: no bound")
	fs.IntVar(&f.queueUp, "queue-max-up-messages", gateway.DefaultUpMessages, "most `messages` from one node spooled while the broker cannot take them (queue.max_up_messages); -1: no bound")
	f.mqtt.register(fs) // serve_mqtt.go
	fs.DurationVar(&f.grace, "grace", 3*time.Second, "on SIGINT/SIGTERM/SIGHUP, how long to wait for the messages sent to the nodes to be acknowledged")
	f.access = addAccessFlags(fs)
	f.ops.register(fs)
	f.log.register(fs, "info", "log `level` on stderr: debug, info (node events, start, stop), warn, error")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), serveUsage)
		fs.PrintDefaults()
	}
	return f
}

// parseServe parses the flags and the config file into a gateway config.
func parseServe(e *env, args []string) (gateway.Config, time.Duration, error) {
	f := newServeFlags(e.stderr)
	if err := parseFlags(e, f.fs, args); err != nil { // help, environment, flags
		return gateway.Config{}, 0, err
	}
	if f.fs.NArg() > 0 {
		return gateway.Config{}, 0, fmt.Errorf("serve takes no arguments (got %q): did you mean a flag? See tether help serve", f.fs.Arg(0))
	}
	var cfg gateway.Config
	if f.config != "" {
		c, err := gateway.LoadConfig(f.config)
		if err != nil {
			return cfg, 0, err
		}
		cfg = c
	}
	var bad error
	f.fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "addr":
			cfg.Listen = f.addr
		case "timeout":
			if err := gateway.CheckTimeout(f.timeout); err != nil {
				bad = fmt.Errorf("--timeout (timeout): %w", err)
			}
			cfg.Timeout = gateway.Duration(f.timeout)
		case "expect":
			cfg.Nodes.Expect = nil
			for id := range strings.SplitSeq(f.expect, ",") {
				if id = strings.TrimSpace(id); id != "" {
					cfg.Nodes.Expect = append(cfg.Nodes.Expect, id)
				}
			}
		case "strict":
			cfg.Nodes.Strict = f.strict
		case "max-line":
			cfg.MaxLine = f.maxLine
		case "data":
			cfg.Data = f.data
		case "name":
			cfg.Name = f.name
		case "broker":
			cfg.MQTT.Broker = f.broker
		case "mqtt-listen":
			cfg.MQTT.Listen = f.mqttListen
		case "discovery":
			cfg.Discovery.Enabled = f.discovery
		case "web":
			cfg.Web.Addr = f.webAddr
		case "no-web":
			on := !f.noWeb
			cfg.Web.Enabled = &on
		case "queue-max-messages":
			cfg.Queue.MaxMessages = f.queueMessages
		case "queue-max-bytes":
			cfg.Queue.MaxBytes = f.queueBytes
		case "queue-max-total-bytes":
			cfg.Queue.MaxTotalBytes = f.queueTotalBytes
		case "queue-max-nodes":
			cfg.Queue.MaxNodes = f.queueNodes
		case "queue-max-up-messages":
			cfg.Queue.MaxUpMessages = f.queueUp
		default:
			f.mqtt.apply(fl.Name, &cfg)
			f.ops.apply(fl.Name, &cfg)
		}
		f.web.apply(fl.Name, &cfg) // serve_web.go
	})
	if bad != nil {
		return cfg, 0, bad
	}
	f.access.apply(f.fs, &cfg)
	if cfg.Nodes.Strict && len(cfg.Nodes.Expect) == 0 {
		return cfg, 0, errors.New("--strict needs the expected nodes: add --expect id1,id2")
	}
	if f.grace < 0 {
		return cfg, 0, fmt.Errorf("--grace %v: must be 0 or more (0: do not wait for the nodes to acknowledge)", f.grace)
	}
	if err := checkServeConfig(f.fs, cfg); err != nil {
		return cfg, 0, err
	}
	log, err := f.log.logger(e, e.stderr)
	if err != nil {
		return cfg, 0, err
	}
	cfg.Logger = log
	return cfg, f.grace, nil
}

func runServe(ctx context.Context, e *env, args []string) error {
	cfg, grace, err := parseServe(e, args)
	if err != nil {
		return err
	}
	log := cfg.Logger // --log-level, --log-format
	out := &lineWriter{w: e.stdout}
	cfg.OnMessage = out.print

	g, err := gateway.New(cfg)
	if err != nil {
		return serveError(cfg, err)
	}
	if err := g.Start(ctx); err != nil {
		g.Close()
		return serveError(cfg, err)
	}

	// stdin: one reader; each line goes to its node's durable queue. A
	// terminal or a pipe whose writer stays open blocks a read of fd 0
	// that closing os.Stdin does not end: read it through a pollReader,
	// whose Close does.
	stdin := e.stdin
	if f, ok := stdin.(*os.File); ok {
		if pr, err := interruptible(f); err == nil {
			defer pr.release() // after the reader has ended, below
			stdin = pr
		}
	}
	inDone := make(chan struct{})
	inCtx, stopIn := context.WithCancel(ctx)
	go func() {
		defer close(inDone)
		readStdin(inCtx, stdin, g, log)
	}()

	<-ctx.Done()
	log.Info("shutting down", "grace", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	err = g.Shutdown(sctx)
	cancel()
	stopIn()
	// Closing stdin ends a blocked read (see above).
	if c, ok := stdin.(io.Closer); ok {
		c.Close()
	}
	<-inDone
	if err != nil {
		log.Warn("shutdown: some queued messages were not acknowledged in time; they stay queued in the store", "err", err)
	}
	return nil
}

// readStdin sends every line ID<TAB>payload to its node.
func readStdin(ctx context.Context, r io.Reader, g *gateway.Gateway, log *slog.Logger) {
	if r == nil {
		return
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	ref := refusals{log: log, nodes: make(map[string]int)}
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			continue
		}
		id, payload, ok := strings.Cut(line, "\t")
		if !ok || id == "" || payload == "" {
			log.Warn("stdin: line ignored: write ID<TAB>payload", "line", n)
			continue
		}
		if err := g.Send(ctx, id, payload); err != nil {
			if ctx.Err() != nil {
				return
			}
			ref.refused(n, id, err)
			continue
		}
		ref.queued(id)
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		log.Warn("stdin: read failed; no more input is taken", "err", err)
	}
}

// refusals logs the stdin lines that full queues refuse once per
// episode, as the gateway does for MQTT: one line when a node's queue
// (or all the queues together) starts refusing, one when a line is
// queued again, with the count. Other refusals are logged each.
type refusals struct {
	log   *slog.Logger
	nodes map[string]int // lines refused by a node's full queue, by node
	store int            // lines refused because all the queues were full
}

func (r *refusals) refused(line int, id string, err error) {
	switch {
	case errors.Is(err, gateway.ErrStoreFull):
		if r.store == 0 {
			r.log.Warn("stdin: line not queued: the gateway's queues are full; more lines are refused without a word until one is queued",
				"line", line, "node", id, "err", err)
		}
		r.store++
	case errors.Is(err, gateway.ErrQueueFull):
		if r.nodes[id] == 0 {
			r.log.Warn("stdin: line not queued: the node's queue is full; more lines for it are refused without a word until one is queued",
				"line", line, "node", id, "err", err)
		}
		r.nodes[id]++
	default:
		r.log.Warn("stdin: line not queued", "line", line, "node", id, "err", err)
	}
}

func (r *refusals) queued(id string) {
	if r.store > 0 {
		r.log.Info("stdin: lines are queued again", "refused", r.store)
		r.store = 0
	}
	if k := r.nodes[id]; k > 0 {
		r.log.Info("stdin: lines for the node are queued again", "node", id, "refused", k)
		delete(r.nodes, id)
	}
}

// lineWriter prints ID<TAB>payload lines, one at a time.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (o *lineWriter) print(id, payload string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.w, "%s\t%s\n", id, payload)
}

// serveError explains start-up errors and says what to do.
func serveError(cfg gateway.Config, err error) error {
	var le *gateway.ListenError
	if errors.As(err, &le) && errors.Is(le.Err, syscall.EADDRINUSE) {
		_, port, _ := net.SplitHostPort(le.Addr)
		switch le.What {
		case "nodes":
			return fmt.Errorf("port %s (%s) is already in use, by another tether serve perhaps: choose another with --addr, e.g. --addr :8124", port, le.Addr)
		case "mqtt":
			return fmt.Errorf("MQTT port %s (%s) is already in use, by a broker perhaps: use it with --broker mqtt://%s, or move the embedded one with --mqtt-listen 127.0.0.1:1884", port, le.Addr, le.Addr)
		case "web":
			return fmt.Errorf("web port %s (%s) is already in use: choose another with --web :8081, or --no-web", port, le.Addr)
		}
	}
	if errors.Is(err, gateway.ErrStoreLocked) {
		return fmt.Errorf("%w: each running gateway needs its own --data directory", err)
	}
	return err
}
