package bus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// ErrClosed is returned by a Remote's Publish and Subscribe after Close.
var ErrClosed = errors.New("bus: closed")

// Reconnection delays of a Remote: after a lost connection, and between
// failed attempts, it waits a random delay of at least half of a step
// that doubles from minBackoff up to maxBackoff. A connection that lasted
// maxBackoff resets the step; one that did not (a broker that accepts
// then drops the gateway, or kicks it for another client with its ID)
// keeps doubling it.
const (
	minBackoff     = 500 * time.Millisecond
	maxBackoff     = 10 * time.Second
	connectTimeout = 10 * time.Second
)

// RemoteConfig configures the connection to an external broker.
type RemoteConfig struct {
	// URL is the broker: mqtt://host:1883 (or tcp://), mqtts://host:8883
	// (or ssl://, tls://), ws://, wss://.
	URL string
	// ClientID must be stable across restarts: the session (clean
	// session off) keeps the subscriptions and queues their messages
	// while the gateway is away.
	ClientID string
	Username string
	Password string
	TLS      *tls.Config // for mqtts/ssl/wss; nil means the system's defaults

	// WillTopic, if set, gets WillPayload (retained) from the broker when
	// the connection dies without a clean disconnect.
	WillTopic   string
	WillPayload []byte
	// OnlinePayload, if set, is published (retained) on WillTopic after
	// each connection: the will may have overwritten it.
	OnlinePayload []byte

	// OnReconnect, if set, is called after each connection but the first,
	// once the subscriptions are renewed: a broker that lost its retained
	// messages (restarted without persistence) needs them published
	// again. It runs on the bus's goroutine and must return quickly.
	OnReconnect func()

	Handler Handler
	Logger  *slog.Logger
}

// Remote is a connection to an external broker through Paho. After the
// first connection it reconnects by itself, with its own goroutine
// (Paho's automatic reconnection is off: its goroutine sleeps and cannot
// be stopped), renews the subscriptions and republishes the online
// state on each connection; publishes made meanwhile wait for the
// connection (or their context). Close stops everything it started.
type Remote struct {
	c   paho.Client
	cfg RemoteConfig
	log *slog.Logger

	ctx    context.Context // ended by Close: ends dials, handshakes, backoffs
	cancel context.CancelFunc
	lost   chan error    // buffer 1: Paho lost the connection
	done   chan struct{} // closed when run returns

	mu      sync.Mutex
	filters []string
	up      chan struct{} // closed while connected
	isUp    bool
	guard   func() bool // stops closing the last dialled conn at Close
	closed  bool
}

// Dial connects to the broker; it fails if the first connection fails.
func Dial(ctx context.Context, cfg RemoteConfig) (*Remote, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("bus: bad broker URL %q", cfg.URL)
	}
	switch u.Scheme {
	case "mqtt":
		u.Scheme = "tcp"
	case "mqtts", "tls":
		u.Scheme = "ssl"
	}
	r := &Remote{cfg: cfg, log: cfg.Logger, lost: make(chan error, 1),
		done: make(chan struct{}), up: make(chan struct{})}
	if r.log == nil {
		r.log = slog.Default()
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	o := paho.NewClientOptions().
		AddBroker(u.String()).
		SetClientID(cfg.ClientID).
		SetCleanSession(false).
		SetAutoAckDisabled(true).
		SetOrderMatters(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(connectTimeout).
		SetKeepAlive(15 * time.Second).
		SetCustomOpenConnectionFn(r.open).
		SetDefaultPublishHandler(r.receive).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case r.lost <- err:
			default:
			}
		})
	if cfg.Username != "" {
		o.SetUsername(cfg.Username)
		o.SetPassword(cfg.Password)
	}
	if cfg.TLS != nil {
		o.SetTLSConfig(cfg.TLS)
	}
	if cfg.WillTopic != "" {
		o.SetWill(cfg.WillTopic, string(cfg.WillPayload), 1, true)
	}
	r.c = paho.NewClient(o)

	// ctx ending aborts the first connection (r.ctx ends the dial).
	stop := context.AfterFunc(ctx, r.cancel)
	err = r.connect()
	if !stop() && err == nil {
		r.c.Disconnect(250) // connected, but ctx ended meanwhile
		err = ctx.Err()
	}
	if err != nil {
		r.cancel()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("bus: connect to MQTT broker %s: %w", cfg.URL, err)
	}
	r.log.Info("MQTT broker connected", "broker", cfg.URL, "client_id", cfg.ClientID)
	r.setUp()
	go r.run()
	return r, nil
}

// wait waits for a Paho token, ctx or Close.
func (r *Remote) wait(ctx context.Context, t paho.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-r.ctx.Done():
		return ErrClosed
	}
}

