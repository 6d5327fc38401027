package faultnet

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// readBufSize is the size of one read, so the largest chunk.
const readBufSize = 32 << 10

// queueLen bounds the chunks read but not yet written, per direction.
const queueLen = 64

// pconn is one proxied connection.
type pconn struct {
	id   int
	done chan struct{} // closed when the proxy closes the connection

	// mu orders the transcript of this connection: data and eof lines
	// are written under it after checking closed, the close line when
	// closed is set.
	mu     sync.Mutex
	closed bool
	client *net.TCPConn
	server *net.TCPConn // nil until dialled; never set for a limbo conn
}

// item is one entry of a direction's queue: a chunk, or the peer's EOF.
type item struct {
	at   time.Time // when it was read
	data []byte
	act  Action
	eof  bool
}

// endKind is why the proxy closes a connection.
type endKind int

const (
	endCut       endKind = iota // Cut or Filter: FIN, counted
	endReset                    // Reset: RST, counted
	endPeer                     // EOF from a peer, or end of a blackhole: FIN
	endPeerReset                // read or write error: RST
	endClose                    // proxy shutting down: close at once
)

func (k endKind) rst() bool { return k == endReset || k == endPeerReset }

// admit registers a new client connection and starts serving it.
func (p *Proxy) admit(c *net.TCPConn) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = c.Close()
		return
	}
	p.nextID++
	pc := &pconn{id: p.nextID, done: make(chan struct{}), client: c}
	p.stats.Accepted++
	close(p.acceptCh)
	p.acceptCh = make(chan struct{})
	p.conns[pc.id] = pc
	p.live++
	limbo := p.bhDone != nil
	if limbo {
		p.limbo = append(p.limbo, pc)
	}
	p.rec.open(pc.id)
	p.spawn(func() { p.serve(pc, limbo) })
	p.mu.Unlock()
	p.cfg.Logger.Debug("faultnet: accepted", "conn", pc.id, "remote", c.RemoteAddr().String(), "blackholed", limbo)
}

// serve dials the target for pc and forwards both directions until pc is
// closed and its sockets are, on goroutines it owns. A limbo connection is
// only read and its bytes dropped.
func (p *Proxy) serve(pc *pconn, limbo bool) {
	defer p.forget(pc)
	if limbo {
		p.read(pc, C2S, pc.client, nil)
		return
	}
	var d net.Dialer
	if p.cfg.Source != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(p.cfg.Source)}
	}
	sc, err := d.DialContext(p.ctx, "tcp", p.cfg.Target)
	if err != nil {
		if p.ctx.Err() == nil {
			p.cfg.Logger.Warn("faultnet: dial target failed; resetting client", "conn", pc.id, "target", p.cfg.Target, "err", err)
		}
		p.closeConn(pc, endPeerReset)
		_ = pc.client.Close()
		return
	}
	server := sc.(*net.TCPConn)
	pc.mu.Lock()
	if pc.closed {
		pc.mu.Unlock()
		_ = server.Close()
		_ = pc.client.Close()
		return
	}
	pc.server = server
	pc.mu.Unlock()

	c2s := make(chan item, queueLen)
	s2c := make(chan item, queueLen)
	var wg sync.WaitGroup
	wg.Go(func() { p.write(pc, C2S, server, c2s) })
	wg.Go(func() { p.write(pc, S2C, pc.client, s2c) })
	wg.Go(func() { p.read(pc, S2C, server, s2c) })
	p.read(pc, C2S, pc.client, c2s)
	wg.Wait()
}

// read reads src into q until src fails, then closes src. A nil q drops
// every chunk.
func (p *Proxy) read(pc *pconn, dir Dir, src *net.TCPConn, q chan<- item) {
	defer src.Close()
	buf := make([]byte, readBufSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.chunk(pc, dir, buf[:n], q)
		}
		if err != nil {
			p.readEnd(pc, dir, err, q)
			return
		}
	}
}

// chunk decides the fate of one chunk read from dir's source.
func (p *Proxy) chunk(pc *pconn, dir Dir, data []byte, q chan<- item) {
	if bh, _ := p.blackholed(); bh || q == nil {
		p.drop(pc, dir, data)
		return
	}
	act := Forward
	if p.cfg.Filter != nil {
		act = p.cfg.Filter(dir, pc.id, data)
	}
	if act == Drop {
		p.drop(pc, dir, data)
		return
	}
	it := item{at: time.Now(), data: append([]byte(nil), data...), act: act}
	select {
	case q <- it:
	case <-pc.done:
	}
}

// drop records data as dropped, unless pc is closed.
func (p *Proxy) drop(pc *pconn, dir Dir, data []byte) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.closed {
		return
	}
	p.rec.data(pc.id, dir, true, data)
	p.dropped.Add(int64(len(data)))
}

