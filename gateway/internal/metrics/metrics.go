// Package metrics exports a Tether server's counters in the Prometheus
// format: nodes up, reconnects, messages by direction, qos repeats,
// duplicates, bad lines by reason, handshake rejections and an ACK
// round-trip histogram.
//
// Every counter is exported summed over the fleet (tether_nodes_*, a fixed
// number of series). Per-node series (tether_node_*, label "node") cost
// series per node: Config.NodeMetrics chooses none, a basic few (the
// default) or all of them (see NodeMetrics), for at most Config.MaxNodes
// nodes (1000 by default).
//
// A Collector reads each link's Stats when it is scraped, so it costs
// nothing between scrapes; only the round-trip histogram is fed as ACKs
// arrive, through the link.Config hook that Configure installs:
//
//	col := metrics.New(metrics.Config{})
//	srv, _ := server.New(server.Config{Configure: col.Configure})
//	col.SetServer(srv)
//	http.Handle("/metrics", col.Handler())
//
// The Collector registers itself in a private prometheus.Registry (see
// Registry), never in the global one.
package metrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// Namespace prefixes every metric name of the Collector.
const Namespace = "tether"

// DefaultMaxNodes is how many nodes get per-node series when
// Config.MaxNodes is zero.
const DefaultMaxNodes = 1000

// DefaultRTTBuckets are the upper bounds of the ACK round-trip histogram,
// in seconds: from 1 ms (a LAN) to 10 s (past any sane T).
var DefaultRTTBuckets = []float64{.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10}

// Config configures a Collector. The zero value is valid.
type Config struct {
	// Server is the server whose nodes are exported. It may be nil and
	// set later with SetServer, so that the Collector's Configure can go
	// into the server.Config that makes the server.
	Server *server.Server

	// Stored, if set, returns how many messages for node id wait in the
	// gateway's durable store; it is exported as tether_node_stored_messages.
	// It is called on every scrape, once per node, and must be safe for
	// concurrent use and quick.
	Stored func(id string) int

	// Spooled, if set, returns how many messages from node id wait in
	// the gateway's up spool for the broker; it is exported as
	// tether_node_spooled_messages. Same rules as Stored.
	Spooled func(id string) int

	// Dropped, if set, returns how many messages for node id the gateway
	// dropped (its queue was full, ...); it is exported as
	// tether_node_dropped_messages_total. Same rules as Stored.
	Dropped func(id string) uint64

	// Offline, if set, returns the IDs of nodes to export although they
	// have not connected since the server started (the gateway's nodes
	// with messages in its store, its expected nodes): they get the
	// basic per-node series (tether_node_up 0, zero message counters,
	// stored, spooled and dropped messages), not the others, which a link
	// reports. IDs that have connected are skipped. Same rules as
	// Stored; it is called once per scrape.
	Offline func() []string

	// NodeMetrics chooses the per-node series; the zero value (and any
	// unknown value) is NodeBasic.
	NodeMetrics NodeMetrics

	// MaxNodes bounds how many nodes get per-node series, so that a
	// flood of new IDs cannot bloat every scrape: the nodes of Priority
	// first, then the others, each in ID order. The nodes left out are
	// counted by tether_nodes_series_omitted (their counters still
	// count in the fleet sums) and a warning is logged when they start
	// being left out. Zero means DefaultMaxNodes; negative means no
	// bound.
	MaxNodes int

	// Priority, if set, tells the nodes that get their per-node series
	// before the others under MaxNodes (the gateway's expected nodes).
	// Same rules as Stored.
	Priority func(id string) bool

	// Logger receives the Collector's warnings; nil means
	// slog.Default().
	Logger *slog.Logger

	// RTTBuckets are the histogram's upper bounds in seconds; nil means
	// DefaultRTTBuckets.
	RTTBuckets []float64

	// NoRuntime leaves the Go runtime and process collectors out of
	// Registry (they are in by default).
	NoRuntime bool
}

// Collector is a prometheus.Collector for a Tether server. Its methods are
// safe for concurrent use.
type Collector struct {
	srv     atomic.Pointer[server.Server]
	stored  func(id string) int
	spooled func(id string) int
	dropped func(id string) uint64
	offline func() []string
	perNode NodeMetrics
	maxNode int // < 0: no bound
	prio    func(id string) bool
	log     *slog.Logger
	rtt     prometheus.Histogram
	reg     *prometheus.Registry

	omitMu  sync.Mutex
	omitted int // nodes left out at the last scrape
}

