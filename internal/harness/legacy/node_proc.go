package legacy

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/tether-iot/tether/internal/notify"
)

// lineQueueSize is the legacy node's Queue(20) of undelivered lines.
const lineQueueSize = 20

// proc is the state of one node process (module globals and the Client
// instance); Node.Restart replaces it.
type proc struct {
	n      *Node
	ctx    context.Context // ends when the process ends; its cause says why
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup // the run goroutine
	slock  ctxLock        // _s_lock, held for every socket write

	mu       sync.Mutex
	sig      signal
	up       bool // _evok
	sess     *session
	acks     setByte // _acks_pend
	win      window  // isnew's default list
	mids     midGen  // getmid
	lineq    []string
	connects int
	lastWr   time.Time
}

func newProc(n *Node) *proc {
	p := &proc{n: n, sig: newSignal(), slock: newCtxLock(), lastWr: time.Now()}
	p.ctx, p.cancel = context.WithCancelCause(n.ctx)
	return p
}

func (p *proc) start() {
	p.wg.Add(1)
	go p.run()
}

// run is Client._run: connect, send the ID, wait for an outage, pause, and
// again.
func (p *proc) run() {
	defer p.wg.Done()
	tm := p.n.tm
	if !notify.Sleep(p.ctx, p.n.startDelay) {
		return
	}
	for init := true; ; init = false {
		if err := p.connectOnce(init); err != nil {
			p.n.log.Debug("node process stopped", "err", err)
			p.cancel(err)
			return
		}
		if !notify.Sleep(p.ctx, tm.outagePause+p.n.wifiDelay) {
			return
		}
	}
}

// connectOnce runs one connection from dial to outage. A non-nil error
// ends the process.
func (p *proc) connectOnce(init bool) error {
	conn, err := p.n.cfg.Dial(p.ctx, p.n.cfg.Addr)
	if err != nil {
		if p.ctx.Err() != nil {
			return context.Cause(p.ctx)
		}
		p.n.log.Debug("connect failed", "err", err)
		if init && isRefused(err) {
			return p.badServer()
		}
		return nil
	}
	s := newSession(p.ctx, conn)
	p.mu.Lock()
	p.sess = s
	p.mu.Unlock()
	s.wg.Add(1)
	go p.reader(s)
	// Server reads ID immediately, but a brief pause is probably wise.
	if notify.Sleep(s.ctx, p.n.tm.idDelay) {
		if p.send(s.ctx, []byte(p.n.cfg.ID+"\n")) {
			s.wg.Add(1)
			go p.keepalive(s)
			select {
			case <-s.failed:
			case <-s.ctx.Done():
			}
		} else if init && s.ctx.Err() == nil {
			err = p.badServer()
		}
	}
	p.mu.Lock()
	p.up = false
	p.sess = nil
	p.sig.broadcast()
	p.mu.Unlock()
	s.cancel()
	conn.Close()
	s.wg.Wait()
	if err == nil && p.ctx.Err() != nil {
		err = context.Cause(p.ctx)
	}
	return err
}

func (p *proc) badServer() error {
	if p.n.cfg.BadServer == nil {
		return ErrBadServer
	}
	return p.n.cfg.BadServer(p.ctx)
}

func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNABORTED)
}

// fail is _evfail.set(): the session's outage. The status drops at once.
func (p *proc) fail(s *session, reason string) {
	first := false
	s.failOnce.Do(func() { first = true; close(s.failed) })
	p.mu.Lock()
	if p.sess == s && p.up {
		p.up = false
		p.sig.broadcast()
	}
	p.mu.Unlock()
	if first {
		p.n.log.Debug("node outage", "reason", reason)
	}
}

