package soak

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// Serve runs a Tether server with a soak Peer on ln until ctx is done: the
// server side of a soak whose nodes run elsewhere ("tether soak --serve").
// interval is the Peer's (see NewPeer); cfg.OnEvent, if set, still gets
// every event. It returns nil once ctx is done and everything has stopped.
func Serve(ctx context.Context, ln net.Listener, cfg server.Config, interval time.Duration) error {
	p := NewPeer(interval, cfg.Logger)
	srv, err := newPeerServer(p, cfg)
	if err != nil {
		ln.Close()
		return err
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		cancel() // a failed listener ends the peer too
		errc <- err
	}()
	p.Serve(ctx, srv)
	srv.Close()
	err = <-errc
	if parent.Err() != nil || errors.Is(err, server.ErrServerClosed) {
		return nil
	}
	return err
}

func newPeerServer(p *Peer, cfg server.Config) (*server.Server, error) {
	next := cfg.OnEvent
	cfg.OnEvent = func(ev link.Event) {
		p.OnEvent(ev)
		if next != nil {
			next(ev)
		}
	}
	return server.New(cfg)
}
