package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/tether-iot/tether/gateway/internal/bus"
	"github.com/tether-iot/tether/gateway/internal/web"
)

// MQTTState is the state of the gateway's connection to its MQTT broker.
type MQTTState struct {
	Connected bool
	// Since is when the connection came up or went down (or when the
	// gateway started, if it never connected).
	Since time.Time
	// Err, while not connected, is why: the last failed connection
	// attempt's error, or the lost connection's.
	Err error
}

// MQTTStatus says whether the gateway is connected to its MQTT broker,
// since when, and why not; the zero MQTTState without MQTT (mqtt.broker
// none) or before Start. The embedded broker is always connected.
func (g *Gateway) MQTTStatus() MQTTState {
	select {
	case <-g.busSet:
	default:
		return MQTTState{}
	}
	if g.bus == nil {
		return MQTTState{}
	}
	st := g.bus.Status()
	return MQTTState{Connected: st.Connected, Since: st.Since, Err: st.Err}
}

// webBroker is the state of the broker connection, for the page's
// header; nil without MQTT. The page is served once Start has set g.bus.
func (g *Gateway) webBroker() *web.Broker {
	if g.bus == nil {
		return nil
	}
	st := g.bus.Status()
	name := g.brokerName()
	if u, err := url.Parse(name); err == nil && u.User != nil {
		name = u.Redacted() // the page may be seen from afar
	}
	b := &web.Broker{Name: name, Connected: st.Connected, Since: st.Since}
	if st.Err != nil {
		b.Error = st.Err.Error()
	}
	return b
}

func (g *Gateway) brokerName() string {
	switch {
	case g.bus == nil:
		return BrokerNone
	case g.emb != nil && g.emb.Addr() != nil:
		return "embedded " + g.emb.Addr().String()
	case g.emb != nil:
		return "embedded (no listener)"
	}
	return g.cfg.MQTT.Broker
}

// startBus starts the embedded broker or connects the external one, and
// subscribes to the down topics of the nodes this gateway owns.
func (g *Gateway) startBus(ctx context.Context) error {
	m := g.cfg.MQTT
	online := []byte("online")
	switch m.Broker {
	case BrokerNone:
		return nil
	case "":
		var auth *bus.Auth
		if m.Listen != BrokerNone {
			a, err := g.embeddedAuth()
			if err != nil {
				return err
			}
			auth = a
		}
		var ln net.Listener
		if m.Listen != BrokerNone {
			var lc net.ListenConfig
			l, err := lc.Listen(ctx, "tcp", m.Listen)
			if err != nil {
				return &ListenError{What: "mqtt", Addr: m.Listen, Err: unwrapOp(err)}
			}
			ln = l
		}
		e, err := bus.NewEmbedded(bus.EmbeddedConfig{
			Listener:  ln,
			Handler:   g.fromBroker,
			Logger:    g.log,
			MaxPacket: g.cfg.embeddedMaxPacket(),
			Path:      g.cfg.brokerDB(),

			GatewayTopic: g.gatewayOnlyTopic,
			Auth:         auth,
		})
		if err != nil {
			if ln != nil {
				ln.Close()
			}
			return err
		}
		g.emb, g.bus = e, e
	default:
		tc, err := g.tlsConfig()
		if err != nil {
			return err
		}
		r, err := bus.Dial(ctx, bus.RemoteConfig{
			URL:           m.Broker,
			ClientID:      m.ClientID,
			Username:      m.Username,
			Password:      m.Password,
			TLS:           tc,
			WillTopic:     g.topics.Gateway(g.cfg.Name),
			WillPayload:   []byte("offline"),
			Handler:       g.fromBroker,
			Logger:        g.log,
			OnlinePayload: online,
			OnReconnect:   g.republishSoon,
			RetryFirst:    !m.RequireFirstConnection,
		})
		if err != nil {
			return fmt.Errorf("gateway: %w (%s)", err, bus.Hint(err))
		}
		g.bus = r
		if st := r.Status(); !st.Connected {
			// The bus subscribes and publishes the online state on its
			// first connection.
			g.log.Warn("MQTT broker not reachable yet; serving nodes and retrying", "broker", m.Broker, "err", st.Err,
				"hint", "the nodes' messages are spooled in the store and published once it is; "+bus.Hint(st.Err))
		}
	}
	if len(g.expect) == 0 {
		if err := g.bus.Subscribe(ctx, g.topics.Prefix+"/+/down", g.topics.Prefix+"/+/down/noqos"); err != nil {
			return err
		}
	} else {
		var fs []string
		for _, id := range g.cfg.Nodes.Expect {
			fs = append(fs, g.topics.Down(id), g.topics.DownNoQoS(id))
		}
		if err := g.bus.Subscribe(ctx, fs...); err != nil {
			return err
		}
	}
	if err := g.subscribeAdmin(ctx); err != nil {
		return err
	}
	if g.cfg.Discovery.Enabled {
		if err := g.bus.Subscribe(ctx, g.haStatusTopic()); err != nil {
			return err
		}
	}
	if !g.bus.Status().Connected {
		return nil // the bus publishes it on each connection
	}
	if err := g.publish(ctx, pubGateway, g.topics.Gateway(g.cfg.Name), online, true); err != nil {
		return err
	}
	if g.cfg.Discovery.Enabled {
		// Before any node's: they name the gateway as their via_device.
		if err := g.announceGateway(ctx); err != nil {
			g.log.Warn("MQTT: Home Assistant discovery of the gateway not published", "err", err)
		}
	}
	return nil
}

func (g *Gateway) tlsConfig() (*tls.Config, error) {
	t := g.cfg.MQTT.TLS
	if t.CA == "" && t.Cert == "" && !t.InsecureSkipVerify {
		return nil, nil
	}
	tc := &tls.Config{InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // the user asked for it
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("gateway: mqtt.tls.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("gateway: mqtt.tls.ca: no PEM certificate in %s", t.CA)
		}
		tc.RootCAs = pool
	}
	if t.Cert != "" {
		c, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("gateway: mqtt.tls.cert/key: %w", err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc, nil
}
