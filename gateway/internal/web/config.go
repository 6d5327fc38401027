package web

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/tether-iot/tether/gateway/internal/metrics"
	"github.com/tether-iot/tether/server"
)

// Defaults of a zero Config.
const (
	DefaultAddr              = ":8080"
	DefaultRefresh           = time.Second
	DefaultMismatchTolerance = 0.25
	DefaultSubscriberQueue   = 64
	DefaultWriteTimeout      = 10 * time.Second
	DefaultRecentEvents      = 50
)

// Config configures a Server. The zero value is valid: each zero field
// means the default written beside it. New copies it.
type Config struct {
	// Server is the Tether server to show. It may be nil and set later
	// with SetServer, so that Hook can go into the server.Config that makes
	// it; until then the page shows no nodes.
	Server *server.Server

	// Addr is the TCP address ListenAndServe listens on; "" means :8080.
	// To disable the page, do not start it.
	Addr string

	// Title names the page (the gateway's name, say); "" means "Tether".
	Title string

	// Logger receives the page's log lines; nil means slog.Default().
	Logger *slog.Logger

	// Metrics serves /metrics; nil means New makes one, with Server and
	// Queue, and the default per-node series. SetServer sets the server of
	// either.
	Metrics *metrics.Collector

	// Queue, if set, describes node id's durable queue in the gateway's
	// store: shown beside the link's own queue, with the messages for the
	// node that the gateway dropped; and its up spool, shown beside the
	// messages from the node. It is called for every node at each
	// refresh and must be safe for concurrent use and quick.
	Queue func(id string) Queue

	// Offline, if set, returns the IDs of nodes to list although they
	// have not connected since the server started (the gateway's nodes
	// with messages in its store, its expected nodes): their rows have
	// state "offline", their durable queue (Queue) and Extra. IDs that
	// have connected are skipped. Same rules as Queue; it is called once
	// per refresh.
	Offline func() []string

	// Extra, if set, returns more fields to show for node id (its MQTT
	// topic, say): they go into Node.Extra and a column of the page. Same
	// rules as Queue; values must marshal to JSON.
	Extra func(id string) map[string]any

	// Broker, if set, returns the state of the gateway's MQTT broker
	// connection, shown in the page's header (Header.MQTT); nil hides
	// it. Same rules as Queue; it is called once per refresh.
	Broker func() *Broker

	// Version is the running build's version (tether version), shown in
	// the header (Header.Version); "" hides it.
	Version string

	// Refresh is how often counters are sent to browsers that watch: only
	// rows that changed are sent. Up and down changes do not wait for it:
	// Event pushes them at once. Zero means 1 s.
	Refresh time.Duration

	// MismatchTolerance is how far a node's inferred T may differ from the
	// server's, as a fraction of the server's T, before the page flags it.
	// Zero means 0.25.
	MismatchTolerance float64

	// SubscriberQueue is how many updates may wait for one browser; a
	// browser that falls further behind is disconnected (its page
	// reconnects and starts afresh), never holding up the others. Zero
	// means 64.
	SubscriberQueue int

	// WriteTimeout bounds each write to a browser's event stream. Zero
	// means 10 s.
	WriteTimeout time.Duration

	// RecentEvents is how many up/down/restart events the page lists.
	// Zero means 50.
	RecentEvents int
}

// validate reports a negative field.
func (cfg Config) validate() error {
	switch {
	case cfg.Refresh < 0:
		return fmt.Errorf("web: negative Refresh %v", cfg.Refresh)
	case cfg.MismatchTolerance < 0:
		return fmt.Errorf("web: negative MismatchTolerance %v", cfg.MismatchTolerance)
	case cfg.SubscriberQueue < 0:
		return fmt.Errorf("web: negative SubscriberQueue %d", cfg.SubscriberQueue)
	case cfg.WriteTimeout < 0:
		return fmt.Errorf("web: negative WriteTimeout %v", cfg.WriteTimeout)
	case cfg.RecentEvents < 0:
		return fmt.Errorf("web: negative RecentEvents %d", cfg.RecentEvents)
	}
	return nil
}

// withDefaults returns a copy of cfg with its zero fields set.
func (cfg Config) withDefaults() Config {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.Title == "" {
		cfg.Title = "Tether"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Refresh == 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.MismatchTolerance == 0 {
		cfg.MismatchTolerance = DefaultMismatchTolerance
	}
	if cfg.SubscriberQueue == 0 {
		cfg.SubscriberQueue = DefaultSubscriberQueue
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.RecentEvents == 0 {
		cfg.RecentEvents = DefaultRecentEvents
	}
	return cfg
}
