package bus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage/bolt"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.etcd.io/bbolt"
)

// EmbeddedConfig configures the embedded broker.
type EmbeddedConfig struct {
	// Listener, if set, is where MQTT clients connect (the embedded
	// broker then closes it); nil means only the gateway uses the broker.
	Listener net.Listener
	// Handler takes the messages on subscribed topics.
	Handler Handler
	// Logger receives the broker's log lines (at Warn and above: mochi
	// is chatty); nil means slog.Default().
	Logger *slog.Logger
	// MaxPending bounds the bytes waiting to be written to one client:
	// a client that lets more wait (it does not read) is disconnected.
	// 0 means DefaultMaxPending.
	MaxPending int
	// WriteTimeout disconnects a client that takes nothing of what the
	// broker writes to it for that long. 0 means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// MaxPacket is the largest packet a client may send, in bytes (a
	// larger one disconnects it before it is read); 0 means
	// DefaultMaxPacket.
	MaxPacket int
	// Path, if set, is a bbolt file where the broker keeps its retained
	// messages and its clients' persistent sessions across restarts
	// (written without fsync: they survive the process, not a power
	// cut). Empty keeps them in memory only.
	Path string
	// GatewayTopic reports whether only the gateway may write topic (a
	// node's up and state topics, the gateway's own): no client may
	// publish there. nil: none.
	GatewayTopic func(topic string) bool
	// Auth is who may connect and what they may do; nil accepts every
	// client anonymously (but GatewayTopic holds for all).
	Auth *Auth
}

// The embedded broker's bounds. Retained messages are bounded for the
// messages of clients (the gateway's own are bounded by its nodes).
const (
	DefaultMaxPacket = 64 << 10
	MaxClients       = 1024
	MaxInflight      = 1000 // QoS 1 messages waiting for a client's PUBACK, per session (mosquitto's max_queued_messages)
	MaxClientQueue   = 1024 // packets waiting for a client's write loop
	MaxSubscriptions = 100_000
	MaxTotalSubs     = 1_000_000
	MaxRetained      = 100_000
	MaxRetainedBytes = 64 << 20
	SessionExpiry    = 30 * 24 * time.Hour // a persistent session unused for this long is deleted
	maxTopicAliases  = 16
)

// DefaultMaxPending and DefaultWriteTimeout bound what the embedded
// broker lets wait for a client that does not read.
const (
	DefaultMaxPending   = 1 << 20
	DefaultWriteTimeout = 10 * time.Second
)

// EmbeddedStats counts what the embedded broker did to protect itself
// and its other clients.
type EmbeddedStats struct {
	// SlowClients counts the clients disconnected because they did not
	// read what the broker sent them.
	SlowClients uint64
	// Dropped counts the messages the broker did not give a subscriber
	// (its queue or its session's inflight messages were full).
	Dropped uint64
	// TooLarge counts the clients disconnected for a packet larger
	// than MaxPacket.
	TooLarge uint64
	// RetainRefused counts the clients' messages delivered but not
	// retained: the clients' retained messages were at their bound.
	RetainRefused uint64
	// SubscriptionsRefused counts the filters refused: a client's or the
	// broker's subscriptions were at their bound.
	SubscriptionsRefused uint64
	// RefusedLogins, RefusedWrites and RefusedReads count connections
	// refused (anonymous where it is not accepted, unknown user, wrong
	// password), publishes and reads (subscriptions, deliveries) refused
	// for want of the right.
	RefusedLogins, RefusedWrites, RefusedReads uint64
}

// Embedded is an in-process mochi-mqtt broker that the gateway uses
// without a network connection (mochi's inline client). It keeps
// everything in memory: its retained messages and the sessions of its
// clients do not survive a restart (the gateway's own queues do, in the
// store).
type Embedded struct {
	srv      *mqtt.Server
	inline   *mqtt.Client // publishes the gateway's messages
	retained retainSync   // its retained publishes apart from subscriptions' scans
	handler  Handler
	ln       *listener
	log      *slog.Logger
	guard    *guardHook
	auth     *authHook

	slowClients atomic.Uint64
	slowLog     rateLog

	mu      sync.Mutex
	filters []string
	closed  bool
	started time.Time
}

