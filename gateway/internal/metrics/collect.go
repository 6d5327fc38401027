package metrics

import (
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tether-iot/tether/link"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

// The metrics read from the server and its links on each scrape.
//
// Fleet series (tether_nodes_*) sum every node's counters and have no
// node label: they are always exported, and their number does not grow
// with the fleet. Per-node series (tether_node_*) carry a "node" label;
// Config.NodeMetrics chooses which of them are exported (see NodeMetrics).
var (
	descTimeout    = desc("timeout_seconds", "The server's T: a node is declared down after T without a byte from it.")
	descNodes      = desc("nodes", "Nodes that have connected at least once.")
	descNodesUp    = desc("nodes_up", "Nodes whose link is up.")
	descAccepted   = desc("connections_accepted_total", "TCP connections accepted.")
	descHandshakes = desc("handshakes_total", "Connections whose node ID was read.")
	descRejected   = desc("handshake_rejections_total", "Connections turned away before or at the ID line, by reason.", "reason")
	descUnknownID  = desc("unknown_ids_total", "Node IDs not in the expected set: rejected by a strict server, accepted otherwise.")
	descAddrChange = desc("address_changes_total", "Node connections from another address than the ID's last socket's, by kind: moved (a new address: a DHCP renewal, a reboot on another network, or another device), back (an address the ID had left: it alternates, as two devices sharing it do), concurrent (while the ID was up: refused), two_devices (a returning node resumed its own sequence while another address had gone on with the ID's).", "kind")

	descAllReconnects = desc("nodes_reconnects_total", "Reconnections of all nodes (connects after each node's first).")
	descAllMessages   = desc("nodes_messages_total", "Messages of all nodes, by direction: in = new messages received from nodes, out = first transmissions to them (qos or not).", "direction")
	descAllAcked      = desc("nodes_qos_acked_total", "Qos messages to nodes that they acknowledged.")
	descAllRepeats    = desc("nodes_qos_repeats_total", "Qos retransmissions to nodes (after the first transmission).")
	descAllDuplicates = desc("nodes_duplicates_total", "Repeats received from nodes, acknowledged and dropped.")
	descAllRefused    = desc("nodes_refused_total", "Messages from nodes not acknowledged (receive queue full or delivery failed); the nodes repeat them.")
	descAllRestarts   = desc("nodes_restarts_total", "Restarts of nodes (a new message 00).")
	descAllBadLines   = desc("nodes_bad_lines_total", "Bad lines received from nodes, by reason.", "reason")
	descAllEvDropped  = desc("nodes_events_dropped_total", "Link events that found a subscriber's channel full.")
	descAllAmbiguous  = desc("nodes_ambiguities_total", "Decisions about nodes' messages that could not be made for sure, by kind: repeat_00 = an identical first message (id 00) taken for a repeat (lost if the node had restarted), restart_00 = taken for a restart (a duplicate if it had not), foreign_acked = messages acknowledged from another address while the node was away (it may never have had them), renumbered = messages sent again under a new id after the node's address changed (a duplicate if it was the same device and had one), overflow_loss = the node closed its link right after acknowledging a message, as an original client whose 20-line queue is full does (that message is probably lost).", "kind")
	descAllPending    = desc("nodes_pending_messages", "Qos messages to nodes awaiting their ACK.")
	descAllQueued     = desc("nodes_queued_messages", "Messages to nodes waiting in memory to be sent or acknowledged.")

	// Basic per-node series.
	descUp       = desc("node_up", "1 if the node's link is up, else 0.", "node")
	descMessages = desc("node_messages_total", "Messages, by direction: in = new messages received from the node, out = first transmissions to it (qos or not).", "node", "direction")
	descStored   = desc("node_stored_messages", "Messages to the node waiting in the gateway's durable store.", "node")
	descSpooled  = desc("node_spooled_messages", "Messages from the node acknowledged while the broker could not take them, waiting in the gateway's up spool to be published.", "node")
	descDropped  = desc("node_dropped_messages_total", "Messages to the node that the gateway dropped: its durable queue was full, too many qos-off messages waited, or the message could never be written.", "node")

	// Full per-node series.
	descSince       = desc("node_state_since_timestamp_seconds", "When the node last went up or down (Unix time).", "node")
	descConnects    = desc("node_connects_total", "Sockets attached for the node.", "node")
	descReconnects  = desc("node_reconnects_total", "Reconnections of the node (connects after the first).", "node")
	descAcked       = desc("node_qos_acked_total", "Qos messages to the node that it acknowledged.", "node")
	descRepeats     = desc("node_qos_repeats_total", "Qos retransmissions to the node (after the first transmission).", "node")
	descDuplicates  = desc("node_duplicates_total", "Repeats received from the node, acknowledged and dropped.", "node")
	descRefused     = desc("node_refused_total", "Messages from the node not acknowledged (receive queue full or delivery failed).", "node")
	descRestarts    = desc("node_restarts_total", "Restarts of the node (a new message 00).", "node")
	descBadLines    = desc("node_bad_lines_total", "Bad lines received from the node, by reason.", "node", "reason")
	descPending     = desc("node_pending_messages", "Qos messages to the node awaiting their ACK.", "node")
	descQueued      = desc("node_queued_messages", "Messages to the node waiting in memory to be sent or acknowledged.", "node")
	descLastRecv    = desc("node_last_receive_timestamp_seconds", "When the last new message came from the node (Unix time; absent before the first).", "node")
	descLastRTT     = desc("node_last_ack_rtt_seconds", "Round trip of the node's last qos message acknowledged on its first transmission.", "node")
	descPeerTimeout = desc("node_peer_timeout_seconds", "The node's T as inferred from its keepalive rhythm (absent until known).", "node")
	descEvDropped   = desc("node_events_dropped_total", "Link events that found a subscriber's channel full.", "node")
	descAmbiguous   = desc("node_ambiguities_total", "Decisions about the node's messages that could not be made for sure, by kind (see tether_nodes_ambiguities_total).", "node", "kind")

	descOmitted = desc("nodes_series_omitted", "Nodes left without per-node series at this scrape: more nodes than the bound (web.max_node_metrics). Their counters still count in the fleet sums (tether_nodes_*).")
)

var fleetDescs = []*prometheus.Desc{
	descTimeout, descNodes, descNodesUp, descAccepted, descHandshakes, descRejected, descUnknownID, descAddrChange, descOmitted,
	descAllReconnects, descAllMessages, descAllAcked, descAllRepeats, descAllDuplicates, descAllRefused,
	descAllRestarts, descAllBadLines, descAllEvDropped, descAllPending, descAllQueued, descAllAmbiguous,
}

var basicDescs = []*prometheus.Desc{descUp, descMessages, descStored, descSpooled, descDropped}

var fullDescs = []*prometheus.Desc{
	descSince, descConnects, descReconnects, descAcked, descRepeats, descDuplicates, descRefused,
	descRestarts, descBadLines, descPending, descQueued, descLastRecv, descLastRTT, descPeerTimeout,
	descEvDropped, descAmbiguous,
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	descs := fleetDescs
	switch c.perNode {
	case NodeBasic:
		descs = slices.Concat(descs, basicDescs)
	case NodeFull:
		descs = slices.Concat(descs, basicDescs, fullDescs)
	}
	for _, d := range descs {
		ch <- d
	}
	c.rtt.Describe(ch)
}

// Collect implements prometheus.Collector: it reads the server's and every
// link's Stats.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.rtt.Collect(ch)
	srv := c.srv.Load()
	if srv == nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}

	ss := srv.Stats()
	gauge(descTimeout, srv.Timeout().Seconds())
	counter(descAccepted, ss.Accepted)
	counter(descHandshakes, ss.Handshakes)
	counter(descUnknownID, ss.UnknownID)
	counter(descAddrChange, ss.AddrMoved, "moved")
	counter(descAddrChange, ss.AddrBack, "back")
	counter(descAddrChange, ss.AddrConcurrent, "concurrent")
	for _, r := range []struct {
		reason string
		n      uint64
	}{
		{"timeout", ss.HandshakeTimeout},
		{"closed", ss.HandshakeClosed},
		{"bad_id", ss.BadID},
		{"duplicate_id", ss.DuplicateID},
		{"per_ip_limit", ss.PerIPLimit},
		{"node_limit", ss.NodeLimit},
		{"refused", ss.Refused},
		// Access control (docs/GATEWAY.md, "Access control").
		{"tls_handshake", ss.TLSFailed},
		{"cert_invalid", ss.CertInvalid},
		{"cert_revoked", ss.CertRevoked},
		{"no_cert", ss.NoCert},
		{"cert_mismatch", ss.CertMismatch},
		{"plain_refused", ss.PlainRefused},
		{"pin_refused", ss.PinRefused},
		{"pending", ss.Pending},
	} {
		counter(descRejected, r.n, r.reason)
	}

	links := srv.Links()
	var all link.Stats
	sums := make([]uint64, len(linkCounters))
	up, reconnects := 0, 0
	var nodes []perNode
	for _, l := range links {
		st := l.Stats()
		if st.Up {
			up++
		}
		reconnects += max(st.Connects-1, 0)
		all.Received += st.Received
		all.Sent += st.Sent
		for i, lc := range linkCounters {
			sums[i] += lc.get(&st)
		}
		all.TwoDevices += st.TwoDevices
		all.Pending += st.Pending
		all.Queued += st.Queued
		if c.perNode != NodeNone {
			nodes = append(nodes, perNode{st: st})
		}
	}
	if c.perNode != NodeNone && c.offline != nil {
		ids := slices.Clone(c.offline())
		slices.Sort(ids)
		for _, id := range slices.Compact(ids) {
			if _, err := srv.Lookup(id); err != nil {
				nodes = append(nodes, perNode{st: link.Stats{ID: id}, offline: true})
			}
		}
	}
	nodes, omitted := c.bound(nodes)
	for _, n := range nodes {
		c.collectNode(ch, n.st, n.offline)
	}
	gauge(descOmitted, float64(omitted))
	gauge(descNodes, float64(len(links)))
	gauge(descNodesUp, float64(up))
	counter(descAllReconnects, uint64(reconnects))
	counter(descAllMessages, all.Received, "in")
	counter(descAllMessages, all.Sent, "out")
	for i, lc := range linkCounters {
		counter(lc.all, sums[i], lc.labels...)
	}
	counter(descAddrChange, all.TwoDevices, "two_devices")
	gauge(descAllPending, float64(all.Pending))
	gauge(descAllQueued, float64(all.Queued))
}

