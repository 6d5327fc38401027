package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/harness/faultnet"
	"github.com/tether-iot/tether/internal/harness/pkitest"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// T is the link timeout of every test: short, so that outages are quick.
const T = 250 * time.Millisecond

// failsafe bounds each test; reaching it is a failure (something hung).
const failsafe = 60 * time.Second

// node is one client node, its proxies and both ends of its link.
type node struct {
	idx     int
	id      string
	proxies []*faultnet.Proxy // proxies[0] is the one the node dials
	cl      *client.Client
	sl      *link.Link // the server's end
	watch   *linkWatch
	refused atomic.Int64 // connects refused
}

// front is the proxy the node dials: faults are injected there.
func (n *node) front() *faultnet.Proxy { return n.proxies[0] }

// dial is the node's Config.Dial: a plain TCP dial bounded by T that counts
// refused connects.
func (n *node) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: T}
	conn, err := d.DialContext(ctx, network, addr)
	if errors.Is(err, syscall.ECONNREFUSED) {
		n.refused.Add(1)
	}
	return conn, err
}

// dialFunc returns the node's Config.Dial: dial, its connections opaque
// unless tcpEvidence.
func (n *node) dialFunc(tcpEvidence bool) func(context.Context, string, string) (net.Conn, error) {
	if tcpEvidence {
		return n.dial
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := n.dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return opaqueConn{conn.(*net.TCPConn)}, nil
	}
}

// opaqueConn is a TCP connection whose type hides that it is one, so that
// a link takes no TCP evidence from it (see newCluster); it still has
// SyscallConn, so the link's writes take the same path as on a bare socket.
type opaqueConn struct{ *net.TCPConn }

// opaqueListener accepts opaque connections.
type opaqueListener struct{ net.Listener }

func (l opaqueListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return opaqueConn{c.(*net.TCPConn)}, nil
}

// clusterOpts are newCluster's options.
type clusterOpts struct {
	pki         *pkitest.PKI // TLS with the nodes' certificates
	tcpEvidence bool         // the links see their TCP sockets
}

// chainFunc starts the proxies of node n in front of target; the node dials
// the first one.
type chainFunc func(n *node, target string) ([]*faultnet.Proxy, error)

// oneProxy is the usual chain: a single proxy.
func oneProxy(n *node, target string) ([]*faultnet.Proxy, error) {
	p, err := faultnet.Start(context.Background(), faultnet.Config{Target: target})
	if err != nil {
		return nil, err
	}
	return []*faultnet.Proxy{p}, nil
}

// cluster is a server on loopback and its nodes, each behind its proxies,
// with a checker fed by one reader per node and direction.
type cluster struct {
	t     *testing.T
	srv   *server.Server
	addr  string // the server's listener
	nodes []*node
	byID  map[string]*node
	chk   *checker

	serving sync.WaitGroup // Serve
	readers sync.WaitGroup
	writers sync.WaitGroup
	once    sync.Once
}

// newCluster starts a server and nodes nodes, each dialing through the
// proxies chain makes and waiting reconnect (client.Config.ReconnectDelay)
// after an outage. Everything is closed at the end of the test.
//
// With o.pki, the nodes connect over TLS, each with its own certificate,
// and the server requires it of every ID.
//
// Unless o.tcpEvidence, neither end of a link sees the TCP socket under its
// connection (see opaqueConn), so the links decide a repeated 00 by the
// greeting and the horizon only. faultnet terminates TCP: its kernel
// acknowledges what the proxy reads, and a cut, a reset or a blackhole
// discards bytes it read, so the TCP evidence of either end would be about
// the proxy, not the peer, and may take a repeat for a restart (the
// limitation docs/GATEWAY.md states for such proxies). The evidence is
// tested on real paths, in test/netns.
func newCluster(ctx context.Context, t *testing.T, nodes int, reconnect time.Duration, chain chainFunc, o clusterOpts) *cluster {
	t.Helper()
	c := &cluster{t: t, byID: make(map[string]*node), chk: newChecker()}
	var ids []string
	for i := range nodes {
		n := &node{idx: i, id: fmt.Sprintf("node-%d", i), watch: newLinkWatch()}
		c.nodes = append(c.nodes, n)
		c.byID[n.id] = n
		ids = append(ids, n.id)
	}
	scfg := server.Config{
		Timeout:    T,
		Expected:   ids,
		Strict:     true,
		WritePause: T / 5,
		Logger:     testutil.Logger(),
		OnEvent: func(ev link.Event) {
			if n := c.byID[ev.ID]; n != nil {
				n.watch.event(srvEnd, ev)
			}
		},
	}
	if o.pki != nil {
		scfg.TLS = o.pki.Server
		scfg.Access.TLSRequired = true
		scfg.Access.RevokedSerials = o.pki.RevokedSerials
	}
	srv, err := server.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	c.srv = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.addr = ln.Addr().String()
	if !o.tcpEvidence {
		ln = opaqueListener{ln}
	}
	c.serving.Go(func() { _ = srv.Serve(ln) })
	t.Cleanup(c.close)

	for _, n := range c.nodes {
		if n.proxies, err = chain(n, ln.Addr().String()); err != nil {
			t.Fatalf("%s: proxies: %v", n.id, err)
		}
		var tc *tls.Config
		if o.pki != nil {
			tc, _ = o.pki.Node(n.id)
		}
		n.cl, err = client.Dial(ctx, client.Config{
			TLS:            tc,
			ID:             n.id,
			Server:         n.front().Addr(),
			Timeout:        T,
			ReconnectDelay: reconnect,
			// A fixed wait: these tests are about delivery, not backoff.
			MaxReconnectDelay: reconnect,
			Dial:              n.dialFunc(o.tcpEvidence),
			Logger:            testutil.Logger(),
			OnEvent:           func(ev link.Event) { n.watch.event(cliEnd, ev) },
		})
		if err != nil {
			t.Fatalf("%s: dial: %v", n.id, err)
		}
		if n.sl, err = srv.Node(ctx, n.id); err != nil {
			t.Fatalf("%s: %v", n.id, err)
		}
	}
	c.startReaders()
	return c
}