// send is Client._send: one write of d under _s_lock on the current
// socket. A failed or late (over T) write is an outage. It reports whether
// d was written.
func (p *proc) send(ctx context.Context, d []byte) bool {
	if p.slock.lock(ctx, p.ctx) != nil {
		return false
	}
	defer p.slock.unlock()
	p.mu.Lock()
	s := p.sess
	p.mu.Unlock()
	if s == nil {
		return false // the legacy send on a closed socket fails
	}
	s.conn.SetWriteDeadline(time.Now().Add(p.n.tm.t))
	if _, err := s.conn.Write(d); err != nil {
		p.fail(s, "send fail: "+err.Error())
		return false
	}
	p.mu.Lock()
	p.lastWr = time.Now()
	p.mu.Unlock()
	return true
}

// writeLine is Client._write: send once the link is up, again after each
// failure.
func (p *proc) writeLine(ctx context.Context, line []byte) error {
	for {
		p.mu.Lock()
		err := await(ctx, p.ctx, &p.mu, &p.sig, func() bool { return p.up })
		p.mu.Unlock()
		if err != nil {
			return err
		}
		if p.send(ctx, line) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

func (p *proc) write(ctx context.Context, line string, qos, wait bool) error {
	p.mu.Lock()
	if qos && wait { // Disallow concurrent writes
		if err := await(ctx, p.ctx, &p.mu, &p.sig, p.acks.empty); err != nil {
			p.mu.Unlock()
			return err
		}
	}
	mid := p.mids.next()
	p.acks.add(mid)
	p.mu.Unlock()
	buf := []byte(frame(mid, line))
	if err := p.writeLine(ctx, buf); err != nil || !qos {
		return err
	}
	// _do_qos: wait T for the ACK, outage or not, then repeat.
	for {
		acked, err := p.waitAck(ctx, mid)
		if err != nil || acked {
			return err
		}
		p.n.log.Debug("repeat", "line", string(buf))
		if err := p.writeLine(ctx, buf); err != nil {
			return err
		}
	}
}

// waitAck waits for the link, then up to T for the ACK of mid.
func (p *proc) waitAck(ctx context.Context, mid int) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := await(ctx, p.ctx, &p.mu, &p.sig, func() bool { return p.up }); err != nil {
		return false, err
	}
	tctx, cancel := context.WithTimeout(ctx, p.n.tm.t)
	defer cancel()
	err := await(tctx, p.ctx, &p.mu, &p.sig, func() bool { return !p.acks.has(mid) })
	switch {
	case err == nil:
		return true, nil
	case ctx.Err() != nil:
		return false, ctx.Err()
	case p.ctx.Err() != nil:
		return false, err
	}
	return false, nil // not ACKed within T
}

func (p *proc) readLine(ctx context.Context) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := await(ctx, p.ctx, &p.mu, &p.sig, func() bool { return len(p.lineq) > 0 }); err != nil {
		return "", err
	}
	l := p.lineq[0]
	p.lineq = p.lineq[1:]
	p.sig.broadcast() // waitQueued
	return l, nil
}

func (p *proc) queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lineq)
}

func (p *proc) waitQueued(ctx context.Context, max int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return await(ctx, p.ctx, &p.mu, &p.sig, func() bool { return len(p.lineq) <= max })
}

func (p *proc) isUp() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.up
}

func (p *proc) waitStatus(ctx context.Context, up bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return await(ctx, p.ctx, &p.mu, &p.sig, func() bool { return p.up == up })
}

func (p *proc) connectCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.connects
}

func (p *proc) dropConn() {
	p.mu.Lock()
	s := p.sess
	p.mu.Unlock()
	if s != nil {
		s.conn.Close()
	}
}

// session is one TCP connection of a node process.
type session struct {
	conn     net.Conn
	ctx      context.Context // cancelled when the connection is torn down
	cancel   context.CancelFunc
	failOnce sync.Once
	failed   chan struct{} // closed by fail
	wg       sync.WaitGroup
}

func newSession(parent context.Context, conn net.Conn) *session {
	s := &session{conn: conn, failed: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(parent)
	return s
}
