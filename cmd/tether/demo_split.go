package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/notify"
	"github.com/tether-iot/tether/internal/tools/demo"
	"github.com/tether-iot/tether/internal/tools/demo/mainapp"
	"github.com/tether-iot/tether/internal/tools/demo/qos"
	"github.com/tether-iot/tether/internal/tools/demo/remote"
	"github.com/tether-iot/tether/server"
)

// runDemoServer runs a demo's server side until interrupted.
func runDemoServer(ctx context.Context, e *env, name string, f demoFlags, out *demo.Printer, log *slog.Logger) error {
	ids, _ := demoIDs(name, len(mainapp.IDs))
	srv, err := server.New(server.Config{Timeout: f.timeout, Expected: ids, Logger: log})
	if err != nil {
		return err
	}
	ln, err := listenTCP(ctx, f.addr)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	defer func() { srv.Close(); <-errc }()
	port := portOf(ln.Addr().String())
	out.Say("demo", "%s demo server on %s, T=%v; Ctrl-C to stop. Start the nodes with:", name, ln.Addr(), f.timeout)
	for _, id := range ids {
		extra := ""
		if id == remote.TX {
			extra = " [--switch stdin]"
		}
		out.Say("demo", "  tether demo %s --server THIS_HOST:%s --node %s --timeout %v%s", name, port, id, f.timeout, extra)
	}
	switch name {
	case "main":
		var chk mainapp.Checks
		err := mainapp.Server(ctx, srv, ids, out, f.interval, &chk)
		mainVerdict(out, &chk, "the server apps")
		return err
	case "remote":
		return remote.Server(ctx, srv, out)
	}
	l, err := srv.Node(ctx, qos.ID)
	if err != nil {
		return quietEnd(ctx, err)
	}
	s := qos.Start(ctx, l, qos.Config{Fast: name == "qos-fast", Interval: f.interval, Out: out})
	<-ctx.Done()
	s.Close()
	out.Say("server", "%s", s.Report())
	return nil
}

// runDemoNode runs one node of a demo until interrupted.
func runDemoNode(ctx context.Context, e *env, name string, f demoFlags, out *demo.Printer, log *slog.Logger) error {
	ids, _ := demoIDs(name, len(mainapp.IDs))
	id := f.node
	if id == "" {
		if len(ids) != 1 {
			return fmt.Errorf("which node? Add --node with one of %s", strings.Join(ids, ", "))
		}
		id = ids[0]
	}
	if !contains(ids, id) {
		return fmt.Errorf("--node %q: the %s demo's nodes are %s", id, name, strings.Join(ids, ", "))
	}
	cfg := client.Config{ID: id, Server: f.server, Timeout: f.timeout, Logger: log}
	if f.retry {
		cfg.BadServer = func(ctx context.Context, err error) error {
			log.Warn("server not reachable yet; retrying", "node", id, "server", f.server, "err", err)
			return nil
		}
	}
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		var opErr *net.OpError
		if ctx.Err() == nil && errors.As(err, &opErr) {
			return explainDial(err, f.server)
		}
		return quietEnd(ctx, err)
	}
	defer c.Close()
	out.Say("demo", "node %s of the %s demo, server %s, T=%v; Ctrl-C to stop", id, name, f.server, f.timeout)
	switch {
	case name == "main":
		var chk mainapp.Checks
		err := mainapp.Node(ctx, c, out, f.interval, &chk)
		mainVerdict(out, &chk, "node "+id)
		return err
	case id == remote.RX:
		return remote.RXNode(ctx, c, out, nil)
	case id == remote.TX:
		sw := remote.NewSwitch()
		if f.switchFrom == "stdin" {
			// A blocked read of the process's stdin cannot be
			// interrupted: this goroutine ends with stdin or the process.
			go readSwitch(ctx, e, sw, out)
			return remote.TXNode(ctx, c, sw, out)
		}
		flipped := make(chan struct{})
		defer func() { <-flipped }()
		go func() { defer close(flipped); flipSwitch(ctx, sw, out, f) }()
		return remote.TXNode(ctx, c, sw, out)
	}
	s := qos.Start(ctx, c, qos.Config{Node: true, Fast: name == "qos-fast", Interval: f.interval, Out: out})
	<-ctx.Done()
	s.Close()
	out.Say("node "+id, "%s", s.Report())
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// readSwitch sets the switch from stdin: 1/on, 0/off, empty toggles.
func readSwitch(ctx context.Context, e *env, sw *remote.Switch, out *demo.Printer) {
	if e.stdin == nil {
		return
	}
	sc := bufio.NewScanner(e.stdin)
	for sc.Scan() && ctx.Err() == nil {
		switch strings.ToLower(strings.TrimSpace(sc.Text())) {
		case "1", "on":
			sw.Set(true)
		case "0", "off":
			sw.Set(false)
		case "", "t", "toggle":
			sw.Toggle()
		default:
			out.Say("switch", "type 1 or on, 0 or off, or an empty line to toggle")
		}
	}
}

// flipSwitch flips the switch every interval, as a hand would.
func flipSwitch(ctx context.Context, sw *remote.Switch, out *demo.Printer, f demoFlags) {
	for notify.Sleep(ctx, f.interval) {
		on := sw.Toggle()
		out.Say("switch", "flipped %v", map[bool]string{true: "on", false: "off"}[on])
	}
}