// close closes the clients, the server and the proxies, in that order, and
// waits for the readers, which end once their links are closed and read
// dry. It may be called more than once.
func (c *cluster) close() {
	c.once.Do(func() {
		for _, n := range c.nodes {
			if n.cl != nil {
				n.cl.Close()
			}
		}
		c.srv.Close()
		c.serving.Wait()
		for _, n := range c.nodes {
			for _, p := range n.proxies {
				if err := p.Close(); err != nil {
					c.t.Errorf("%s: close proxy: %v", n.id, err)
				}
			}
		}
		c.readers.Wait()
	})
}

// startReaders starts a reader on each end of each link; every line read
// goes to the checker.
func (c *cluster) startReaders() {
	for _, n := range c.nodes {
		ends := []struct {
			l interface {
				ReadLine(context.Context) (string, error)
			}
			dir byte
		}{{n.sl, up}, {n.cl, down}}
		for _, e := range ends {
			c.readers.Go(func() {
				for {
					p, err := e.l.ReadLine(context.Background())
					if err != nil {
						if !errors.Is(err, link.ErrClosed) {
							c.t.Errorf("%s %c: ReadLine: %v", n.id, e.dir, err)
						}
						return
					}
					c.chk.received(n.idx, e.dir, p)
				}
			})
		}
	}
}

// startWriters starts writers goroutines per node and direction, each
// writing its own numbered messages with opts until stop is closed. A
// Write that fails is recorded, and ends its writer.
func (c *cluster) startWriters(ctx context.Context, stop <-chan struct{}, writers int, opts ...link.WriteOption) {
	for _, n := range c.nodes {
		ends := []struct {
			l interface {
				Write(context.Context, string, ...link.WriteOption) error
			}
			dir byte
		}{{n.cl, up}, {n.sl, down}}
		for _, e := range ends {
			for w := range writers {
				k := streamKey{n.idx, e.dir, w}
				c.writers.Go(func() {
					for seq := 0; ; seq++ {
						select {
						case <-stop:
							return
						default:
						}
						if err := e.l.Write(ctx, payload(k.node, k.dir, k.writer, seq), opts...); err != nil {
							c.chk.writeFailed(k, seq, err)
							return
						}
						c.chk.wrote(k, seq)
					}
				})
			}
		}
	}
}

// finish stops the writers, waits until all they wrote has arrived, closes
// everything, and fails the test for every message lost, duplicated,
// reordered or corrupted, every Write error, and any bad line or peer
// restart seen by a link.
func (c *cluster) finish(ctx context.Context, stop chan struct{}) {
	t := c.t
	close(stop)
	c.writers.Wait()
	if err := c.chk.waitComplete(ctx); err != nil {
		t.Error(err)
	}
	c.close()
	for _, e := range c.chk.verify() {
		t.Error(e)
	}
	var ambiguous uint64
	for _, n := range c.nodes {
		for _, l := range []interface{ Stats() link.Stats }{n.sl, n.cl} {
			ambiguous += l.Stats().AmbiguousRepeats
		}
	}
	if ambiguous > 0 {
		t.Logf("%d repeated 00s taken for repeats by the horizon (no greeting said, no TCP evidence)", ambiguous)
	}
	for _, n := range c.nodes {
		s, _ := n.watch.state()
		if s.restarts > 0 {
			t.Errorf("%s: %d PeerRestart events, but no peer restarted", n.id, s.restarts)
		}
		for _, l := range []interface{ Stats() link.Stats }{n.sl, n.cl} {
			st := l.Stats()
			if st.TooLong+st.Malformed+st.NotUTF8 > 0 {
				t.Errorf("%s: a link end received bad lines: %d too long, %d malformed, %d not UTF-8",
					n.id, st.TooLong, st.Malformed, st.NotUTF8)
			}
		}
	}
}

// linkTotals sums the link counters of every node: repeats sent and
// duplicates received (and dropped), both ends together.
func (c *cluster) linkTotals() (repeats, dups uint64) {
	for _, n := range c.nodes {
		for _, l := range []interface{ Stats() link.Stats }{n.sl, n.cl} {
			st := l.Stats()
			repeats += st.Repeats
			dups += st.Duplicates
		}
	}
	return repeats, dups
}

// downs returns the Down events seen so far, by end, over all nodes.
func (c *cluster) downs() (downs [2]int) {
	for _, n := range c.nodes {
		s, _ := n.watch.state()
		downs[srvEnd] += s.downs[srvEnd]
		downs[cliEnd] += s.downs[cliEnd]
	}
	return downs
}