// linkCounter is a counter of link.Stats exported twice: summed over the
// fleet (all, no node label) and per node with NodeFull (node).
type linkCounter struct {
	all, node *prometheus.Desc
	labels    []string // the series' label values beside the node
	get       func(*link.Stats) uint64
}

// linkCounters lists them in the order they are sent.
var linkCounters = []linkCounter{
	{descAllAcked, descAcked, nil, func(s *link.Stats) uint64 { return s.Acked }},
	{descAllRepeats, descRepeats, nil, func(s *link.Stats) uint64 { return s.Repeats }},
	{descAllDuplicates, descDuplicates, nil, func(s *link.Stats) uint64 { return s.Duplicates }},
	{descAllRefused, descRefused, nil, func(s *link.Stats) uint64 { return s.Refused }},
	{descAllRestarts, descRestarts, nil, func(s *link.Stats) uint64 { return s.PeerRestarts }},
	{descAllBadLines, descBadLines, []string{"too_long"}, func(s *link.Stats) uint64 { return s.TooLong }},
	{descAllBadLines, descBadLines, []string{"malformed"}, func(s *link.Stats) uint64 { return s.Malformed }},
	{descAllBadLines, descBadLines, []string{"not_utf8"}, func(s *link.Stats) uint64 { return s.NotUTF8 }},
	{descAllEvDropped, descEvDropped, nil, func(s *link.Stats) uint64 { return s.EventsDropped }},
	{descAllAmbiguous, descAmbiguous, []string{"repeat_00"}, func(s *link.Stats) uint64 { return s.AmbiguousRepeats }},
	{descAllAmbiguous, descAmbiguous, []string{"restart_00"}, func(s *link.Stats) uint64 { return s.AmbiguousRestarts }},
	{descAllAmbiguous, descAmbiguous, []string{"foreign_acked"}, func(s *link.Stats) uint64 { return s.ForeignAcked }},
	{descAllAmbiguous, descAmbiguous, []string{"renumbered"}, func(s *link.Stats) uint64 { return s.Renumbered }},
	{descAllAmbiguous, descAmbiguous, []string{"overflow_loss"}, func(s *link.Stats) uint64 { return s.ProbableLosses }},
}

