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

	// OnReconnect, if set, is called after each connection made in the
	// background (every one but the connection Dial made itself), once
	// the subscriptions are renewed: a broker that lost its retained
	// messages (restarted without persistence) needs them published
	// again, and those published while it was never connected were not
	// published. It runs on the bus's goroutine and must return quickly.
	OnReconnect func()

	// RetryFirst makes the first connection like any later one: if
	// Dial's attempt fails with an error that retrying may cure (not
	// Permanent), Dial returns the Remote all the same, not connected
	// (Status says why), and it connects in the background with the
	// same backoff as after a lost connection, then subscribes,
	// publishes the online state and calls OnReconnect. Meanwhile
	// Publish waits for the connection, TryPublish returns
	// ErrNotConnected and Subscribe keeps its filters for it.
	RetryFirst bool

	Handler Handler
	Logger  *slog.Logger
}

// Remote is a connection to an external broker through Paho. After the
// first connection (or the first attempt, with RemoteConfig.RetryFirst)
// it reconnects by itself, with its own goroutine
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
	since   time.Time   // of the last change of isUp
	lastErr error       // why not connected
	guard   func() bool // stops closing the last dialled conn at Close
	closed  bool
}

// Dial connects to the broker. It fails if the first connection
// attempt fails, unless cfg.RetryFirst is set and the error is not
// Permanent: then it returns the Remote, not connected yet, which goes
// on trying in the background. Either way it fails if ctx ends first.
func Dial(ctx context.Context, cfg RemoteConfig) (*Remote, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("bus: %w %q", ErrBadURL, cfg.URL)
	}
	switch u.Scheme {
	case "mqtt", "tcp":
		u.Scheme = "tcp"
	case "mqtts", "tls", "ssl":
		u.Scheme = "ssl"
	case "ws", "wss":
	default:
		return nil, fmt.Errorf("bus: %w %q: scheme %q not supported", ErrBadURL, cfg.URL, u.Scheme)
	}
	r := &Remote{cfg: cfg, log: cfg.Logger, lost: make(chan error, 1),
		done: make(chan struct{}), up: make(chan struct{}), since: time.Now()}
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
	if err != nil && (ctx.Err() != nil || !cfg.RetryFirst || Permanent(err)) {
		r.cancel()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("bus: connect to MQTT broker %s: %w", cfg.URL, err)
	}
	if err != nil {
		r.failed(err)
		go r.run(false)
		return r, nil
	}
	r.log.Info("MQTT broker connected", "broker", cfg.URL, "client_id", cfg.ClientID)
	r.setUp()
	go r.run(true)
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
	r.setUpLocked()
}

// setUpLocked is setUp with r.mu held.
func (r *Remote) setUpLocked() {
	if !r.isUp {
		r.isUp = true
		r.since, r.lastErr = time.Now(), nil
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
		r.since = time.Now()
		r.up = make(chan struct{})
	}
}

// failed records why the connection is down: a lost connection or a
// failed attempt.
func (r *Remote) failed(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastErr = err
}

// Status says whether the broker is connected, since when, and why not.
func (r *Remote) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Status{Connected: r.isUp, Since: r.since}
	if !r.isUp {
		s.Err = r.lastErr
	}
	return s
}

// Reconnects is true: the connection to an external broker can be lost,
// and the Remote makes it again (calling RemoteConfig.OnReconnect).
func (r *Remote) Reconnects() bool { return true }

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

// Subscribe subscribes to filters with QoS 1, now and on every later
// connection. While the connection is down it returns at once: the
// next connection subscribes to them (renew subscribes to every filter
// added before it marks the connection up, under the lock that
// Subscribe adds them and reads the connection's state with: a
// connection that is up when Subscribe looks has renewed without them,
// and Subscribe subscribes itself).
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
	up, isUp := r.up, r.isUp
	r.mu.Unlock()
	if len(add) == 0 || !isUp {
		return nil
	}
	err := r.wait(ctx, r.c.SubscribeMultiple(qos1(add), nil))
	if errors.Is(err, paho.ErrNotConnected) {
		r.setDown(up) // Paho saw the loss first: run will reconnect
	}
	if err != nil && !errors.Is(err, ErrClosed) && r.whenUp() != up {
		return nil // lost meanwhile: the next connection subscribes
	}
	if err != nil {
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
