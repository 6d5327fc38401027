package bus

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
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

	Handler Handler
	Logger  *slog.Logger
}

// Remote is a connection to an external broker through Paho. After the
// first connection it reconnects by itself; publishes made meanwhile wait
// for the connection.
type Remote struct {
	c   paho.Client
	cfg RemoteConfig
	log *slog.Logger

	wake      chan struct{} // a (re)connection: renew
	stop      chan struct{} // closed by Close
	renewDone chan struct{}

	mu      sync.Mutex
	filters []string
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
	r := &Remote{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1),
		stop: make(chan struct{}), renewDone: make(chan struct{})}
	if r.log == nil {
		r.log = slog.Default()
	}
	o := paho.NewClientOptions().
		AddBroker(u.String()).
		SetClientID(cfg.ClientID).
		SetCleanSession(false).
		SetAutoAckDisabled(true).
		SetOrderMatters(true).
		SetAutoReconnect(true).
		SetConnectRetry(false).
		SetMaxReconnectInterval(10 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetKeepAlive(15 * time.Second).
		SetDefaultPublishHandler(r.receive).
		SetOnConnectHandler(func(paho.Client) { r.connected() }).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			r.log.Warn("MQTT broker connection lost; reconnecting", "broker", cfg.URL, "err", err)
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
	if err := wait(ctx, r.c.Connect()); err != nil {
		r.c.Disconnect(0)
		return nil, fmt.Errorf("bus: connect to MQTT broker %s: %w", cfg.URL, err)
	}
	r.log.Info("MQTT broker connected", "broker", cfg.URL, "client_id", cfg.ClientID)
	go r.renew()
	return r, nil
}

// wait waits for a Paho token or ctx.
func wait(ctx context.Context, t paho.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
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

// connected wakes the renew goroutine. It runs on Paho's goroutine
// while Paho may still be resuming its stored messages: a publish made
// now would race with that (Paho sets the DUP flag of every stored
// message, the new one included, while its writer sends it).
func (r *Remote) connected() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// renew renews the subscriptions after each connection (the broker may
// have lost the session), waits for the broker's SUBACK, and then
// publishes the online state that the will may have overwritten.
func (r *Remote) renew() {
	defer close(r.renewDone)
	for {
		select {
		case <-r.wake:
		case <-r.stop:
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		go func() {
			select {
			case <-r.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		r.mu.Lock()
		fs := slices.Clone(r.filters)
		r.mu.Unlock()
		if len(fs) > 0 {
			if err := wait(ctx, r.c.SubscribeMultiple(qos1(fs), nil)); err != nil {
				r.log.Warn("MQTT: renewing the subscriptions failed", "err", err)
			}
		}
		if r.cfg.WillTopic != "" && r.cfg.OnlinePayload != nil {
			if err := wait(ctx, r.c.Publish(r.cfg.WillTopic, 1, true, r.cfg.OnlinePayload)); err != nil {
				r.log.Warn("MQTT: publishing the online state failed", "err", err)
			}
		}
		cancel()
	}
}

func qos1(fs []string) map[string]byte {
	m := make(map[string]byte, len(fs))
	for _, f := range fs {
		m[f] = 1
	}
	return m
}

// Publish publishes with QoS 1 and waits for the broker's PUBACK.
func (r *Remote) Publish(ctx context.Context, topic string, payload []byte, retain bool) error {
	if err := wait(ctx, r.c.Publish(topic, 1, retain, payload)); err != nil {
		return fmt.Errorf("bus: publish %s: %w", topic, err)
	}
	return nil
}

// Subscribe subscribes to filters with QoS 1, now and after every
// reconnection.
func (r *Remote) Subscribe(ctx context.Context, filters ...string) error {
	r.mu.Lock()
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
	if err := wait(ctx, r.c.SubscribeMultiple(qos1(add), nil)); err != nil {
		return fmt.Errorf("bus: subscribe %v: %w", add, err)
	}
	return nil
}

// Close disconnects cleanly (the will is not sent) and waits for Paho.
func (r *Remote) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	close(r.stop)
	<-r.renewDone
	r.c.Disconnect(250)
	return nil
}
