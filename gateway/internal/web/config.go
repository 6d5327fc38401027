package web

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/tether-iot/tether/gateway/internal/metrics"
	"github.com/tether-iot/tether/internal/passwd"
	"github.com/tether-iot/tether/server"
)

// Defaults of a zero Config.
const (
	DefaultAddr              = "127.0.0.1:8080"
	DefaultRefresh           = time.Second
	DefaultMismatchTolerance = 0.25
	DefaultSubscriberQueue   = 64
	DefaultWriteTimeout      = 10 * time.Second
	DefaultRecentEvents      = 50
	// DefaultPageSize is how many rows a page of the table, the API and
	// the event stream holds when the request does not say (limit).
	DefaultPageSize = 100
	// MaxPageSize is the most rows a request may ask for.
	MaxPageSize = 1000
	// MinTokenLen is the shortest Token accepted.
	MinTokenLen = 16
	// MaxPendingShown is how many pending IDs /api/status and the event
	// stream list (all of them: GET /api/pending).
	MaxPendingShown = 100
)

// Config configures a Server. The zero value is valid: each zero field
// means the default written beside it. New copies it.
type Config struct {
	// Server is the Tether server to show. It may be nil and set later
	// with SetServer, so that Hook can go into the server.Config that makes
	// it; until then the page shows no nodes.
	Server *server.Server

	// Addr is the TCP address ListenAndServe listens on; "" means
	// 127.0.0.1:8080 (loopback only). To disable the page, do not start
	// it.
	Addr string

	// Token, if set, is required of every request: as a bearer token
	// ("Authorization: Bearer <token>", which Prometheus sends with
	// bearer_token_file), or as the password of HTTP Basic
	// authentication with any user name (what a browser asks for). At
	// least MinTokenLen characters.
	Token string
	// Users, if set, are the users whose name and password (HTTP Basic
	// authentication) are accepted, on every request. With Token, either
	// is accepted.
	Users *passwd.File
	// Insecure lets Serve serve a listener beyond loopback with neither
	// Token nor Users: anyone who reaches it reads the page, the API and
	// the metrics. Each Serve logs a warning. A loopback listener needs
	// no credentials to be read.
	Insecure bool
	// Hosts are host names, beyond "localhost" (and its subdomains) and
	// literal loopback addresses, that requests reaching a loopback
	// address may name in their Host header: a reverse proxy's name, say.
	// Others are refused, so that a web page whose own name resolves to
	// 127.0.0.1 (DNS rebinding) cannot read the page.
	Hosts []string

	// Send, if set, is offered as an action: POST /api/nodes/{id}/send
	// writes a message to the node (the gateway's durable queue). Like
	// every action, it needs Token or Users, and is refused to requests
	// that other sites make the browser send.
	Send func(ctx context.Context, id, payload string) error
	// MaxPayload bounds the message of Send in bytes; zero means 4096.
	MaxPayload int

	// Forget, if set, is offered as an action on nodes that are not up:
	// POST /api/nodes/{id}/forget removes the node and what is queued for
	// it, and returns how many queued and spooled messages went with it.
	Forget func(ctx context.Context, id string) (queued, spooled int, err error)

	// Pending, if set, lists the node IDs that wait for approval (the
	// gateway's approval mode): shown above the table, in /api/status
	// (the first MaxPendingShown) and at GET /api/pending. Same rules as
	// Queue; it is called once per refresh.
	Pending func() Pending
	// Approve and Deny, if set, are actions on a node ID (POST
	// /api/pending/{id}/approve and /deny): its next connection is
	// served, or refused without being listed again.
	Approve func(id string) error
	Deny    func(id string) error

	// Title names the page; "" means "Tether".
	Title string
	// Name is the name of what the page shows (the gateway's name, its
	// host's by default), shown beside the title; "" shows none.
	Name string

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

	// LastMessage, if set, returns node id's last message (see
	// ShownMessage), false if none came since the start: shown in the
	// Last message column. Same rules as Queue.
	LastMessage func(id string) (Message, bool)

	// Topics, if set, returns node id's MQTT topics (nil: none), shown
	// in the Topics column, each ready to copy. Same rules as Queue.
	Topics func(id string) *Topics

	// Extra, if set, returns more fields to show for node id: they go
	// into Node.Extra and a column of the page. Same rules as Queue;
	// values must marshal to JSON.
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
	case cfg.MaxPayload < 0:
		return fmt.Errorf("web: negative MaxPayload %d", cfg.MaxPayload)
	case cfg.Token != "" && len(cfg.Token) < MinTokenLen:
		return fmt.Errorf("web: the token has %d characters, want at least %d (make one with: openssl rand -hex 16)", len(cfg.Token), MinTokenLen)
	case strings.ContainsAny(cfg.Token, " \t\r\n"):
		return fmt.Errorf("web: the token contains spaces or line breaks")
	}
	for _, h := range cfg.Hosts {
		if h == "" || strings.ContainsAny(h, "/ ") {
			return fmt.Errorf("web: host name %q: write a bare name, such as tether.example.net", h)
		}
	}
	return nil
}

// hostName is h without its port and final dot, in lower case.
func hostName(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
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
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = 4096
	}
	hosts := make([]string, 0, len(cfg.Hosts))
	for _, h := range cfg.Hosts {
		hosts = append(hosts, hostName(h))
	}
	cfg.Hosts = hosts
	return cfg
}
