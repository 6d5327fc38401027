package adversarial

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// Attacks on the status page: event stream floods, slow HTTP clients.

// webRequest opens a connection to the status page and writes req.
func (h *harness) webRequest(ctx context.Context, from, req string) (net.Conn, error) {
	addr := strings.TrimPrefix(h.webURL, "http://")
	c, err := dialFrom(ctx, from, addr)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte(req)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// hold waits d or until ctx ends.
func hold(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// TestSSEFlood: hundreds of browsers open the event stream and never
// read it while the honest node's traffic makes updates; then they leave.
func TestSSEFlood(t *testing.T) {
	h := start(t, options{})
	host := strings.TrimPrefix(h.webURL, "http://")
	var e errs
	h.attack(func(ctx context.Context) {
		var cs conns
		defer cs.closeAll()
		parallel(4, func(i int) {
			for range 50 {
				c, err := h.webRequest(ctx, source(i), fmt.Sprintf("GET /events HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", host))
				if err != nil {
					e.add(err)
					return
				}
				cs.add(c)
			}
		})
		hold(ctx, 4*T)
	})
	e.check(t)
}

// TestSlowHTTPClients: slowloris: hundreds of connections that send
// their request headers a byte at a time, and others that request the
// page, the API and the metrics and never read the answers.
func TestSlowHTTPClients(t *testing.T) {
	h := start(t, options{})
	host := strings.TrimPrefix(h.webURL, "http://")
	var e errs
	h.attack(func(ctx context.Context) {
		var cs conns
		defer cs.closeAll()
		parallel(4, func(i int) {
			for k := range 50 {
				req := "GET / HTTP/1.1\r\nHost: " + host + "\r\nX-Slow: "
				if k%2 == 1 {
					path := []string{"/", "/api/status", "/metrics", "/api/nodes"}[k%4]
					req = fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host)
				}
				c, err := h.webRequest(ctx, source(i), req)
				if err != nil {
					e.add(err)
					return
				}
				cs.add(c)
			}
		})
		for range 4 {
			hold(ctx, T)
			cs.mu.Lock()
			for _, c := range cs.cs {
				c.Write([]byte("a"))
			}
			cs.mu.Unlock()
		}
	})
	e.check(t)
}
