package bench

import (
	"context"
	"net"
	"strconv"
	"sync"
	"time"
)

// rawHold holds idle raw TCP connections: the floor for an idle node
// (memory, keepalive CPU) and, reconnecting after EOF, for a storm.
type rawHold struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	conns  []*heldConn
}

type heldConn struct {
	mu   sync.Mutex
	conn net.Conn // nil while reconnecting
	ka   *time.Timer
}

// holdRaw connects spec.N connections and returns once all are open.
func holdRaw(ctx context.Context, spec HoldSpec) (*rawHold, error) {
	h := &rawHold{conns: make([]*heldConn, spec.N)}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	for i := range h.conns {
		h.conns[i] = &heldConn{}
	}
	err := dialAll(ctx, spec.N, spec.Addr, spec.PerIP, func(i int, c net.Conn) error {
		h.conns[i].conn = c
		if spec.MQTT {
			return mqttHandshake(c, "idle-"+strconv.Itoa(i), spec.Keepalive)
		}
		return nil
	})
	if err != nil {
		for _, hc := range h.conns {
			if hc.conn != nil {
				hc.conn.Close()
			}
		}
		return nil, err
	}
	for i, hc := range h.conns {
		h.wg.Add(1)
		go h.run(i, hc, spec)
	}
	return h, nil
}

// run reads and discards, sends keepalives, and reconnects after EOF if
// told to, until release.
func (h *rawHold) run(i int, hc *heldConn, spec HoldSpec) {
	defer h.wg.Done()
	if spec.Keepalive > 0 {
		hc.mu.Lock()
		ka := []byte("\n")
		if spec.MQTT {
			ka = mqttPingReq
		}
		hc.ka = time.AfterFunc(spec.Keepalive, func() { hc.keepalive(spec.Keepalive, ka) })
		hc.mu.Unlock()
	}
	defer func() {
		hc.mu.Lock()
		if hc.ka != nil {
			hc.ka.Stop()
			hc.ka = nil
		}
		if hc.conn != nil {
			hc.conn.Close()
			hc.conn = nil
		}
		hc.mu.Unlock()
	}()
	hc.mu.Lock()
	c := hc.conn
	hc.mu.Unlock()
	buf := make([]byte, 512)
	for {
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
		c.Close()
		hc.mu.Lock()
		hc.conn = nil
		hc.mu.Unlock()
		if spec.Reconnect <= 0 || h.ctx.Err() != nil {
			return
		}
		t := time.NewTimer(spec.Reconnect)
		select {
		case <-t.C:
		case <-h.ctx.Done():
			t.Stop()
			return
		}
		d := net.Dialer{Timeout: 10 * time.Second}
		if spec.PerIP > 0 {
			d.LocalAddr = &net.TCPAddr{IP: sourceIP(i, spec.PerIP)}
		}
		for {
			var err error
			c, err = d.DialContext(h.ctx, "tcp", spec.Addr)
			if err == nil {
				break
			}
			if h.ctx.Err() != nil {
				return
			}
			t.Reset(spec.Reconnect)
			select {
			case <-t.C:
			case <-h.ctx.Done():
				t.Stop()
				return
			}
		}
		hc.mu.Lock()
		if h.ctx.Err() != nil {
			hc.mu.Unlock()
			c.Close()
			return
		}
		hc.conn = c
		hc.mu.Unlock()
		if _, err := c.Write([]byte("s" + strconv.Itoa(i) + "\n")); err != nil {
			continue
		}
	}
}

func (hc *heldConn) keepalive(every time.Duration, ka []byte) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if hc.conn != nil {
		hc.conn.Write(ka)
	}
	if hc.ka != nil {
		hc.ka.Reset(every)
	}
}

// release closes every connection and waits.
func (h *rawHold) release() {
	h.cancel()
	for _, hc := range h.conns {
		hc.mu.Lock()
		if hc.conn != nil {
			hc.conn.Close()
		}
		hc.mu.Unlock()
	}
	h.wg.Wait()
}