// collectNode sends node st's series: the basic ones, and with NodeFull
// the others, unless the node is offline (it has no link).
func (c *Collector) collectNode(ch chan<- prometheus.Metric, st link.Stats, offline bool) {
	id := st.ID
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{id}, labels...)...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{id}, labels...)...)
	}
	upv := 0.0
	if st.Up {
		upv = 1
	}
	gauge(descUp, upv)
	counter(descMessages, st.Received, "in")
	counter(descMessages, st.Sent, "out")
	if c.stored != nil {
		gauge(descStored, float64(c.stored(id)))
	}
	if c.spooled != nil {
		gauge(descSpooled, float64(c.spooled(id)))
	}
	if c.dropped != nil {
		counter(descDropped, c.dropped(id))
	}
	if c.perNode != NodeFull || offline {
		return
	}
	gauge(descSince, unix(st.Since))
	counter(descConnects, uint64(st.Connects))
	counter(descReconnects, uint64(max(st.Connects-1, 0)))
	for _, lc := range linkCounters {
		counter(lc.node, lc.get(&st), lc.labels...)
	}
	gauge(descPending, float64(st.Pending))
	gauge(descQueued, float64(st.Queued))
	if !st.LastReceived.IsZero() {
		gauge(descLastRecv, unix(st.LastReceived))
	}
	if st.LastAckRTT > 0 {
		gauge(descLastRTT, st.LastAckRTT.Seconds())
	}
	if pt := st.PeerTimeout(); pt > 0 {
		gauge(descPeerTimeout, pt.Seconds())
	}
}

