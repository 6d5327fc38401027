package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// tetherServer is a Tether server under measurement, with counters of
// what it delivers and of its nodes' events.
type tetherServer struct {
	srv  *server.Server
	ln   *acceptListener
	done chan error // Serve's result
	once sync.Once

	delivered gauge   // messages delivered by every node's link
	ups       gauge   // Up events
	downs     gauge   // Down events, but for the server's own Close
	oneWay    sampler // write-to-delivery times of stamped messages
}

// stampPrefix starts a payload that carries its send time (Unix ns), for
// one-way delivery times across processes on the same machine.
const stampPrefix = "L"

// startTether listens on addr (host:port; port 0 picks one) and serves.
// Node messages are delivered to counters, not queued.
func startTether(addr string, t time.Duration, log *slog.Logger) (*tetherServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tether server: %w", err)
	}
	ts := &tetherServer{ln: &acceptListener{Listener: ln}, done: make(chan error, 1)}
	ts.srv, err = server.New(server.Config{
		Timeout: t,
		Logger:  log,
		Configure: func(id string, c *link.Config) error {
			c.Deliver = ts.deliver
			return nil
		},
		OnEvent: ts.event,
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	go func() { ts.done <- ts.srv.Serve(ts.ln) }()
	return ts, nil
}

func (ts *tetherServer) addr() string { return ts.ln.Addr().String() }

func (ts *tetherServer) deliver(_ context.Context, m link.Message) error {
	now := time.Now()
	ts.delivered.add(now)
	if ts.oneWay.on.Load() && strings.HasPrefix(m.Payload, stampPrefix) {
		if sent, ok := parseStamp(m.Payload); ok {
			ts.oneWay.add(time.Duration(now.UnixNano() - sent))
		}
	}
	return nil
}

func (ts *tetherServer) event(ev link.Event) {
	switch ev.Kind {
	case link.Up:
		ts.ups.add(ev.Time)
	case link.Down:
		if !errors.Is(ev.Err, link.ErrClosed) {
			ts.downs.add(ev.Time)
		}
	}
}

// close closes the server and waits for it.
func (ts *tetherServer) close() {
	ts.once.Do(func() {
		ts.srv.Close()
		<-ts.done
	})
}

// stamp returns a payload of about size bytes that carries the time now.
func stamp(size int) string {
	s := stampPrefix + strconv.FormatInt(time.Now().UnixNano(), 10)
	if len(s) < size {
		s += strings.Repeat("x", size-len(s))
	}
	return s
}

// parseStamp reads the send time out of a stamped payload.
func parseStamp(p string) (int64, bool) {
	p = p[len(stampPrefix):]
	i := 0
	for i < len(p) && p[i] >= '0' && p[i] <= '9' {
		i++
	}
	v, err := strconv.ParseInt(p[:i], 10, 64)
	return v, err == nil
}

// filler returns a payload of size bytes.
func filler(size int) string { return strings.Repeat("x", max(size, 1)) }
