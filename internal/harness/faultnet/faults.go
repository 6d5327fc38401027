package faultnet

import (
	"net"
	"time"
)

// relistenRetry is how long Refuse waits before trying again when the port
// cannot be bound at the end of a refusal.
const relistenRetry = 50 * time.Millisecond

// closedChan is returned for faults asked of a closed proxy.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Cut closes both sides of every live connection with FIN, as a server or
// node closing its socket would. Both peers read EOF.
func (p *Proxy) Cut() {
	p.closeAll(endCut)
}

// Reset closes both sides of every live connection with RST (SO_LINGER 0).
// Both peers get ECONNRESET.
func (p *Proxy) Reset() {
	p.closeAll(endReset)
}

func (p *Proxy) closeAll(kind endKind) {
	p.mu.Lock()
	conns := p.snapshot()
	p.mu.Unlock()
	p.cfg.Logger.Info("faultnet: closing all connections", "conns", len(conns), "rst", kind.rst())
	for _, pc := range conns {
		p.closeConn(pc, kind)
	}
}

// Blackhole makes the network silent for d, like a WiFi loss: nothing passes
// either way on live connections and no FIN or RST is sent. Bytes read
// meanwhile are dropped (recorded with dropped=true), as are delayed chunks
// whose time to be written falls inside it; a peer's EOF or reset is held
// back until it ends. Connections accepted during the blackhole are never
// forwarded (the target never sees them; their bytes are dropped) and are
// closed with FIN when it ends. After d, traffic on surviving connections
// flows again: detecting the outage is left to the peers' own timeouts.
//
// A Blackhole during another extends it to whichever end is later. The
// returned channel is closed when the blackhole ends (after the connections
// accepted during it are closed) or the proxy closes.
func (p *Proxy) Blackhole(d time.Duration) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return closedChan
	}
	p.stats.Blackholes++
	end := time.Now().Add(d)
	if p.bhDone == nil {
		p.bhDone = make(chan struct{})
		p.bhEnd = end
	} else if end.After(p.bhEnd) {
		p.bhEnd = end
	}
	p.bhTimer.Reset(time.Until(p.bhEnd))
	p.cfg.Logger.Info("faultnet: blackhole", "for", d, "until", p.bhEnd)
	return p.bhDone
}

// blackholed reports whether a blackhole is on, and a channel closed when it
// ends.
func (p *Proxy) blackholed() (bool, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bhDone != nil, p.bhDone
}

// endBlackhole runs when bhTimer fires.
func (p *Proxy) endBlackhole() {
	p.mu.Lock()
	if p.bhDone == nil {
		p.mu.Unlock()
		return
	}
	if wait := time.Until(p.bhEnd); wait > 0 { // extended meanwhile
		p.bhTimer.Reset(wait)
		p.mu.Unlock()
		return
	}
	done, limbo := p.bhDone, p.limbo
	p.bhDone, p.limbo = nil, nil
	p.mu.Unlock()
	for _, pc := range limbo {
		p.closeConn(pc, endPeer)
	}
	close(done)
	p.cfg.Logger.Info("faultnet: blackhole ended", "closed", len(limbo))
}

// Refuse refuses new connections for d: it closes the listener, so connects
// fail with ECONNREFUSED, and listens again on the same address when d ends.
// Live connections are not touched. A Refuse during another extends it to
// whichever end is later. The returned channel is closed once the proxy
// listens again, or closes. Should the port be taken meanwhile, the proxy
// logs the error and tries again every 50 ms.
func (p *Proxy) Refuse(d time.Duration) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return closedChan
	}
	p.stats.Refusals++
	end := time.Now().Add(d)
	if p.refDone == nil {
		p.refDone = make(chan struct{})
		p.refEnd = end
		if p.ln != nil {
			if err := p.ln.Close(); err != nil {
				p.cfg.Logger.Warn("faultnet: close listener", "err", err)
			}
			p.ln = nil
		}
	} else if end.After(p.refEnd) {
		p.refEnd = end
	}
	p.refTimer.Reset(time.Until(p.refEnd))
	p.cfg.Logger.Info("faultnet: refusing connections", "for", d, "until", p.refEnd)
	return p.refDone
}

// endRefuse runs when refTimer fires.
func (p *Proxy) endRefuse() {
	p.mu.Lock()
	if p.refDone == nil {
		p.mu.Unlock()
		return
	}
	if wait := time.Until(p.refEnd); wait > 0 {
		p.refTimer.Reset(wait)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()

	var lc net.ListenConfig
	ln, err := lc.Listen(p.ctx, "tcp", p.addr)

	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.refDone == nil: // closed meanwhile
		if err == nil {
			_ = ln.Close()
		}
		return
	case err != nil:
		p.cfg.Logger.Error("faultnet: listen again failed; retrying", "addr", p.addr, "err", err)
		p.refTimer.Reset(relistenRetry)
		return
	case time.Now().Before(p.refEnd): // extended meanwhile
		_ = ln.Close()
		p.refTimer.Reset(time.Until(p.refEnd))
		return
	}
	p.ln = ln
	close(p.refDone)
	p.refDone = nil
	p.spawn(func() { p.acceptLoop(ln) })
	p.cfg.Logger.Info("faultnet: accepting again", "addr", p.addr)
}

// SetDelay delays every chunk by d from when it was read, in each direction
// independently, keeping order. It applies to chunks not yet written. Zero
// or negative means no delay.
func (p *Proxy) SetDelay(d time.Duration) {
	p.delay.Store(int64(max(d, 0)))
}

// SetTrickle turns trickling on or off: when on, chunks are written one byte
// per Write call.
func (p *Proxy) SetTrickle(on bool) {
	p.trickle.Store(on)
}
