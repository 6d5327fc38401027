package bus

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/net/proxy"
)

// run is the Remote's goroutine: it waits for the connection to be
// lost, reconnects with a jittered, capped backoff, renews the
// subscriptions and the online state on each connection, and on Close
// disconnects cleanly. connected says whether Dial connected: if not,
// it starts by connecting (Dial's caller has said why it could not).
func (r *Remote) run(connected bool) {
	defer close(r.done)
	var b backoff
	since := time.Now()
	var lost *error
	if connected {
		lost = r.renew()
	}
	for {
		if connected {
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
			r.failed(*lost)
			r.log.Warn("MQTT broker connection lost; reconnecting", "broker", r.cfg.URL, "err", *lost)
			lost = nil
			if time.Since(since) >= maxBackoff {
				b.reset()
			}
		}
		if !r.reconnect(&b, !connected) {
			return
		}
		since = time.Now()
		if connected {
			r.log.Info("MQTT broker reconnected", "broker", r.cfg.URL)
		} else {
			r.log.Info("MQTT broker connected", "broker", r.cfg.URL, "client_id", r.cfg.ClientID)
		}
		connected = true
		lost = r.renew() // marks the connection up
		if lost == nil && r.cfg.OnReconnect != nil {
			r.cfg.OnReconnect()
		}
	}
}

// reconnect makes connection attempts after the backoff's delays until
// one succeeds (true) or Close (false). The first failure is logged
// (but not when quiet: the caller logged the failure before), the
// others at debug level; an error that is Permanent is logged as an
// error each time it changes, with its hint: a broker that now refuses
// the gateway needs someone to act.
func (r *Remote) reconnect(b *backoff, quiet bool) bool {
	var logged string
	for failures := 0; ; failures++ {
		if !r.sleep(b.next()) {
			return false
		}
		err := r.connect()
		if err == nil {
			return true
		}
		if r.ctx.Err() != nil {
			return false
		}
		r.failed(err)
		switch {
		case Permanent(err) && err.Error() != logged:
			logged = err.Error()
			r.log.Error("MQTT broker refused the connection; retrying, but this needs fixing", "broker", r.cfg.URL, "err", err, "hint", Hint(err))
		case failures == 0 && !quiet:
			r.log.Warn("MQTT broker: reconnection failed; retrying until it succeeds", "broker", r.cfg.URL, "err", err)
		default:
			r.log.Debug("MQTT broker: reconnection failed", "broker", r.cfg.URL, "err", err, "attempt", failures+1)
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
		if err == nil {
			conn = &alertConn{Conn: conn}
		}
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

// alertConn is a TLS connection that explains a write failure of the
// MQTT handshake. With TLS 1.3 the broker checks the client's
// certificate after the client has finished its handshake: a broker
// that refuses it sends an alert and closes, and the CONNECT that
// follows may fail with "connection reset by peer" before the alert is
// read, which looks like a failure that may pass. The alert was
// received before the reset: alertConn reads it and returns it instead.
// Only until the first read returns data (the CONNACK): then Paho's
// reader owns reading.
type alertConn struct {
	net.Conn
	read atomic.Bool // the first read returned data
}

func (c *alertConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.read.Store(true)
	}
	return n, err
}

func (c *alertConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err == nil || c.read.Load() {
		return n, err
	}
	// The connection is dead: the deadline only bounds a read that
	// finds nothing buffered.
	if c.Conn.SetReadDeadline(time.Now().Add(alertWait)) == nil {
		if _, rerr := c.Conn.Read(make([]byte, 1)); IsTLSRefusal(rerr) {
			return n, fmt.Errorf("%w (%w)", rerr, err)
		}
	}
	return n, err
}

// alertWait bounds alertConn's read of an alert after a failed write.
const alertWait = 100 * time.Millisecond

// renew renews the subscriptions after a connection (the broker may
// have lost the session, or never had it) and waits for the broker's
// SUBACK; only then does it mark the connection up, so that no publish
// of the gateway's (a spooled route's message for a node of its own,
// say) reaches the broker before the subscriptions that would bring it
// back. Filters that Subscribe adds meanwhile (while the connection is
// not up, it leaves them to renew) are subscribed before it is marked
// up, under the same lock. It then publishes the online state that the
// will may have overwritten. If the connection is lost meanwhile it
// returns the loss at once (a publish would wait for the next
// connection, which run makes): the next connection renews again.
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
	for done := 0; ; {
		r.mu.Lock()
		fs := slices.Clone(r.filters[done:])
		if len(fs) == 0 {
			r.setUpLocked()
			r.mu.Unlock()
			break
		}
		r.mu.Unlock()
		if !wait("renewing the subscriptions", r.c.SubscribeMultiple(qos1(fs), nil)) {
			if lost == nil {
				r.setUp() // no SUBACK in time: the connection is up all the same
			}
			return lost
		}
		done += len(fs)
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
