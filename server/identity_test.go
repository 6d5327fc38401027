package server

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// The classification of a node's connections by source address: the
// first, the same again, a move, a return within the memory (two devices
// taking turns), a return after it (a move), a concurrent claim (which
// leaves the live socket's address the ID's), and the correction of a
// connection refused as a duplicate after all.
func TestIdentityObserve(t *testing.T) {
	a, b, c := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := newIdentity(time.Hour)
	steps := []struct {
		at   time.Duration
		addr netip.Addr
		live bool
		want AddrChange
		prev netip.Addr
	}{
		{0, a, false, AddrFirst, netip.Addr{}},
		{time.Minute, a, false, AddrSame, a},
		{2 * time.Minute, b, false, AddrMoved, a},          // DHCP, or another device
		{3 * time.Minute, a, false, AddrBack, b},           // a again: alternating
		{4 * time.Minute, b, true, AddrConcurrent, a},      // b while a's link is up
		{5 * time.Minute, a, false, AddrSame, a},           // the live one stayed a
		{6 * time.Minute, c, false, AddrMoved, a},          // a new network
		{3 * time.Hour, a, false, AddrMoved, c},            // a, left over an hour ago: a move
		{3*time.Hour + time.Second, c, false, AddrBack, a}, // c, left a second ago
	}
	for i, st := range steps {
		sg := d.observe("n", st.addr, st.live, t0.Add(st.at))
		if sg.Kind != st.want || sg.Previous != st.prev || sg.Addr != st.addr || sg.ID != "n" {
			t.Fatalf("step %d: %+v, want %v from %v", i, sg, st.want, st.prev)
		}
	}
	got, ok := d.addresses("n", t0.Add(3*time.Hour+time.Minute))
	if !ok || got.Last != c || got.Moves != 3 || got.Returns != 2 || got.Concurrent != 1 || !got.Alternating {
		t.Fatalf("addresses %+v", got)
	}
	if want := []netip.Addr{c, a}; !slices.Equal(got.Recent, want) {
		t.Errorf("recent %v, want %v (b was left more than an hour ago)", got.Recent, want)
	}
	later, _ := d.addresses("n", t0.Add(5*time.Hour))
	if later.Alternating {
		t.Error("still alternating an hour after the last return")
	}

	// A connection classified as a move, then refused as a duplicate: the
	// live one stays the ID's address, and it counts as concurrent.
	sg := d.observe("n", b, false, t0.Add(6*time.Hour))
	if sg.Kind != AddrMoved {
		t.Fatalf("%+v", sg)
	}
	if sg = d.busy(sg); sg.Kind != AddrConcurrent {
		t.Fatalf("busy: %+v", sg)
	}
	got, _ = d.addresses("n", t0.Add(6*time.Hour))
	if got.Last != c || got.Moves != 3 || got.Concurrent != 2 || got.Recent[0] != c {
		t.Fatalf("after busy: %+v", got)
	}
	d.forget("n")
	if _, ok := d.addresses("n", t0); ok {
		t.Error("forgotten ID still known")
	}
}
