package bus

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/net/proxy"
)

// run is the Remote's goroutine: it waits for the connection to be
// lost, reconnects with a jittered, capped backoff, renews the
// subscriptions and the online state on each connection, and on Close
// disconnects cleanly.
func (r *Remote) run() {
	defer close(r.done)
	var b backoff
	since := time.Now()
	lost := r.renew()
	for {
		if lost == nil {
			select {
			case err := <-r.lost:
				lost = &err
			case <-r.ctx.Done():
				r.c.Disconnect(250)
				return
			}
		}
		r.setDown(nil)
		r.log.Warn("MQTT broker connection lost; reconnecting", "broker", r.cfg.URL, "err", *lost)
		lost = nil
		if time.Since(since) >= maxBackoff {
			b.reset()
		}
		for failures := 0; ; failures++ {
			if !r.sleep(b.next()) {
				return
			}
			err := r.connect()
			if err == nil {
				break
			}
			if r.ctx.Err() != nil {
				return
			}
			if failures == 0 {
				r.log.Warn("MQTT broker: reconnection failed; retrying until it succeeds", "broker", r.cfg.URL, "err", err)
			} else {
				r.log.Debug("MQTT broker: reconnection failed", "broker", r.cfg.URL, "err", err, "attempt", failures+1)
			}
		}
		since = time.Now()
		r.setUp()
		r.log.Info("MQTT broker reconnected", "broker", r.cfg.URL)
		lost = r.renew()
		if lost == nil && r.cfg.OnReconnect != nil {
			r.cfg.OnReconnect()
		}
	}
}

// connect makes one connection attempt and waits for it. If Close (or
// Dial's ctx) ends it, Paho's attempt ends too (r.ctx ends the dial and
// closes the connection during the MQTT handshake): connect waits for
// it, and disconnects if it connected all the same.
func (r *Remote) connect() error {
	t := r.c.Connect()
	select {
	case <-t.Done():
	case <-r.ctx.Done():
		<-t.Done()
	}
	r.mu.Lock()
	if r.guard != nil {
		r.guard()
		r.guard = nil
	}
	r.mu.Unlock()
	if err := t.Error(); err != nil {
		return err
	}
	if err := r.ctx.Err(); err != nil {
		r.c.Disconnect(250)
		return err
	}
	return nil
}

// open is Paho's CustomOpenConnectionFn: the dial ends with r.ctx, and
// the connection is closed if r.ctx ends before connect is done with it
// (during the MQTT handshake, which Paho bounds by its connect timeout
// only).
func (r *Remote) open(u *url.URL, o paho.ClientOptions) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(r.ctx, o.ConnectTimeout)
	defer cancel()
	var conn net.Conn
	var err error
	switch u.Scheme {
	case "tcp":
		// As Paho does: ALL_PROXY / NO_PROXY from the environment.
		d := proxy.FromEnvironmentUsing(&net.Dialer{})
		if cd, ok := d.(proxy.ContextDialer); ok {
			conn, err = cd.DialContext(ctx, "tcp", u.Host)
		} else {
			conn, err = d.Dial("tcp", u.Host)
		}
	case "ssl":
		d := &tls.Dialer{Config: o.TLSConfig}
		conn, err = d.DialContext(ctx, "tcp", u.Host)
	case "ws", "wss":
		// Bounded by the connect timeout only: Paho's websocket dial
		// takes no context.
		du := *u
		du.User = nil
		var tc *tls.Config
		if u.Scheme == "wss" {
			tc = o.TLSConfig
		}
		conn, err = paho.NewWebsocket(du.String(), tc, o.ConnectTimeout, o.HTTPHeaders, o.WebsocketOptions)
	default:
		err = fmt.Errorf("scheme %q not supported", u.Scheme)
	}
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.guard != nil {
		r.guard()
	}
	r.guard = context.AfterFunc(r.ctx, func() { conn.Close() })
	r.mu.Unlock()
	return conn, nil
}

// renew renews the subscriptions after a connection (the broker may
// have lost the session), waits for the broker's SUBACK, and then
// publishes the online state that the will may have overwritten. If the
// connection is lost meanwhile it returns the loss at once (a publish
// would wait for the next connection, which run makes): the next
// connection renews again.
func (r *Remote) renew() (lost *error) {
	ctx, cancel := context.WithTimeout(r.ctx, connectTimeout)
	defer cancel()
	wait := func(what string, t paho.Token) bool {
		select {
		case <-t.Done():
			if err := t.Error(); err != nil {
				r.log.Warn("MQTT: "+what+" failed", "err", err)
			}
			return true
		case err := <-r.lost:
			lost = &err
		case <-ctx.Done():
			if r.ctx.Err() == nil {
				r.log.Warn("MQTT: "+what+" failed", "err", ctx.Err())
			}
		}
		return false
	}
	r.mu.Lock()
	fs := slices.Clone(r.filters)
	r.mu.Unlock()
	if len(fs) > 0 && !wait("renewing the subscriptions", r.c.SubscribeMultiple(qos1(fs), nil)) {
		return lost
	}
	if r.cfg.WillTopic != "" && r.cfg.OnlinePayload != nil {
		wait("publishing the online state", r.c.Publish(r.cfg.WillTopic, 1, true, r.cfg.OnlinePayload))
	}
	return lost
}

// sleep waits d, or until Close (false).
func (r *Remote) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// backoff is the delay before a reconnection attempt: a step doubling
// from minBackoff to maxBackoff, and a random delay in [step/2, step]
// so that gateways dropped together by a broker do not all come back
// at once.
type backoff struct{ step time.Duration }

func (b *backoff) next() time.Duration {
	if b.step == 0 {
		b.step = minBackoff
	} else {
		b.step = min(2*b.step, maxBackoff)
	}
	return b.step/2 + rand.N(b.step/2+1)
}

func (b *backoff) reset() { b.step = 0 }