// readEnd handles the end of dir's source: nothing if the proxy closed it,
// else the peer's EOF or error is passed on once any blackhole is over.
func (p *Proxy) readEnd(pc *pconn, dir Dir, err error, q chan<- item) {
	eof := errors.Is(err, io.EOF)
	pc.mu.Lock()
	closed := pc.closed
	if !closed && eof {
		p.rec.eof(pc.id, dir)
	}
	pc.mu.Unlock()
	if closed {
		return
	}
	if bh, end := p.blackholed(); bh {
		select {
		case <-end:
		case <-pc.done:
			return
		}
	}
	if !eof {
		p.cfg.Logger.Debug("faultnet: read failed; resetting", "conn", pc.id, "dir", dir, "err", err)
		p.closeConn(pc, endPeerReset)
		return
	}
	p.cfg.Logger.Debug("faultnet: eof", "conn", pc.id, "dir", dir)
	if q == nil {
		p.closeConn(pc, endPeer)
		return
	}
	// The writer forwards what came before the EOF, then closes pc.
	select {
	case q <- item{eof: true}:
	case <-pc.done:
		return
	}
	<-pc.done
}

// write writes the chunks of q to dst, after the configured delay, until
// pc is closed.
func (p *Proxy) write(pc *pconn, dir Dir, dst *net.TCPConn, q <-chan item) {
	timer := stoppedTimer()
	defer timer.Stop()
	for {
		var it item
		select {
		case it = <-q:
		case <-pc.done:
			return
		}
		if wait := time.Until(it.at.Add(time.Duration(p.delay.Load()))); wait > 0 && !it.eof {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-pc.done:
				return
			}
		}
		if it.eof {
			p.closeConn(pc, endPeer)
			return
		}
		if !p.deliver(pc, dir, dst, it) {
			return
		}
	}
}

// deliver forwards or drops one chunk; it reports whether pc is still open.
func (p *Proxy) deliver(pc *pconn, dir Dir, dst *net.TCPConn, it item) bool {
	bh, _ := p.blackholed()
	drop := bh || it.act == CutBefore
	pc.mu.Lock()
	if pc.closed {
		pc.mu.Unlock()
		return false
	}
	p.rec.data(pc.id, dir, drop, it.data)
	pc.mu.Unlock()
	if drop {
		p.dropped.Add(int64(len(it.data)))
	} else if err := p.send(dir, dst, it.data); err != nil {
		p.cfg.Logger.Debug("faultnet: write failed; resetting", "conn", pc.id, "dir", dir, "err", err)
		p.closeConn(pc, endPeerReset)
		return false
	}
	if it.act == CutBefore || it.act == CutAfter {
		p.cfg.Logger.Info("faultnet: filter cut", "conn", pc.id, "dir", dir, "action", it.act)
		p.closeConn(pc, endCut)
		return false
	}
	return true
}

// send writes data to dst, one byte per Write when trickling.
func (p *Proxy) send(dir Dir, dst *net.TCPConn, data []byte) error {
	step := len(data)
	if p.trickle.Load() {
		step = 1
	}
	for len(data) > 0 {
		n, err := dst.Write(data[:step])
		p.bytes[dir].Add(int64(n))
		if p.cfg.onWrite != nil && n > 0 {
			p.cfg.onWrite(dir, n)
		}
		if err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// closeConn closes both sides of pc as kind says; only the first call acts.
// After a FIN the sockets stay open for reading until the peers' FIN (or
// drainTimeout), so that unread bytes do not turn the FIN into a RST.
func (p *Proxy) closeConn(pc *pconn, kind endKind) {
	pc.mu.Lock()
	if pc.closed {
		pc.mu.Unlock()
		return
	}
	pc.closed = true
	p.rec.close(pc.id, kind.rst())
	socks := []*net.TCPConn{pc.client, pc.server}
	pc.mu.Unlock()
	close(pc.done)

	p.mu.Lock()
	p.live--
	switch kind {
	case endCut:
		p.stats.Cuts++
	case endReset:
		p.stats.Resets++
	}
	p.mu.Unlock()

	now := time.Now()
	for _, c := range socks {
		if c == nil {
			continue
		}
		switch {
		case kind.rst():
			_ = c.SetLinger(0)
			_ = c.Close()
		case kind == endClose:
			_ = c.Close()
		default:
			_ = c.CloseWrite()
			_ = c.SetWriteDeadline(now)
			_ = c.SetReadDeadline(now.Add(drainTimeout))
		}
	}
}

// forget removes pc, whose goroutines are done, from the proxy.
func (p *Proxy) forget(pc *pconn) {
	p.mu.Lock()
	delete(p.conns, pc.id)
	p.mu.Unlock()
}

// closeSockets closes pc's sockets at once, even while they drain after a
// FIN, so that their readers return.
func (pc *pconn) closeSockets() {
	pc.mu.Lock()
	socks := []*net.TCPConn{pc.client, pc.server}
	pc.mu.Unlock()
	for _, c := range socks {
		if c != nil {
			_ = c.Close()
		}
	}
}