// NewEmbedded starts an embedded broker.
func NewEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	maxPacket := cfg.MaxPacket
	if maxPacket <= 0 {
		maxPacket = DefaultMaxPacket
	}
	caps := mqtt.NewDefaultServerCapabilities()
	// Retained messages never expire: mochi's default deletes them after
	// a day (the gateway's online state, the nodes' states, Home
	// Assistant's discovery configs). A client's own message expiry
	// (MQTT 5) still applies to its messages.
	caps.MaximumMessageExpiryInterval = 0
	caps.MaximumPacketSize = uint32(maxPacket)
	caps.MaximumClients = MaxClients
	caps.MaximumInflight = MaxInflight
	caps.MaximumClientWritesPending = MaxClientQueue
	caps.MaximumSessionExpiryInterval = uint32(SessionExpiry / time.Second)
	caps.TopicAliasMaximum = maxTopicAliases
	opts := &mqtt.Options{
		InlineClient:           true,
		Logger:                 slog.New(newMinLevel(log.Handler(), slog.LevelWarn)),
		SysTopicResendInterval: 3600,
		Capabilities:           caps,
	}
	e := &Embedded{srv: mqtt.New(opts), handler: cfg.Handler, started: time.Now(), log: log}
	// The gateway's own client: mochi's inline client, but MQTT 5, so
	// that its publishes carry a content type (contenttype.go).
	e.inline = e.srv.NewClient(nil, mqtt.LocalListener, mqtt.InlineClientId, true)
	e.inline.Properties.ProtocolVersion = 5
	guard := newGuard(e, cfg.GatewayTopic)
	e.guard = guard
	auth := Auth{Anonymous: true}
	if cfg.Auth != nil {
		auth = *cfg.Auth
	}
	e.auth = &authHook{e: e, auth: auth, gatewayOnly: guard.gatewayOnly}
	hooks := []struct {
		h   mqtt.Hook
		cfg any
	}{
		{e.auth, nil},
		{&storeHook{e: e}, nil},
		{guard, nil},
		{&e.retained, nil}, // retainsync.go
	}
	if cfg.Path != "" {
		hooks = append(hooks, struct {
			h   mqtt.Hook
			cfg any
		}{&boltHook{new(bolt.Hook)}, &bolt.Options{Path: cfg.Path, Bucket: "mochi",
			Options: &bbolt.Options{Timeout: time.Second, NoSync: true}}})
	}
	for _, h := range hooks {
		if err := e.srv.AddHook(h.h, h.cfg); err != nil {
			e.srv.Close()
			return nil, fmt.Errorf("bus: embedded broker: %s: %w", h.h.ID(), err)
		}
	}
	if cfg.Listener != nil {
		maxPending, timeout := cfg.MaxPending, cfg.WriteTimeout
		if maxPending <= 0 {
			maxPending = DefaultMaxPending
		}
		if timeout <= 0 {
			timeout = DefaultWriteTimeout
		}
		e.ln = &listener{ln: cfg.Listener, conns: make(map[*clientConn]struct{}),
			wrap: func(c net.Conn) *clientConn { return newClientConn(c, maxPending, timeout, e.slow) }}
		if err := e.srv.AddListener(e.ln); err != nil {
			e.srv.Close()
			return nil, fmt.Errorf("bus: %w", err)
		}
	}
	if err := e.srv.Serve(); err != nil {
		e.srv.Close()
		return nil, fmt.Errorf("bus: start the embedded broker: %w", err)
	}
	guard.restored()
	return e, nil
}

// Addr returns the address of the broker's listener, or nil.
func (e *Embedded) Addr() net.Addr {
	if e.ln == nil {
		return nil
	}
	return e.ln.ln.Addr()
}

// Publish hands the message to the broker, which gives it to its
// subscribers (and stores what matches the gateway's own subscriptions
// through the Handler) before it returns.
func (e *Embedded) Publish(ctx context.Context, topic string, payload []byte, retain bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return net.ErrClosed
	}
	if retain {
		e.retained.mu.Lock()
		defer e.retained.mu.Unlock()
	}
	if err := e.srv.InjectPacket(e.inline, publishPacket(topic, payload, retain)); err != nil {
		return fmt.Errorf("bus: publish %s: %w", topic, err)
	}
	return nil
}

// TryPublish is Publish, not retained: the embedded broker is always
// connected.
func (e *Embedded) TryPublish(ctx context.Context, topic string, payload []byte) error {
	return e.Publish(ctx, topic, payload, false)
}

// slow counts and logs a client dropped for not reading.
func (e *Embedded) slow(c *clientConn, why string, pending int) {
	e.slowClients.Add(1)
	id, user := c.who()
	reason := "more than the pending bound waits for it"
	if why == "timeout" {
		reason = "it took nothing for the write timeout"
	}
	if n, ok := e.slowLog.allow(); ok {
		e.log.Warn("embedded MQTT broker: client disconnected: it does not read what the broker sends it",
			"client", id, "user", user, "remote", c.RemoteAddr().String(), "reason", reason, "pending_bytes", pending, "not_logged_since", n)
	}
}

// Stats returns the broker's protection counters.
func (e *Embedded) Stats() EmbeddedStats {
	return EmbeddedStats{
		SlowClients: e.slowClients.Load(),
		Dropped:     uint64(atomic.LoadInt64(&e.srv.Info.MessagesDropped) + atomic.LoadInt64(&e.srv.Info.InflightDropped)),

		TooLarge:             e.guard.tooLarge.Load(),
		RetainRefused:        e.guard.retainRefused.Load(),
		SubscriptionsRefused: e.guard.subsRefused.Load(),
		RefusedLogins:        e.auth.refusedLogins.Load(),
		RefusedWrites:        e.auth.refusedWrites.Load(),
		RefusedReads:         e.auth.refusedReads.Load(),
	}
}

