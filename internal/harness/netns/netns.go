// Package netns makes Linux network namespaces joined by a veth pair, so
// that tests can put a server and its nodes on separate hosts of their
// own making and cut the link between them the way WiFi fails: the
// interface goes down and no FIN or RST ever arrives.
//
// It needs root and the ip command (iproute2). Check reports what is
// missing. Sockets are made inside a namespace from a goroutine locked to
// an OS thread that has joined it (Listen, Dialer); the process itself
// stays in its own namespace.
package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"
)

// Check reports why namespaces cannot be made here, or nil if they can:
// not root, or no ip command.
func Check() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root (run the tests as root, as CI does)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("the ip command is missing: install iproute2 (apt-get install iproute2)")
	}
	return nil
}

// Pair is two network namespaces joined by a veth pair, with an address
// on each end.
type Pair struct {
	NS    [2]string     // namespace names
	Veth  [2]string     // interface names, Veth[i] in NS[i]
	Addr  [2]netip.Addr // Addr[i] on Veth[i]
	alive bool
}

// NewPair creates namespaces prefix+"-a" and prefix+"-b" (deleting any
// left over by an earlier run of the same name), joined by a veth pair
// with addresses 10.<x>.<y>.1 and .2/24 taken from subnet (a /24 such as
// 10.231.7.0). Close deletes them. Names must be short: the interfaces
// are named after them, and Linux allows 15 bytes.
func NewPair(ctx context.Context, prefix string, subnet netip.Addr) (p *Pair, err error) {
	if err := Check(); err != nil {
		return nil, err
	}
	b := subnet.As4()
	p = &Pair{
		NS:   [2]string{prefix + "-a", prefix + "-b"},
		Addr: [2]netip.Addr{netip.AddrFrom4([4]byte{b[0], b[1], b[2], 1}), netip.AddrFrom4([4]byte{b[0], b[1], b[2], 2})},
	}
	p.Veth = [2]string{"v" + shortName(prefix) + "a", "v" + shortName(prefix) + "b"}
	for _, ns := range p.NS {
		ip(ctx, "netns", "del", ns) // left over by a crashed run; usually fails
	}
	p.alive = true
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	steps := [][]string{
		{"netns", "add", p.NS[0]},
		{"netns", "add", p.NS[1]},
		{"link", "add", p.Veth[0], "netns", p.NS[0], "type", "veth", "peer", "name", p.Veth[1], "netns", p.NS[1]},
	}
	for i := range 2 {
		steps = append(steps,
			[]string{"-n", p.NS[i], "addr", "add", p.Addr[i].String() + "/24", "dev", p.Veth[i]},
			[]string{"-n", p.NS[i], "link", "set", "lo", "up"},
			[]string{"-n", p.NS[i], "link", "set", p.Veth[i], "up"},
		)
	}
	for _, args := range steps {
		if err := ip(ctx, args...); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// shortName keeps the last 10 bytes of s, so that "v"+name+"a" fits in
// an interface name.
func shortName(s string) string {
	if len(s) > 10 {
		return s[len(s)-10:]
	}
	return s
}

// SetLink takes side i's end of the veth pair down (up false) or up again.
// Down, nothing passes either way and neither end is told: established
// connections see silence, new ones find no route.
func (p *Pair) SetLink(ctx context.Context, i int, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	return ip(ctx, "-n", p.NS[i], "link", "set", p.Veth[i], state)
}

// Drop makes side i drop every packet it sends to the other side (on
// true), or stops that (on false), with a blackhole route: the other
// direction still passes, so that side i still receives data and the TCP
// acknowledgements of what it sends, while the other side gets neither
// its data nor its acknowledgements. No end is told.
func (p *Pair) Drop(ctx context.Context, i int, on bool) error {
	op := "del"
	if on {
		op = "add"
	}
	return ip(ctx, "-n", p.NS[i], "route", op, "blackhole", p.Addr[1-i].String()+"/32")
}

// Close deletes both namespaces, and with them the veth pair. It is
// idempotent.
func (p *Pair) Close() error {
	if !p.alive {
		return nil
	}
	p.alive = false
	var errs []error
	for _, ns := range p.NS {
		if err := ip(context.Background(), "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Listen listens on addr inside namespace i.
func (p *Pair) Listen(ctx context.Context, i int, addr string) (net.Listener, error) {
	var ln net.Listener
	err := Do(p.NS[i], func() error {
		var lc net.ListenConfig
		var err error
		ln, err = lc.Listen(ctx, "tcp", addr)
		return err
	})
	return ln, err
}

// Dialer returns a dial function whose connections start in namespace i,
// shaped like net.Dialer.DialContext.
func (p *Pair) Dialer(i int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	ns := p.NS[i]
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := Do(ns, func() error {
			var d net.Dialer
			var err error
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// Do runs fn on an OS thread that has joined the named namespace, and
// waits for it. Sockets fn makes belong to that namespace for life.
func Do(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread goes back to its namespace afterwards; if that
		// fails it stays locked, and the runtime discards it when this
		// goroutine ends.
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer self.Close()
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns %s: %w", ns, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns %s: setns: %w", ns, err)
			return
		}
		err = fn()
		if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// ip runs the ip command, returning its stderr in the error.
func ip(ctx context.Context, args ...string) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %v: %w: %s", args, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}
