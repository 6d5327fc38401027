package server

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/tether-iot/tether/link"
)

// Where each node ID connects from: one record per ID of the source
// addresses of its connections, which classifies every new connection
// (Sighting) for the server's own warnings (a node that moved, two
// devices on one ID), for access control (Config.OnSighting) and for the
// link, which protects the node's sequences when the peer may be another
// device (link.Peer).

// AddrChange classifies a node's connection by its source address,
// against the addresses its ID connected from before.
type AddrChange uint8

const (
	// AddrFirst: the ID's first connection since the server started.
	AddrFirst AddrChange = iota
	// AddrSame: from the address of the ID's last live socket.
	AddrSame
	// AddrMoved: from another address, one the ID did not use within
	// Config.AddrMemory: a DHCP renewal, a reboot onto another network,
	// or another device.
	AddrMoved
	// AddrBack: from an address the ID used before its last change,
	// within Config.AddrMemory: the ID alternates between addresses. Two
	// devices taking turns on one ID do that; one node does it only if
	// its network flips between two addresses.
	AddrBack
	// AddrConcurrent: from another address while the ID's link is up
	// with the first: two devices at once. The new connection is refused
	// (a duplicate ID).
	AddrConcurrent
)

// String returns "first", "same", "moved", "back" or "concurrent".
func (k AddrChange) String() string {
	switch k {
	case AddrFirst:
		return "first"
	case AddrSame:
		return "same"
	case AddrMoved:
		return "moved"
	case AddrBack:
		return "back"
	case AddrConcurrent:
		return "concurrent"
	}
	return fmt.Sprintf("AddrChange(%d)", uint8(k))
}

// Sighting is one connection of a node ID, classified by its source
// address.
type Sighting struct {
	ID   string
	Time time.Time
	Kind AddrChange
	// Addr is this connection's source address; Previous is that of the
	// ID's last live socket (invalid on AddrFirst; for AddrConcurrent,
	// the live one's).
	Addr, Previous netip.Addr
}

// Addresses is what the server knows of the source addresses of a node
// ID since it started.
type Addresses struct {
	Last   netip.Addr   // the address of the ID's last live socket
	Recent []netip.Addr // the addresses it used within AddrMemory, newest first (at most 4)
	// Counts of its connections by kind.
	Moves, Returns, Concurrent uint64
	// LastChange is when it last connected from a new address (AddrMoved,
	// AddrBack or AddrConcurrent); zero if never.
	LastChange time.Time
	// Alternating: within AddrMemory, the ID came back to an address it
	// had left (AddrBack) or was claimed from two at once: two devices
	// may share it.
	Alternating bool
}

// maxRecent bounds the addresses kept per ID.
const maxRecent = 4

type seen struct {
	addr netip.Addr
	at   time.Time // when it was last the ID's address
}

type idRecord struct {
	last                       netip.Addr
	recent                     []seen // newest first; recent[0].addr == last
	moves, returns, concurrent uint64
	lastChange, alternated     time.Time
}

// identity is the server's record of the addresses of each node ID.
type identity struct {
	memory time.Duration
	mu     sync.Mutex
	ids    map[string]*idRecord
}

func newIdentity(memory time.Duration) *identity {
	return &identity{memory: memory, ids: make(map[string]*idRecord)}
}

// observe classifies a connection of id from addr at now; live reports
// whether the ID's link is up with another socket (the connection will be
// refused as a duplicate). A connection that becomes live updates the
// record.
func (d *identity) observe(id string, addr netip.Addr, live bool, now time.Time) Sighting {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.ids[id]
	if r == nil {
		r = &idRecord{}
		d.ids[id] = r
	}
	sg := Sighting{ID: id, Time: now, Addr: addr, Previous: r.last}
	if r.last.IsValid() && addr != r.last && !live {
		r.recent[0].at = now // the last address was the ID's until now
	}
	switch {
	case !r.last.IsValid():
		sg.Kind = AddrFirst
	case addr == r.last:
		sg.Kind = AddrSame
	case live:
		sg.Kind = AddrConcurrent
		r.concurrent++
		r.lastChange, r.alternated = now, now
		return sg // not live: the record keeps the live socket's address
	case d.knows(r, addr, now):
		sg.Kind = AddrBack
		r.returns++
		r.lastChange, r.alternated = now, now
	default:
		sg.Kind = AddrMoved
		r.moves++
		r.lastChange = now
	}
	r.last = addr
	r.recent = slices.DeleteFunc(r.recent, func(s seen) bool { return s.addr == addr })
	r.recent = slices.Insert(r.recent, 0, seen{addr: addr, at: now})
	if len(r.recent) > maxRecent {
		r.recent = r.recent[:maxRecent]
	}
	return sg
}

