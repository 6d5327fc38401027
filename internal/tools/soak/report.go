package soak

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Direction counts the messages of one direction of a soak, node to
// server or server to node, over all nodes.
type Direction struct {
	Sent       uint64 // messages written, both streams
	Received   uint64 // distinct messages received
	Lost       uint64 // written, acknowledged, never received
	Duplicated uint64 // received more than once
	OutOfOrder uint64 // qos with wait: received after a later one (must be 0)
	Reordered  uint64 // qos without wait: received after a later one (allowed)
	Unexpected uint64 // received but never written, as far as the sender says
}

func (d *Direction) add(v view, sent [2]uint64) {
	d.Sent += sent[0] + sent[1]
	for _, s := range v {
		d.Received += s.Received
		d.Lost += s.Lost
		d.Duplicated += s.Duplicated
		d.Unexpected += s.Unexpected
	}
	d.OutOfOrder += v[0].Late
	d.Reordered += v[1].Late
}

func (d Direction) ok() bool {
	return d.Lost == 0 && d.Duplicated == 0 && d.OutOfOrder == 0 && d.Unexpected == 0
}

// Report is the outcome of a soak.
type Report struct {
	Nodes       int
	Timeout     time.Duration // T
	Elapsed     time.Duration // from Start to Stop, the drain excluded
	Interrupted bool          // ended by its context, not by its limits

	// Outages is how many outages the nodes recovered from: a link
	// going down, then up again.
	Outages int
	// Injected counts the faults injected, by kind; Unnoticed is how
	// many of them no node outage followed (they struck while the node
	// was already reconnecting).
	Injected  map[Fault]uint64
	Unnoticed uint64
	// ServerOutages counts the in-process server's Down events.
	ServerOutages uint64

	// Recover holds the time from each node outage (the link going down)
	// to its recovery (the link up again), sorted.
	Recover []time.Duration

	Up   Direction // node to server
	Down Direction // server to node

	// Stale counts lines of other runs (a previous run's messages still
	// queued on a shared server); Failed lists the nodes whose run did not
	// end cleanly, with why.
	Stale  uint64
	Failed []error
}

// OK reports whether the soak saw no loss, no duplicate, nothing out of
// order where order is due, and every node ended its run cleanly.
func (r *Report) OK() bool {
	return r.Up.ok() && r.Down.ok() && len(r.Failed) == 0
}

// Percentile returns the p-th percentile (0 to 100) of the recovery
// times, or 0 if there were none.
func (r *Report) Percentile(p float64) time.Duration {
	if len(r.Recover) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(r.Recover)-1))
	return r.Recover[min(max(i, 0), len(r.Recover)-1)]
}

// Verdict is the report's one-line summary, starting with PASS or FAIL.
func (r *Report) Verdict() string {
	word := "PASS"
	if !r.OK() {
		word = "FAIL"
	}
	lost := r.Up.Lost + r.Down.Lost
	dup := r.Up.Duplicated + r.Down.Duplicated
	s := fmt.Sprintf("%s: %d lost, %d duplicated, %d out of order, %d outages survived",
		word, lost, dup, r.Up.OutOfOrder+r.Down.OutOfOrder, r.Outages)
	if len(r.Failed) > 0 {
		s += fmt.Sprintf(", %d nodes did not finish", len(r.Failed))
	}
	return s
}

