package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/tether-iot/tether/gateway"
)

const nodesUsage = `Usage: tether nodes <pending|approve|deny> [ID] [flags]

Talks to the gateway running on the data directory (its admin socket,
<data>/admin.sock, this user only); with no gateway running, approve and
deny write to its store directly.

  tether nodes pending      node IDs waiting for approval (serve --approval)
  tether nodes approve ID   let node ID in (kept in the store)
  tether nodes deny ID      refuse node ID without listing it as pending
  tether nodes forget ID    remove node ID: its queue (messages for it are
                            deleted), saved state, retained MQTT state, page
                            row and series; it must be down. Its next
                            connection is a new node's (docs/GATEWAY.md)

Flags:
`

func runNodes(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("nodes", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), nodesUsage)
		fs.PrintDefaults()
	}
	data := fs.String("data", "", "the gateway's data `dir`ectory; default "+gateway.DefaultDataDir())
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if err := parseFlags(e, fs, args); err != nil {
			return err
		}
		return errors.New("tether nodes: say pending, approve ID, deny ID or forget ID (tether help nodes)")
	}
	verb := args[0]
	rest := args[1:]
	var id string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		id, rest = rest[0], rest[1:]
	}
	if err := parseFlags(e, fs, rest); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("tether nodes %s: unexpected %q", verb, fs.Arg(0))
	}
	if *data == "" {
		*data = gateway.DefaultDataDir()
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	switch verb {
	case "pending":
		ps, err := gateway.ListPending(ctx, *data)
		if errors.Is(err, gateway.ErrNotRunning) {
			return fmt.Errorf("no gateway runs on %s: the pending list lives in the running gateway (tether serve --approval)", *data)
		}
		if err != nil {
			return err
		}
		if len(ps) == 0 {
			fmt.Fprintln(e.stdout, "no node ID waits for approval")
			return nil
		}
		fmt.Fprintf(e.stdout, "%-24s %-24s %-5s %-8s %s\n", "NODE", "REMOTE", "TLS", "TRIES", "FIRST SEEN")
		for _, p := range ps {
			fmt.Fprintf(e.stdout, "%-24s %-24s %-5v %-8d %s\n", p.ID, p.Remote, p.TLS, p.Attempts, p.First.Local().Format(time.DateTime))
		}
		return nil
	case "forget":
		return nodesForget(ctx, e, *data, id) // nodes_forget.go
	case "approve", "deny":
		if id == "" {
			return fmt.Errorf("tether nodes %s: give the node's ID, e.g. tether nodes %s pump1", verb, verb)
		}
		do := gateway.ApproveID
		if verb == "deny" {
			do = gateway.DenyID
		}
		online, err := do(ctx, *data, id)
		if err != nil {
			return err
		}
		where := "in the store (no gateway running): it applies when the gateway starts"
		if online {
			where = "by the running gateway: it applies to the node's next connection"
		}
		past := map[string]string{"approve": "approved", "deny": "denied"}[verb]
		fmt.Fprintf(e.stdout, "node %q %s %s\n", id, past, where)
		return nil
	}
	return fmt.Errorf("tether nodes: unknown %q: say pending, approve ID, deny ID or forget ID (tether help nodes)", verb)
}
