package gateway

import (
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tether-iot/tether/gateway/internal/metrics"
	"github.com/tether-iot/tether/gateway/internal/store"
	"github.com/tether-iot/tether/internal/wire"
	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// Defaults of a zero Config.
const (
	DefaultMQTTListen      = "127.0.0.1:1883"
	DefaultPrefix          = "tether"
	DefaultDiscoveryPrefix = "homeassistant"
	DefaultWebAddr         = "127.0.0.1:8080"
	// DefaultQueueMessages bounds each node's durable queue when
	// Config.Queue.MaxMessages is zero.
	DefaultQueueMessages = 1000
	// DefaultQueueTotalBytes bounds the payload bytes of all the
	// durable queues together when Config.Queue.MaxTotalBytes is zero.
	DefaultQueueTotalBytes = 256 << 20
	// DefaultUpMessages bounds each node's up spool (its messages
	// waiting for the broker) when Config.Queue.MaxUpMessages is zero.
	DefaultUpMessages = 1000
	// DefaultQueueNodes bounds the node IDs never seen connected that
	// the gateway keeps messages for when Config.Queue.MaxNodes is zero.
	DefaultQueueNodes = 1000
	// BrokerNone as Config.MQTT.Broker turns MQTT off: no broker, no
	// bridge; the gateway keeps its durable queues and its stdin/stdout.
	BrokerNone = "none"
)

// Config configures a Gateway. It is also the format of the YAML config
// file (see LoadConfig and docs/GATEWAY.md); every zero field means the
// default written beside it. New copies it.
type Config struct {
	// Name names this gateway among those sharing a broker: its MQTT
	// client ID is "tether-<name>" and its state topic
	// "<prefix>/$gateway/<name>/state". Empty means the host name.
	Name string `yaml:"name"`

	// Listen is the TCP address nodes connect to; empty means :8123.
	Listen string `yaml:"listen"`
	// Timeout is T, which must match the nodes'. Zero means 2 s.
	Timeout Duration `yaml:"timeout"`
	// MaxLine is the longest line to or from a node in bytes, id
	// included. Zero means 4096.
	MaxLine int `yaml:"max_line"`
	// Nodes: which node IDs are expected and whether others are refused.
	Nodes NodesConfig `yaml:"nodes"`
	// TLS: nodes that run Go connect over TLS with a certificate naming
	// their ID (see NodeTLSConfig, access.go).
	TLS NodeTLSConfig `yaml:"tls"`

	// Data is the directory of the durable store (gateway.db). Empty
	// means $XDG_STATE_HOME/tether, else ~/.local/state/tether.
	Data string `yaml:"data"`
	// FreshStore: if the store file is damaged (truncated, overwritten,
	// empty), move it aside and start an empty store, rather than refuse
	// to start (see backup.go). A one-time operator's choice (tether
	// serve --fresh-store): not in the file.
	FreshStore bool `yaml:"-"`
	// Queue bounds each node's durable queue, and all of them together.
	Queue QueueConfig `yaml:"queue"`

	MQTT      MQTTConfig      `yaml:"mqtt"`
	Routes    []Route         `yaml:"routes"`
	Discovery DiscoveryConfig `yaml:"discovery"`
	Web       WebConfig       `yaml:"web"`

	// Logger receives the gateway's, the server's and the links' log
	// lines; nil means slog.Default(). Not in the file.
	Logger *slog.Logger `yaml:"-"`
	// OnMessage, if set, is called with every new message from a node,
	// in order per node, once it is published (or spooled for the
	// broker) and stored (tether serve prints it). It runs on the node's read loop: keep it short. Not in
	// the file.
	OnMessage func(node, payload string) `yaml:"-"`
	// OnEvent, if set, receives every node's link events (see
	// server.Config.OnEvent). Not in the file.
	OnEvent func(link.Event) `yaml:"-"`
}

// NodesConfig lists the expected nodes, and holds the settings of every
// node: the defaults (its inline NodeConfig) and, per node, overrides.
type NodesConfig struct {
	// Expect lists the node IDs of this gateway. With several gateways on
	// one broker it is required: a gateway owns (subscribes to the
	// downlink topics of) its expected nodes only. Empty means this
	// gateway owns every node ID.
	Expect []string `yaml:"expect"`
	// Strict refuses nodes that are not in Expect.
	Strict bool `yaml:"strict"`

	// AllowFrom lists the addresses and networks (CIDR) that may claim
	// a node ID not in Pin; empty means anywhere.
	AllowFrom []string `yaml:"allow_from"`
	// Pin lists, per node ID, the addresses and networks that may claim
	// it (overriding AllowFrom): a claim from elsewhere is refused.
	Pin map[string][]string `yaml:"pin"`
	// Approval holds a node ID never seen before (not in Expect, never
	// connected, not approved) as pending, refusing its claims, until an
	// operator approves it: tether nodes approve, Gateway.Approve, or
	// MQTT (<prefix>/$admin/<name>/approve). A node with a certificate
	// from the gateway's CA needs no approval.
	Approval bool `yaml:"approval"`
	// MaxPending bounds the IDs listed as pending; when it is full, the
	// ID claimed least recently is dropped from the list (counted,
	// logged once per episode). Zero means 100.
	MaxPending int `yaml:"max_pending"`

	// Max bounds the node IDs the gateway keeps links for (connected at
	// least once, not forgotten): a new ID past it is refused at its
	// handshake. Zero means 100000 (DefaultMaxNodes); -1 means no bound.
	Max int `yaml:"max"`
	// ForgetAfter: a node not in Expect, with nothing queued for it or
	// spooled from it, down this long, is forgotten (forget.go,
	// docs/GATEWAY.md). Zero means 1h (DefaultForgetAfter); negative
	// means never; otherwise at least Timeout.
	ForgetAfter Duration `yaml:"forget_after"`

	// NodeConfig holds the settings of every node not overridden in
	// PerNode.
	NodeConfig `yaml:",inline"`
	// PerNode overrides, for the nodes it names, the settings it sets.
	PerNode map[string]NodeConfig `yaml:"per_node"`
}

// NodeConfig is what can be set for each node (NodesConfig.PerNode), or
// for every node (NodesConfig). A nil field is not set.
type NodeConfig struct {
	// RepeatHorizon is for original micropython-iot nodes, which say
	// nothing about their first message (id 00): when one sends the
	// same first message again on a new connection, with no TCP evidence
	// that it got the gateway's ACK, the gateway takes it for a repeat
	// (not delivered) if it comes within this long of that ACK, and for
	// a new life of the node (delivered) after (docs/GATEWAY.md, "What
	// is guaranteed"). Nil means 5T+13 s, the longest an original node
	// takes to repeat; 0 means every such message is delivered (for
	// nodes that reboot faster than that and send the same first line).
	RepeatHorizon *Duration `yaml:"repeat_horizon"`
	// Pace is for original micropython-iot nodes whose application reads
	// slower than the gateway writes: the original client acknowledges a
	// message before it queues it, its queue holds 20 lines, and the next
	// one is lost (docs/GATEWAY.md, "Original nodes whose application
	// reads slowly"). Nil (or every: 0) means no pacing.
	Pace *PaceConfig `yaml:"pace"`
	// TCPEvidence: whether the gateway may read, from its TCP socket,
	// that an original node's stack acknowledged the gateway's ACK of its
	// first message, and so take the node's next identical first message
	// for a new life for certain. Set it false for nodes that connect
	// through a proxy that terminates TCP (a TCP load balancer, stunnel,
	// Docker's userland proxy or rootless networking): the proxy's stack
	// acknowledges what the node may never get. Their identical first
	// messages are then decided by repeat_horizon, and counted as
	// ambiguous. Nil means true.
	TCPEvidence *bool `yaml:"tcp_evidence"`
}

// PaceConfig paces the messages written to a node: at most Ahead beyond
// what its application has read, assuming it reads one every Every.
type PaceConfig struct {
	// Ahead: less than the original client's 20 lines, with a margin
	// (10, say). Zero means 1.
	Ahead int `yaml:"ahead"`
	// Every: the application's slowest reading pace, e.g. 500ms.
	Every Duration `yaml:"every"`
}

// Node returns the settings of node id: NodesConfig's, overridden by
// those PerNode sets for it.
func (c NodesConfig) Node(id string) NodeConfig {
	n := c.NodeConfig
	if o, ok := c.PerNode[id]; ok {
		if o.RepeatHorizon != nil {
			n.RepeatHorizon = o.RepeatHorizon
		}
		if o.Pace != nil {
			n.Pace = o.Pace
		}
		if o.TCPEvidence != nil {
			n.TCPEvidence = o.TCPEvidence
		}
	}
	return n
}

// pace is the link's form of n.Pace.
func (n NodeConfig) pace() link.Pace {
	if n.Pace == nil {
		return link.Pace{}
	}
	return link.Pace{Ahead: n.Pace.Ahead, Every: time.Duration(n.Pace.Every)}
}

// repeatHorizon is the link's form of n.RepeatHorizon.
func (n NodeConfig) repeatHorizon() time.Duration {
	switch {
	case n.RepeatHorizon == nil:
		return 0 // the link's default
	case *n.RepeatHorizon == 0:
		return -1 // none
	}
	return time.Duration(*n.RepeatHorizon)
}

// QueueConfig bounds each node's durable queue: the messages for the
// node from its down topic, from routes and from Send, waiting to be
// written to it; and all the queues together. A full queue keeps what it
// has, in order (the message being written included), and drops the
// newest, as mosquitto's max_queued_messages does: a message from MQTT is
// dropped but still acknowledged to the broker (which would otherwise
// send it again forever), counted and logged once per episode; Send fails
// with ErrQueueFull (ErrStoreFull past MaxTotalBytes). It also bounds each
// node's up spool (MaxUpMessages), which counts in MaxTotalBytes.
type QueueConfig struct {
	// MaxMessages is the most messages queued for one node. Zero means
	// 1000 (DefaultQueueMessages); negative means no bound.
	MaxMessages int `yaml:"max_messages"`
	// MaxBytes is the most payload bytes queued for one node. Zero means
	// no byte bound (MaxMessages × MaxLine bounds them); otherwise it
	// must be at least MaxLine, so that any one message fits.
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxTotalBytes is the most payload bytes queued for all the nodes
	// together, their up spools included. Zero means 256 MiB
	// (DefaultQueueTotalBytes); negative means no bound; otherwise it
	// must be at least MaxLine.
	MaxTotalBytes int64 `yaml:"max_total_bytes"`
	// MaxUpMessages is the most messages from one node kept in its up
	// spool: the messages that the gateway acknowledged to the node
	// while the broker could not take them, waiting to be published.
	// Past it (or past MaxTotalBytes) the node's messages are not
	// acknowledged: the node repeats them later (a qos-off message is
	// lost). Zero means 1000 (DefaultUpMessages); negative means no
	// bound.
	MaxUpMessages int `yaml:"max_up_messages"`
	// MaxNodes is the most node IDs that were never seen connected (nor
	// are in Nodes.Expect) for which the gateway keeps messages from
	// MQTT: without Nodes.Expect it owns every ID, and a flood on
	// <prefix>/<random>/down would make a queue per ID. Past it, a
	// message for a new such ID is dropped (and acknowledged). Zero means
	// 1000 (DefaultQueueNodes); negative means no bound.
	MaxNodes int `yaml:"max_nodes"`
}

// limit is the store's form of q.
func (q QueueConfig) limit() store.Limit {
	return store.Limit{Messages: q.MaxMessages, Bytes: q.MaxBytes, TotalBytes: q.MaxTotalBytes}
}

// upLimit is the store's form of q for the up spools.
func (q QueueConfig) upLimit() store.Limit {
	return store.Limit{Messages: q.MaxUpMessages, TotalBytes: q.MaxTotalBytes}
}

// MQTTConfig selects the broker.
type MQTTConfig struct {
	// Broker is the URL of an external broker: mqtt://host:1883 or
	// tcp://..., mqtts://host:8883 or ssl://... (TLS), ws:// or wss://.
	// Empty means the embedded broker; "none" means no MQTT at all.
	Broker string `yaml:"broker"`
	// Listen is the embedded broker's TCP address. Empty means
	// 127.0.0.1:1883 (this machine only: anonymous clients are accepted;
	// any other address needs users, see EmbeddedBrokerConfig);
	// "none" means no listener (only the gateway itself uses it).
	Listen string `yaml:"listen"`
	// Prefix is the first level of every topic; empty means "tether".
	Prefix string `yaml:"prefix"`
	// ClientID is the MQTT client ID of the gateway on an external
	// broker; empty means "tether-<name>". It must be stable across
	// restarts: the broker keeps the gateway's session (clean session
	// off) and queues the messages for its nodes while it is away.
	ClientID string    `yaml:"client_id"`
	Username string    `yaml:"username"`
	Password string    `yaml:"password"`
	TLS      TLSConfig `yaml:"tls"`
	// RequireFirstConnection makes Start fail if its first attempt to
	// connect to the external broker fails, whatever the reason. By
	// default (false) only an error that retrying cannot cure fails
	// Start (a bad URL, bad credentials, a refused client ID or protocol
	// version, an untrusted certificate, a TLS refusal: docs/GATEWAY.md
	// lists them); after any other (connection refused, broker
	// unreachable, timeout, DNS) the gateway serves its nodes, spools
	// their messages and connects in the background.
	RequireFirstConnection bool `yaml:"require_first_connection"`
	// Embedded configures the embedded broker (brokerconfig.go).
	Embedded EmbeddedBrokerConfig `yaml:"embedded"`
	// RetainLast publishes each node's last message, retained, on
	// <prefix>/<id>/last (after its up topic), so that a client that
	// connects later (Home Assistant after a restart) has it at once.
	// Nil means on when Discovery is enabled, off otherwise.
	RetainLast *bool `yaml:"retain_last"`
}

// TLSConfig configures TLS to an external broker (mqtts://, ssl://,
// wss://).
type TLSConfig struct {
	CA                 string `yaml:"ca"`   // PEM file of the CA; empty means the system roots
	Cert               string `yaml:"cert"` // PEM client certificate, with Key
	Key                string `yaml:"key"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Route forwards every message of node From to node To, through the
// broker, so that it works across gateways.
type Route struct {
	From string `yaml:"from"`
	To   string `yaml:"to"`
	// QoS: true (the default) queues the message durably for To and
	// writes it with qos; false writes it once if To is up (qos off).
	QoS *bool `yaml:"qos"`
}

// Reliable reports whether the route writes with qos.
func (r Route) Reliable() bool { return r.QoS == nil || *r.QoS }

// DiscoveryConfig turns Home Assistant MQTT discovery on; its other
// fields are in discovery_config.go.
type DiscoveryConfig struct {
	Enabled bool `yaml:"enabled"`
	// Prefix is Home Assistant's discovery prefix; empty means
	// "homeassistant".
	Prefix      string           `yaml:"prefix"`
	HADiscovery `yaml:",inline"` // discovery_config.go
}

// WebConfig configures the status page, its JSON API and the metrics.
// They listen on loopback unless Addr says otherwise; beyond loopback
// they need credentials (TokenFile or UsersFile) or an explicit
// Insecure (see docs/GATEWAY.md, "Access control").
type WebConfig struct {
	// Addr is the HTTP address; empty means 127.0.0.1:8080.
	Addr string `yaml:"addr"`
	// Enabled turns the web server on; nil means on.
	Enabled *bool `yaml:"enabled"`
	// NodeMetrics chooses the per-node Prometheus series (label "node")
	// on /metrics: "basic" (6 per node: up, messages in and out, stored,
	// spooled and dropped messages), "full" (up to 28 per node) or
	// "none". Empty means basic. Fleet totals are always exported
	// (docs/GATEWAY.md lists the series).
	NodeMetrics string `yaml:"node_metrics"`
	// MaxNodeMetrics bounds the nodes that get per-node series (the
	// expected nodes first, then the others by ID), so that a flood of
	// new IDs cannot bloat every scrape; the nodes left out are counted
	// in tether_nodes_series_omitted. Zero means 1000; -1 means no bound.
	MaxNodeMetrics int `yaml:"max_node_metrics"`

	// TokenFile is a file whose first line is a token (16 characters or
	// more) that every request must then carry: as a bearer token
	// (Prometheus: bearer_token_file) or as the password of HTTP Basic
	// authentication, with any user name (a browser). Empty means none.
	TokenFile string `yaml:"token_file"`
	// UsersFile is a password file (user:hash lines: bcrypt, as "tether
	// web passwd FILE USER" or "htpasswd -nB USER" write them, or
	// mosquitto's, as "tether mqtt passwd" and mosquitto_passwd write
	// them: one file can serve the embedded broker too) whose users may
	// sign in with HTTP Basic authentication; every request must then
	// carry a user's password (or the token). Empty means none.
	UsersFile string `yaml:"users_file"`
	// Insecure serves an Addr beyond loopback without credentials:
	// anyone who can reach it reads node IDs, addresses and counters. A
	// warning is logged at every start. Without it (and without
	// TokenFile or UsersFile) an Addr beyond loopback is refused.
	// Actions (sending to a node from the page) need credentials
	// whatever this says.
	Insecure bool `yaml:"insecure"`
	// Hosts are names, besides localhost and loopback addresses, that
	// may reach a loopback Addr in the Host header (a reverse proxy
	// that passes its own name): other names are refused, so that a web
	// site whose name resolves to 127.0.0.1 (DNS rebinding) cannot read
	// the page.
	Hosts []string `yaml:"hosts"`
}

// On reports whether the web server is enabled.
func (w WebConfig) On() bool { return w.Enabled == nil || *w.Enabled }

// Duration is a time.Duration written as Go writes it in the file: 2s,
// 500ms.
type Duration time.Duration

// withDefaults returns a copy of c with its defaults filled in, or the
// first invalid field.
func (c Config) withDefaults() (Config, error) {
	if c.Name == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "gateway"
		}
		c.Name = h
	}
	if c.Listen == "" {
		c.Listen = server.DefaultAddr
	}
	if c.MQTT.Listen == "" {
		c.MQTT.Listen = DefaultMQTTListen
	}
	if c.MQTT.Prefix == "" {
		c.MQTT.Prefix = DefaultPrefix
	}
	if c.MQTT.ClientID == "" {
		c.MQTT.ClientID = "tether-" + c.Name
	}
	if c.Discovery.Prefix == "" {
		c.Discovery.Prefix = DefaultDiscoveryPrefix
	}
	if c.Web.Addr == "" {
		c.Web.Addr = DefaultWebAddr
	}
	if c.Data == "" {
		c.Data = DefaultDataDir()
	}
	if c.Queue.MaxMessages == 0 {
		c.Queue.MaxMessages = DefaultQueueMessages
	}
	if c.Queue.MaxTotalBytes == 0 {
		c.Queue.MaxTotalBytes = DefaultQueueTotalBytes
	}
	if c.Queue.MaxNodes == 0 {
		c.Queue.MaxNodes = DefaultQueueNodes
	}
	if c.Queue.MaxUpMessages == 0 {
		c.Queue.MaxUpMessages = DefaultUpMessages
	}
	if c.Nodes.MaxPending == 0 {
		c.Nodes.MaxPending = DefaultMaxPending
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Nodes.Expect = append([]string(nil), c.Nodes.Expect...)
	c.Routes = append([]Route(nil), c.Routes...)
	c.Discovery.HADiscovery = c.Discovery.clone() // discovery_config.go
	return c, c.validate()
}

// DefaultDataDir is where the store lives when Config.Data is empty.
func DefaultDataDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "tether")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "tether")
	}
	return "tether-data"
}

// fieldError is an invalid field, named by its path in the file.
type fieldError struct {
	path string
	msg  string
}

func (e *fieldError) Error() string { return e.path + ": " + e.msg }

func bad(path, format string, args ...any) error {
	return &fieldError{path: path, msg: fmt.Sprintf(format, args...)}
}

func (c Config) validate() error {
	if err := c.validateRanges(); err != nil { // rules.go
		return err
	}
	maxLine := c.MaxLine
	if maxLine == 0 {
		maxLine = link.DefaultMaxLine
	}
	if c.Queue.MaxBytes < 0 || (c.Queue.MaxBytes > 0 && c.Queue.MaxBytes < int64(maxLine)) {
		return bad("queue.max_bytes", "%d: must be 0 (no byte bound) or at least max_line (%d), so that any message fits", c.Queue.MaxBytes, maxLine)
	}
	if t := c.Queue.MaxTotalBytes; t > 0 && t < int64(maxLine) {
		return bad("queue.max_total_bytes", "%d: must be at least max_line (%d), so that any message fits (or -1: no bound)", t, maxLine)
	}
	if err := c.validateEmbedded(); err != nil {
		return err
	}
	if _, err := metrics.ParseNodeMetrics(c.Web.NodeMetrics); err != nil {
		return bad("web.node_metrics", "%q: write basic (the default), full or none", c.Web.NodeMetrics)
	}
	if err := c.Web.validate(); err != nil {
		return err
	}
	if strings.ContainsAny(c.Name, "/+#") {
		return bad("name", "%q: a gateway name may not contain '/', '+' or '#'", c.Name)
	}
	if c.Nodes.Strict && len(c.Nodes.Expect) == 0 {
		return bad("nodes.strict", "strict needs the list of expected nodes (nodes.expect)")
	}
	for i, id := range c.Nodes.Expect {
		if err := checkID(id); err != nil {
			return bad(fmt.Sprintf("nodes.expect[%d]", i), "%v", err)
		}
	}
	if err := c.Nodes.NodeConfig.validate("nodes"); err != nil {
		return err
	}
	for _, id := range slices.Sorted(maps.Keys(c.Nodes.PerNode)) {
		if err := checkID(id); err != nil {
			return bad("nodes.per_node", "%v", err)
		}
		if err := c.Nodes.PerNode[id].validate("nodes.per_node." + id); err != nil {
			return err
		}
	}
	if b := c.MQTT.Broker; b != "" && b != BrokerNone {
		u, err := url.Parse(b)
		if err != nil || u.Host == "" {
			return bad("mqtt.broker", "%q is not a broker URL: write mqtt://host:1883, mqtts://host:8883, or leave it empty for the embedded broker", b)
		}
		switch u.Scheme {
		case "mqtt", "tcp", "mqtts", "ssl", "tls", "ws", "wss":
		default:
			return bad("mqtt.broker", "scheme %q not supported: use mqtt://, mqtts://, ws:// or wss://", u.Scheme)
		}
	}
	if err := checkPrefix(c.MQTT.Prefix); err != nil {
		return bad("mqtt.prefix", "%v", err)
	}
	if (c.MQTT.TLS.Cert == "") != (c.MQTT.TLS.Key == "") {
		return bad("mqtt.tls", "cert and key go together")
	}
	if err := c.validateAccess(); err != nil {
		return err
	}
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		if err := checkID(r.From); err != nil {
			return bad(p+".from", "%v", err)
		}
		if err := checkID(r.To); err != nil {
			return bad(p+".to", "%v", err)
		}
		if r.From == r.To {
			return bad(p, "a route from node %q to itself would loop", r.From)
		}
	}
	if c.MQTT.Broker == BrokerNone && len(c.Routes) > 0 {
		return bad("routes", "routes go through MQTT: they need a broker (mqtt.broker is \"none\")")
	}
	if c.MQTT.Broker == BrokerNone && c.Discovery.Enabled {
		return bad("discovery.enabled", "discovery needs MQTT (mqtt.broker is \"none\")")
	}
	return c.validateDiscovery() // discovery_config.go
}

func (n NodeConfig) validate(path string) error {
	if h := n.RepeatHorizon; h != nil && *h < 0 {
		return bad(path+".repeat_horizon", "must be 0 (none) or positive, e.g. 30s")
	}
	if p := n.Pace; p != nil {
		switch {
		case p.Ahead < 0:
			return bad(path+".pace.ahead", "must be 0 or positive: how many messages may run ahead of the node's reads (10, say: the original client holds 20)")
		case p.Every < 0, p.Every == 0 && p.Ahead > 0:
			return bad(path+".pace.every", "must be positive when ahead is set: the node's application's slowest reading pace, e.g. 500ms")
		}
	}
	return nil
}

// checkID applies the node ID rules of the wire protocol
// (wire.CheckNodeID): the same for IDs from the config, stdin, MQTT
// topics and the handshake.
func checkID(id string) error {
	if err := wire.CheckNodeID(id, 0); err != nil {
		return fmt.Errorf("node ID %s: %w", strconv.QuoteToASCII(id), err)
	}
	return nil
}