// WriteTo writes the report as text.
func (r *Report) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "soak: %d nodes, T=%v, ran %v", r.Nodes, r.Timeout, r.Elapsed.Round(100*time.Millisecond))
	if r.Interrupted {
		b.WriteString(" (interrupted)")
	}
	b.WriteByte('\n')
	fmt.Fprintf(&b, "outages survived: %d", r.Outages)
	var kinds []string
	for _, f := range AllFaults {
		if n := r.Injected[f]; n > 0 {
			kinds = append(kinds, fmt.Sprintf("%s %d", f, n))
		}
	}
	if len(kinds) > 0 {
		fmt.Fprintf(&b, " (faults injected: %s", strings.Join(kinds, ", "))
		if r.Unnoticed > 0 {
			fmt.Fprintf(&b, "; %d struck while the node was reconnecting", r.Unnoticed)
		}
		b.WriteByte(')')
	}
	b.WriteByte('\n')
	if r.ServerOutages > 0 {
		fmt.Fprintf(&b, "outages seen by the server: %d\n", r.ServerOutages)
	}
	if len(r.Recover) > 0 {
		fmt.Fprintf(&b, "time to recover (node link down -> up): p50 %v  p99 %v  max %v\n",
			r.Percentile(50).Round(time.Millisecond), r.Percentile(99).Round(time.Millisecond),
			r.Recover[len(r.Recover)-1].Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "%-28s %14s %14s\n", "messages", "node->server", "server->node")
	row := func(name string, up, down uint64) {
		fmt.Fprintf(&b, "  %-26s %14d %14d\n", name, up, down)
	}
	row("sent", r.Up.Sent, r.Down.Sent)
	row("received", r.Up.Received, r.Down.Received)
	row("lost", r.Up.Lost, r.Down.Lost)
	row("duplicated", r.Up.Duplicated, r.Down.Duplicated)
	row("out of order (wait on)", r.Up.OutOfOrder, r.Down.OutOfOrder)
	row("reordered (wait off, ok)", r.Up.Reordered, r.Down.Reordered)
	if r.Up.Unexpected+r.Down.Unexpected > 0 {
		row("unexpected", r.Up.Unexpected, r.Down.Unexpected)
	}
	if r.Stale > 0 {
		fmt.Fprintf(&b, "lines of earlier runs ignored: %d\n", r.Stale)
	}
	for _, err := range r.Failed {
		fmt.Fprintf(&b, "failed: %v\n", err)
	}
	b.WriteString(r.Verdict())
	b.WriteByte('\n')
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

func (s *Soak) report(elapsed time.Duration, results []nodeResult) *Report {
	r := &Report{
		Nodes:     len(s.nodes),
		Timeout:   s.cfg.Timeout,
		Elapsed:   elapsed,
		Injected:  make(map[Fault]uint64),
		Unnoticed: s.missedFaults.Load(),
	}
	for _, f := range AllFaults {
		if n := s.faults[f].Load(); n > 0 {
			r.Injected[f] = n
		}
	}
	if s.peer != nil {
		r.ServerOutages = s.peer.Stats().Outages
	}
	for _, n := range s.nodes {
		n.mu.Lock()
		r.Recover = append(r.Recover, n.recover...)
		n.mu.Unlock()
	}
	r.Outages = len(r.Recover)
	slices.Sort(r.Recover)
	for _, nr := range results {
		if !nr.ok {
			r.Failed = append(r.Failed, nr.err)
			continue
		}
		r.Up.add(nr.up, nr.sent)
		r.Down.add(nr.down, nr.peerSent)
		r.Stale += nr.stale
	}
	return r
}

// Progress is a soak's figures so far.
type Progress struct {
	Elapsed  time.Duration
	Outages  int    // recovered so far
	Target   int    // Config.Outages
	Up       int    // nodes whose link is up
	Nodes    int    // nodes in all
	Sent     uint64 // node to server, acknowledged
	Received uint64 // server to node, distinct
}

// String formats the progress as one short line.
func (p Progress) String() string {
	out := fmt.Sprintf("%d", p.Outages)
	if p.Target > 0 {
		out += fmt.Sprintf("/%d", p.Target)
	}
	return fmt.Sprintf("%5.0fs  outages %s  nodes up %d/%d  node->server %d  server->node %d",
		p.Elapsed.Seconds(), out, p.Up, p.Nodes, p.Sent, p.Received)
}

// Progress returns the figures so far.
func (s *Soak) Progress() Progress {
	p := Progress{Elapsed: time.Since(s.start), Target: s.cfg.Outages, Nodes: len(s.nodes)}
	s.recMu.Lock()
	p.Outages = s.outages
	s.recMu.Unlock()
	for _, n := range s.nodes {
		p.Sent += n.out.acked[0].Load() + n.out.acked[1].Load()
		n.mu.Lock()
		if n.up {
			p.Up++
		}
		p.Received += n.recv[0].Received() + n.recv[1].Received()
		n.mu.Unlock()
	}
	return p
}

func (s *Soak) reportProgress() {
	t := time.NewTicker(s.cfg.ProgressEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.cfg.Progress(s.Progress())
		case <-s.faultCtx.Done():
			return
		}
	}
}