// perNode is a node whose per-node series may be exported.
type perNode struct {
	st      link.Stats
	offline bool
}

// bound keeps the nodes that get per-node series under Config.MaxNodes
// and returns them with the number left out, logging when nodes start
// and stop being left out.
func (c *Collector) bound(nodes []perNode) ([]perNode, int) {
	omitted := 0
	if c.maxNode >= 0 && len(nodes) > c.maxNode {
		rank := func(n perNode) int {
			if c.prio != nil && c.prio(n.st.ID) {
				return 0
			}
			return 1
		}
		slices.SortFunc(nodes, func(a, b perNode) int {
			if d := rank(a) - rank(b); d != 0 {
				return d
			}
			return strings.Compare(a.st.ID, b.st.ID)
		})
		omitted = len(nodes) - c.maxNode
		nodes = nodes[:c.maxNode]
	}
	c.omitMu.Lock()
	was := c.omitted
	c.omitted = omitted
	c.omitMu.Unlock()
	switch {
	case omitted > 0 && was == 0:
		c.log.Warn("metrics: more nodes than the bound of per-node series: the others are left out (their counters still count in the fleet totals)",
			"bound", c.maxNode, "omitted", omitted, "setting", "web.max_node_metrics")
	case omitted == 0 && was > 0:
		c.log.Info("metrics: every node has its per-node series again", "bound", c.maxNode)
	}
	return nodes, omitted
}