func (r *Remote) receive(_ paho.Client, m paho.Message) {
	msg := Message{
		Topic:    m.Topic(),
		Payload:  m.Payload(),
		Origin:   "broker",
		PacketID: m.MessageID(),
		Dup:      m.Duplicate(),
	}
	if m.Qos() == 0 {
		msg.Origin = ""
	}
	if r.cfg.Handler == nil {
		m.Ack()
		return
	}
	if err := r.cfg.Handler(msg); err != nil {
		r.log.Error("MQTT message not stored: not acknowledged; the broker sends it again on the next connection", "topic", m.Topic(), "err", err)
		return
	}
	m.Ack()
}

// whenUp returns a channel closed while the connection is up.
func (r *Remote) whenUp() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.up
}

func (r *Remote) setUp() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.isUp {
		r.isUp = true
		close(r.up)
	}
}

// setDown marks the connection down, if up is still the channel of the
// current connection (a caller that saw Paho fail may be late).
func (r *Remote) setDown(up <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.isUp && (up == nil || up == r.up) {
		r.isUp = false
		r.up = make(chan struct{})
	}
}

// do runs op once the connection is up, again if Paho says it went
// down meanwhile, until ctx ends or Close.
func (r *Remote) do(ctx context.Context, op func() paho.Token) error {
	for {
		up := r.whenUp()
		select {
		case <-up:
		case <-ctx.Done():
			return fmt.Errorf("broker not connected: %w", ctx.Err())
		case <-r.ctx.Done():
			return ErrClosed
		}
		err := r.wait(ctx, op())
		if errors.Is(err, paho.ErrNotConnected) {
			r.setDown(up)
			continue
		}
		return err
	}
}

// Publish publishes with QoS 1 and waits for the broker's PUBACK. While
// the connection is down it waits for the next one. If the connection
// is lost before the PUBACK, the error is ErrUnconfirmed (see there).
func (r *Remote) Publish(ctx context.Context, topic string, payload []byte, retain bool) error {
	var up <-chan struct{}
	err := r.do(ctx, func() paho.Token {
		up = r.whenUp()
		return r.c.Publish(topic, 1, retain, payload)
	})
	return r.published(topic, up, err)
}

// published is the outcome of a publish handed to Paho while the
// connection whose channel is up was current. Paho keeps a QoS 1
// message whose PUBACK has not come when the connection is lost (clean
// session off), sends it again on the next connection, and then
// completes its token at once, PUBACK or not: a publish completed after
// a connection change is ErrUnconfirmed.
func (r *Remote) published(topic string, up <-chan struct{}, err error) error {
	if err == nil && r.whenUp() != up {
		err = ErrUnconfirmed
	}
	if err != nil {
		return fmt.Errorf("bus: publish %s: %w", topic, err)
	}
	return nil
}

// TryPublish publishes with QoS 1 and waits for the broker's PUBACK, if
// the connection is up; while it is down it returns ErrNotConnected at
// once. A message handed to Paho when ctx ends stays in Paho's session
// store and is sent again on the next connection; one whose connection
// is lost before the PUBACK is ErrUnconfirmed, as for Publish.
func (r *Remote) TryPublish(ctx context.Context, topic string, payload []byte) error {
	up := r.whenUp()
	select {
	case <-up:
	default:
		return fmt.Errorf("bus: publish %s: %w", topic, ErrNotConnected)
	}
	err := r.wait(ctx, r.c.Publish(topic, 1, false, payload))
	if errors.Is(err, paho.ErrNotConnected) {
		r.setDown(up) // Paho saw the loss first: run will reconnect
		err = ErrNotConnected
	}
	return r.published(topic, up, err)
}

// Subscribe subscribes to filters with QoS 1, now (or on the next
// connection, if the connection is down) and after every reconnection.
func (r *Remote) Subscribe(ctx context.Context, filters ...string) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	var add []string
	for _, f := range filters {
		if !slices.Contains(r.filters, f) {
			r.filters = append(r.filters, f)
			add = append(add, f)
		}
	}
	r.mu.Unlock()
	if len(add) == 0 {
		return nil
	}
	if err := r.do(ctx, func() paho.Token { return r.c.SubscribeMultiple(qos1(add), nil) }); err != nil {
		return fmt.Errorf("bus: subscribe %v: %w", add, err)
	}
	return nil
}

func qos1(fs []string) map[string]byte {
	m := make(map[string]byte, len(fs))
	for _, f := range fs {
		m[f] = 1
	}
	return m
}

// Close disconnects cleanly (the will is not sent) if connected, stops
// any reconnection (a dial or an MQTT handshake under way is
// abandoned), and waits for the goroutines of the bus and of Paho.
func (r *Remote) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		<-r.done
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	<-r.done
	return nil
}