// NodeMetrics chooses which per-node series (label "node") a Collector
// exports. The fleet sums (tether_nodes_*) are always exported.
type NodeMetrics int

// The NodeMetrics levels.
const (
	// NodeBasic exports up to 6 series per node, what a fleet
	// dashboard shows: tether_node_up, tether_node_messages_total (in
	// and out), tether_node_stored_messages,
	// tether_node_spooled_messages and tether_node_dropped_messages_total
	// (the last three with Config.Stored, Config.Spooled and
	// Config.Dropped).
	NodeBasic NodeMetrics = iota
	// NodeFull adds every other per-node series: up to 28 per node, for
	// fleets of tens or hundreds of nodes, or to debug.
	NodeFull
	// NodeNone exports no per-node series: for fleets of many thousands
	// (the status page and its JSON API still show each node).
	NodeNone
)

// String returns "basic", "full" or "none".
func (n NodeMetrics) String() string {
	switch n {
	case NodeBasic:
		return "basic"
	case NodeFull:
		return "full"
	case NodeNone:
		return "none"
	}
	return fmt.Sprintf("NodeMetrics(%d)", int(n))
}

// ParseNodeMetrics parses "basic" (or ""), "full" or "none".
func ParseNodeMetrics(s string) (NodeMetrics, error) {
	switch s {
	case "", "basic":
		return NodeBasic, nil
	case "full":
		return NodeFull, nil
	case "none":
		return NodeNone, nil
	}
	return 0, fmt.Errorf("metrics: per-node metrics %q: write basic, full or none", s)
}

var _ prometheus.Collector = (*Collector)(nil)

// New returns a Collector registered in a new private registry.
func New(cfg Config) *Collector {
	buckets := cfg.RTTBuckets
	if buckets == nil {
		buckets = DefaultRTTBuckets
	}
	c := &Collector{
		stored:  cfg.Stored,
		spooled: cfg.Spooled,
		dropped: cfg.Dropped,
		offline: cfg.Offline,
		perNode: cfg.NodeMetrics,
		maxNode: cfg.MaxNodes,
		prio:    cfg.Priority,
		log:     cfg.Logger,
		rtt: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "ack_rtt_seconds",
			Help:      "Round-trip time of qos messages acknowledged on their first transmission.",
			Buckets:   buckets,
		}),
		reg: prometheus.NewRegistry(),
	}
	if c.perNode < NodeBasic || c.perNode > NodeNone {
		c.perNode = NodeBasic
	}
	if c.maxNode == 0 {
		c.maxNode = DefaultMaxNodes
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.srv.Store(cfg.Server)
	c.reg.MustRegister(c)
	if !cfg.NoRuntime {
		c.reg.MustRegister(
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		)
	}
	return c
}

// SetServer sets the server whose nodes are exported (see Config.Server).
func (c *Collector) SetServer(srv *server.Server) { c.srv.Store(srv) }

// Server returns the server set by Config.Server or SetServer, or nil.
func (c *Collector) Server() *server.Server { return c.srv.Load() }

// Registry returns the Collector's private registry: the gateway may
// register its own metrics there, to be served by Handler too.
func (c *Collector) Registry() *prometheus.Registry { return c.reg }

// Handler serves Registry in the Prometheus exposition formats.
func (c *Collector) Handler() http.Handler {
	return promhttp.HandlerFor(c.reg, promhttp.HandlerOpts{Registry: c.reg})
}

// ObserveRTT records the ACK round trip d of a qos message of node id.
// The histogram is not broken down by node: id is unused today.
func (c *Collector) ObserveRTT(id string, d time.Duration) {
	c.rtt.Observe(d.Seconds())
}

// Configure is a server.Config.Configure hook: it makes the node's link
// report its ACK round trips to the histogram, after calling the hook
// that lc already had, if any. To chain it with a hook of your own, call
// it from that hook.
func (c *Collector) Configure(id string, lc *link.Config) error {
	prev := lc.OnAckRTT
	lc.OnAckRTT = func(d time.Duration) {
		if prev != nil {
			prev(d)
		}
		c.ObserveRTT(id, d)
	}
	return nil
}
