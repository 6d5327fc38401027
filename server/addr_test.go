package server_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/harness/tethertest"
	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// dialFrom is a client Dial that connects from a chosen loopback address.
func dialFrom(ip string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return d.DialContext
}

// A node ID that connects from one address, then another (moved), then
// the first again (back: it alternates), and is claimed from a third while
// its link is up (concurrent): each is a warning, a counter, an
// AddrChanged event naming both addresses and a Sighting; Addresses tells
// what the server knows.
func TestAddressChanges(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const T = time.Second
	var mu sync.Mutex
	var events []link.Event
	var sightings []server.Sighting
	downs := make(chan struct{}, 16)
	srv, addr := tethertest.NewServer(t, server.Config{Timeout: T,
		OnEvent: func(ev link.Event) {
			mu.Lock()
			defer mu.Unlock()
			switch ev.Kind {
			case link.AddrChanged:
				events = append(events, ev)
			case link.Down:
				downs <- struct{}{}
			}
		},
		OnSighting: func(sg server.Sighting) {
			mu.Lock()
			sightings = append(sightings, sg)
			mu.Unlock()
		},
	})
	connect := func(ip string) *client.Client {
		t.Helper()
		return tethertest.DialUp(t, ctx, client.Config{ID: "n", Server: addr, Timeout: T, Dial: dialFrom(ip)})
	}
	for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.2"} {
		c := connect(ip)
		if err := c.Write(ctx, "hello from "+ip); err != nil {
			t.Fatal(err)
		}
		c.Close()
		select {
		case <-downs:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	live := connect("127.0.0.2")
	defer live.Close()
	rc := rawConn(t, "127.0.0.4", addr) // another device, while n is up
	rc.Write([]byte("n\n"))
	waitClosed(t, rc)

	st := srv.Stats()
	if st.AddrMoved != 1 || st.AddrBack != 1 || st.AddrConcurrent != 1 || st.DuplicateID != 1 {
		t.Errorf("stats: moved %d, back %d, concurrent %d, duplicate %d; want 1 each", st.AddrMoved, st.AddrBack, st.AddrConcurrent, st.DuplicateID)
	}
	a, ok := srv.Addresses("n")
	if !ok || a.Last != netip.MustParseAddr("127.0.0.2") || !a.Alternating || a.Moves != 1 || a.Returns != 1 || a.Concurrent != 1 {
		t.Errorf("addresses %+v", a)
	}
	mu.Lock()
	defer mu.Unlock()
	var kinds []string
	for _, sg := range sightings {
		kinds = append(kinds, sg.Kind.String())
	}
	if got := strings.Join(kinds, " "); got != "first moved back same concurrent" {
		t.Errorf("sightings %q", got)
	}
	var details []string
	for _, ev := range events {
		details = append(details, ev.Remote+": "+ev.Detail)
	}
	want := "127.0.0.3: moved from 127.0.0.2|127.0.0.2: back from 127.0.0.3|127.0.0.4: concurrent from 127.0.0.2"
	if got := strings.Join(details, "|"); got != want {
		t.Errorf("events %q\nwant   %q", got, want)
	}
}