// busy corrects the record of a sighting whose connection was refused as
// a duplicate after all (the ID's link came up meanwhile): it was
// concurrent, and the live socket's address stays the ID's.
func (d *identity) busy(sg Sighting) Sighting {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.ids[sg.ID]
	if r == nil || sg.Kind == AddrConcurrent || sg.Kind == AddrSame {
		return sg
	}
	switch sg.Kind {
	case AddrMoved:
		r.moves--
	case AddrBack:
		r.returns--
	}
	r.recent = slices.DeleteFunc(r.recent, func(s seen) bool { return s.addr == sg.Addr })
	if sg.Previous.IsValid() {
		r.recent = slices.DeleteFunc(r.recent, func(s seen) bool { return s.addr == sg.Previous })
		r.recent = slices.Insert(r.recent, 0, seen{addr: sg.Previous, at: sg.Time})
	}
	r.last = sg.Previous
	if !r.last.IsValid() {
		delete(d.ids, sg.ID)
		return sg
	}
	r.concurrent++
	r.lastChange, r.alternated = sg.Time, sg.Time
	sg.Kind = AddrConcurrent
	return sg
}

// forget drops the record of id.
func (d *identity) forget(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.ids, id)
}

// knows reports whether r used addr, before its current one, within the
// memory.
func (d *identity) knows(r *idRecord, addr netip.Addr, now time.Time) bool {
	for _, s := range r.recent[1:] {
		if s.addr == addr && now.Sub(s.at) <= d.memory {
			return true
		}
	}
	return false
}

// addresses returns what d knows of id.
func (d *identity) addresses(id string, now time.Time) (Addresses, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.ids[id]
	if r == nil {
		return Addresses{}, false
	}
	a := Addresses{Last: r.last, Moves: r.moves, Returns: r.returns, Concurrent: r.concurrent, LastChange: r.lastChange}
	for i, s := range r.recent {
		if i == 0 || now.Sub(s.at) <= d.memory {
			a.Recent = append(a.Recent, s.addr)
		}
	}
	a.Alternating = !r.alternated.IsZero() && now.Sub(r.alternated) <= d.memory
	return a, true
}

// Addresses returns what the server knows of the source addresses of
// node id since it started; false if the ID never connected.
func (s *Server) Addresses(id string) (Addresses, bool) {
	return s.ident.addresses(id, time.Now())
}

// sighted logs, counts and reports a classified connection. l, if not
// nil, is the ID's link, which carries the event.
func (s *Server) sighted(sg Sighting, l *link.Link) {
	var msg string
	switch sg.Kind {
	case AddrMoved:
		msg = "node ID connected from another address than its last connection (a DHCP renewal, a reboot on another network, or another device)"
		s.count(&s.stats.AddrMoved, msg, "node", sg.ID, "from", sg.Previous.String(), "to", sg.Addr.String())
	case AddrBack:
		msg = "node ID is back at an address it had left: two devices may share it"
		s.count(&s.stats.AddrBack, msg, "node", sg.ID, "from", sg.Previous.String(), "to", sg.Addr.String())
	case AddrConcurrent:
		msg = "node ID claimed from two addresses at once: two devices share it (the new connection is closed)"
		s.count(&s.stats.AddrConcurrent, msg, "node", sg.ID, "live", sg.Previous.String(), "new", sg.Addr.String())
	}
	if s.cfg.OnSighting != nil {
		s.cfg.OnSighting(sg)
	}
	if msg != "" && s.cfg.OnEvent != nil {
		ev := link.Event{Kind: link.AddrChanged, ID: sg.ID, Time: sg.Time, Remote: sg.Addr.String(),
			Detail: fmt.Sprintf("%s from %s", sg.Kind, sg.Previous)}
		if l != nil {
			ev.Connects = l.Connects()
		}
		s.cfg.OnEvent(ev)
	}
}
