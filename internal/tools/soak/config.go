package soak

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"
)

// Fault is a kind of outage the soak injects through its fault proxies.
type Fault uint8

// The kinds of outage, as WiFi nodes suffer them.
const (
	// Cut closes the node's connection with FIN on both sides.
	Cut Fault = iota + 1
	// Reset closes it with RST on both sides.
	Reset
	// Blackhole silences the network for 1.5T to 3T: no FIN, no RST; both
	// ends must notice by their own timeout.
	Blackhole
	// Refuse cuts the connection and refuses connects for 2.5T to 5T, so
	// that the node's reconnects fail at first.
	Refuse
)

// AllFaults lists every kind of fault.
var AllFaults = []Fault{Cut, Reset, Blackhole, Refuse}

var faultNames = map[Fault]string{Cut: "cut", Reset: "reset", Blackhole: "blackhole", Refuse: "refuse"}

func (f Fault) String() string {
	if s, ok := faultNames[f]; ok {
		return s
	}
	return fmt.Sprintf("fault(%d)", uint8(f))
}

// ParseFaults parses a comma-separated list of fault names (cut, reset,
// blackhole, refuse), "all" or "none" (an empty, non-nil list).
func ParseFaults(s string) ([]Fault, error) {
	switch s {
	case "all", "":
		return AllFaults, nil
	case "none":
		return []Fault{}, nil
	}
	var out []Fault
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		found := false
		for f, n := range faultNames {
			if n == name {
				out = append(out, f)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown fault %q: use cut, reset, blackhole, refuse, all or none", name)
		}
	}
	return out, nil
}

// Config configures a soak. The zero value runs 50 nodes with T = 300 ms
// against an in-process server, injecting every kind of fault, until its
// context ends.
type Config struct {
	// Nodes is how many simulated nodes run. Zero means 50.
	Nodes int
	// IDPrefix starts each node's ID, which ends with its number. Empty
	// means "soak-".
	IDPrefix string
	// Timeout is T, on the nodes and the in-process server. Zero means
	// 300 ms.
	Timeout time.Duration
	// Interval is the mean pause between two messages of a stream, on
	// each side of each node (the wait-free stream writes bursts of four
	// every 4*Interval). Zero means T/2.
	Interval time.Duration

	// Outages ends Run once the nodes have recovered from this many
	// outages in total; zero means no such limit.
	Outages int
	// Duration ends Run after this long; zero means no such limit.
	Duration time.Duration
	// DrainTimeout bounds the end of a run: the wait until every message
	// written has been acknowledged and both sides have compared notes.
	// Zero means 20T + 10 s.
	DrainTimeout time.Duration

	// Server is the address of a server running a soak Peer (see Serve).
	// Empty means Run starts a server and its Peer in-process.
	Server string
	// Listener, if set, is where the in-process server listens; nil means
	// a free port on 127.0.0.1. Ignored when Server is set.
	Listener net.Listener
	// Dial, if set, opens the nodes' connections (to the fault proxies,
	// or to the server when no faults are injected).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Faults lists the kinds of outage injected, each node through its
	// own fault proxy, chosen at random with equal weight. Nil means
	// AllFaults; an empty, non-nil list injects none, and the caller makes
	// its own outages (see Soak.WaitRecovered). The proxies run on
	// loopback, so a server at another address can only be soaked without
	// faults.
	Faults []Fault
	// FaultEvery is the mean time a node's link stays up between two
	// faults. Zero means 2T.
	FaultEvery time.Duration
	// Seed seeds the choice of faults and of when they strike.
	Seed uint64

	// Logger receives the log lines of the nodes and the in-process
	// server. Nil means slog.Default().
	Logger *slog.Logger
	// Progress, if set, is called about every ProgressEvery with the
	// figures so far, from a goroutine of the soak's own.
	Progress      func(Progress)
	ProgressEvery time.Duration // zero means 1 s
}

func (c Config) withDefaults() (Config, error) {
	if c.Nodes == 0 {
		c.Nodes = 50
	}
	if c.Nodes < 0 || c.Nodes > 10000 {
		return c, fmt.Errorf("soak: %d nodes: use 1 to 10000", c.Nodes)
	}
	if c.IDPrefix == "" {
		c.IDPrefix = "soak-"
	}
	if c.Timeout == 0 {
		c.Timeout = 300 * time.Millisecond
	}
	if c.Timeout < 20*time.Millisecond {
		return c, fmt.Errorf("soak: timeout %v is too short: use at least 20ms", c.Timeout)
	}
	if c.Interval <= 0 {
		c.Interval = c.Timeout / 2
	}
	if c.Outages < 0 || c.Duration < 0 {
		return c, errors.New("soak: negative outages or duration")
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 20*c.Timeout + 10*time.Second
	}
	if c.Faults == nil {
		c.Faults = AllFaults
	}
	for _, f := range c.Faults {
		if faultNames[f] == "" {
			return c, fmt.Errorf("soak: unknown fault %d", f)
		}
	}
	if c.FaultEvery <= 0 {
		c.FaultEvery = 2 * c.Timeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = time.Second
	}
	return c, nil
}