// Subscribe adds filters whose messages go to the Handler.
func (e *Embedded) Subscribe(_ context.Context, filters ...string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range filters {
		if !slices.Contains(e.filters, f) {
			e.filters = append(e.filters, f)
		}
	}
	return nil
}

// Status says the embedded broker is connected (in-process, it always
// is) since it started.
func (e *Embedded) Status() Status { return Status{Connected: true, Since: e.started} }

// Reconnects is false: the embedded broker is in-process.
func (e *Embedded) Reconnects() bool { return false }

// Close stops the broker, closing its clients' connections, and waits
// for the connections' goroutines.
func (e *Embedded) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	return e.srv.Close()
}

func (e *Embedded) matches(topic string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range e.filters {
		if Match(f, topic) {
			return true
		}
	}
	return false
}

// storeHook gives the gateway the messages on its topics before mochi
// acknowledges them to their publisher.
type storeHook struct {
	mqtt.HookBase
	e *Embedded
}

func (h *storeHook) ID() string { return "tether-gateway" }

func (h *storeHook) Provides(b byte) bool { return b == mqtt.OnPublish }

func (h *storeHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if h.e.handler == nil || !h.e.matches(pk.TopicName) {
		return pk, nil
	}
	m := Message{Topic: pk.TopicName, Payload: bytes.Clone(pk.Payload)}
	if !cl.Net.Inline && pk.FixedHeader.Qos > 0 {
		m.Origin, m.PacketID, m.Dup = "embedded/"+cl.ID, pk.PacketID, pk.FixedHeader.Dup
	}
	if err := h.e.handler(m); err != nil {
		// Not acknowledged: the publisher sends it again when it
		// reconnects.
		return pk, packets.ErrRejectPacket
	}
	return pk, nil
}

// listener serves mochi on a net.Listener that the gateway opened, with
// each connection wrapped so that no client's socket blocks the broker
// (see clientConn), and waits for its connections on Close.
type listener struct {
	ln   net.Listener
	wrap func(net.Conn) *clientConn

	mu     sync.Mutex
	closed bool
	conns  map[*clientConn]struct{}
	wg     sync.WaitGroup
}

func (l *listener) Init(*slog.Logger) error { return nil }
func (l *listener) ID() string              { return "tcp" }
func (l *listener) Address() string         { return l.ln.Addr().String() }
func (l *listener) Protocol() string        { return "tcp" }

func (l *listener) Serve(establish listeners.EstablishFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.wg.Add(1)
	l.mu.Unlock()
	defer l.wg.Done()
	for {
		raw, err := l.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				slog.Default().Debug("embedded broker: accept", "err", err)
			}
			return
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			raw.Close()
			return
		}
		c := l.wrap(raw)
		l.conns[c] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go func() {
			defer l.wg.Done()
			_ = establish(l.ID(), c)
			c.Close()
			c.wait()
			l.mu.Lock()
			delete(l.conns, c)
			l.mu.Unlock()
		}()
	}
}

// Close stops accepting, has mochi disconnect its clients, closes every
// connection (each sends what it still has within closeFlush, in
// parallel) and waits for them.
func (l *listener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	l.closed = true
	l.ln.Close()
	l.mu.Unlock()
	closeClients(l.ID())
	l.mu.Lock()
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
}

// minLevel drops records below its level, and lets each message through
// at most once per logEvery (mochi logs some per packet: a client whose
// session is full would flood the log), with the count held back.
type minLevel struct {
	slog.Handler
	min   slog.Level
	rates *rateLogs
}

type rateLogs struct {
	mu sync.Mutex
	m  map[string]*rateLog // mochi's messages: a small fixed set
}

func newMinLevel(h slog.Handler, min slog.Level) minLevel {
	return minLevel{h, min, &rateLogs{m: make(map[string]*rateLog)}}
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) Handle(ctx context.Context, r slog.Record) error {
	if missingSysInfo(r) {
		return nil
	}
	h.rates.mu.Lock()
	rl := h.rates.m[r.Message]
	if rl == nil {
		rl = new(rateLog)
		h.rates.m[r.Message] = rl
	}
	h.rates.mu.Unlock()
	held, ok := rl.allow()
	if !ok {
		return nil
	}
	if held > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("not_logged_since", held))
	}
	return h.Handler.Handle(ctx, r)
}

func (h minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(a), h.min, h.rates}
}

func (h minLevel) WithGroup(n string) slog.Handler {
	return minLevel{h.Handler.WithGroup(n), h.min, h.rates}
}
