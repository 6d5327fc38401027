package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tether-iot/tether/link"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

// The metrics read from the server and its links on each scrape. Per-node
// series carry a "node" label: Tether fleets are boards in the tens or
// hundreds, and which node flaps is what an operator asks.
var (
	descTimeout    = desc("timeout_seconds", "The server's T: a node is declared down after T without a byte from it.")
	descNodes      = desc("nodes", "Nodes that have connected at least once.")
	descNodesUp    = desc("nodes_up", "Nodes whose link is up.")
	descAccepted   = desc("connections_accepted_total", "TCP connections accepted.")
	descHandshakes = desc("handshakes_total", "Connections whose node ID was read.")
	descRejected   = desc("handshake_rejections_total", "Connections turned away before or at the ID line, by reason.", "reason")
	descUnknownID  = desc("unknown_ids_total", "Node IDs not in the expected set: rejected by a strict server, accepted otherwise.")

	descUp          = desc("node_up", "1 if the node's link is up, else 0.", "node")
	descSince       = desc("node_state_since_timestamp_seconds", "When the node last went up or down (Unix time).", "node")
	descConnects    = desc("node_connects_total", "Sockets attached for the node.", "node")
	descReconnects  = desc("node_reconnects_total", "Reconnections of the node (connects after the first).", "node")
	descMessages    = desc("node_messages_total", "Messages, by direction: in = new messages received from the node, out = first transmissions to it (qos or not).", "node", "direction")
	descAcked       = desc("node_qos_acked_total", "Qos messages to the node that it acknowledged.", "node")
	descRepeats     = desc("node_qos_repeats_total", "Qos retransmissions to the node (after the first transmission).", "node")
	descDuplicates  = desc("node_duplicates_total", "Repeats received from the node, acknowledged and dropped.", "node")
	descRefused     = desc("node_refused_total", "Messages from the node not acknowledged (receive queue full or delivery failed).", "node")
	descRestarts    = desc("node_restarts_total", "Restarts of the node (a new message 00).", "node")
	descBadLines    = desc("node_bad_lines_total", "Bad lines received from the node, by reason.", "node", "reason")
	descPending     = desc("node_pending_messages", "Qos messages to the node awaiting their ACK.", "node")
	descQueued      = desc("node_queued_messages", "Messages to the node waiting in memory to be sent or acknowledged.", "node")
	descStored      = desc("node_stored_messages", "Messages to the node waiting in the gateway's durable store.", "node")
	descLastRecv    = desc("node_last_receive_timestamp_seconds", "When the last new message came from the node (Unix time; absent before the first).", "node")
	descLastRTT     = desc("node_last_ack_rtt_seconds", "Round trip of the node's last qos message acknowledged on its first transmission.", "node")
	descPeerTimeout = desc("node_peer_timeout_seconds", "The node's T as inferred from its keepalive rhythm (absent until known).", "node")
	descEvDropped   = desc("node_events_dropped_total", "Link events that found a subscriber's channel full.", "node")
)

var allDescs = []*prometheus.Desc{
	descTimeout, descNodes, descNodesUp, descAccepted, descHandshakes, descRejected, descUnknownID,
	descUp, descSince, descConnects, descReconnects, descMessages, descAcked, descRepeats,
	descDuplicates, descRefused, descRestarts, descBadLines, descPending, descQueued,
	descStored, descLastRecv, descLastRTT, descPeerTimeout, descEvDropped,
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
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
	} {
		counter(descRejected, r.n, r.reason)
	}

	links := srv.Links()
	up := 0
	for _, l := range links {
		st := l.Stats()
		if st.Up {
			up++
		}
		c.collectNode(ch, st)
	}
	gauge(descNodes, float64(len(links)))
	gauge(descNodesUp, float64(up))
}

func (c *Collector) collectNode(ch chan<- prometheus.Metric, st link.Stats) {
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
	gauge(descSince, unix(st.Since))
	counter(descConnects, uint64(st.Connects))
	counter(descReconnects, uint64(max(st.Connects-1, 0)))
	counter(descMessages, st.Received, "in")
	counter(descMessages, st.Sent, "out")
	counter(descAcked, st.Acked)
	counter(descRepeats, st.Repeats)
	counter(descDuplicates, st.Duplicates)
	counter(descRefused, st.Refused)
	counter(descRestarts, st.PeerRestarts)
	counter(descBadLines, st.TooLong, "too_long")
	counter(descBadLines, st.Malformed, "malformed")
	counter(descBadLines, st.NotUTF8, "not_utf8")
	counter(descEvDropped, st.EventsDropped)
	gauge(descPending, float64(st.Pending))
	gauge(descQueued, float64(st.Queued))
	if c.stored != nil {
		gauge(descStored, float64(c.stored(id)))
	}
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
