package gateway

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tether-iot/tether/gateway/internal/bus"
	"github.com/tether-iot/tether/gateway/internal/metrics"
)

// What the gateway publishes: the label "kind" of the MQTT metrics.
const (
	pubUp        = iota // a node's message on its up topic
	pubRoute            // a node's message on a route's down topic
	pubState            // a node's retained state
	pubDiscovery        // Home Assistant discovery configs
	pubGateway          // the gateway's online/offline state
	pubLast             // a node's last message and field values, retained (ha.go)
	numPubKinds
)

var pubKinds = [numPubKinds]string{"up", "route", "state", "discovery", "gateway", "last"}

// Why a message for a node was dropped: the label "reason" of
// tether_nodes_dropped_messages_total.
const (
	dropQueueFull    = iota // its durable queue was full
	dropNoQoSFull           // too many qos-off messages waited
	dropInvalid             // it could never be written (empty, LF, too long, not UTF-8)
	dropStoreFull           // all the queues together were at queue.max_total_bytes
	dropTooManyNodes        // a new ID never seen connected, past queue.max_nodes
	numDropReasons
)

var dropReasons = [numDropReasons]string{"queue_full", "noqos_full", "invalid", "store_full", "too_many_nodes"}

// stats counts what the gateway publishes and drops. Its methods are safe
// for concurrent use.
type stats struct {
	published [numPubKinds]atomic.Uint64
	failed    [numPubKinds]atomic.Uint64
	dropped   [numDropReasons]atomic.Uint64
	failing   episode // MQTT publishes failing
	storeFull episode // the queues together are full: messages dropped
	strangers episode // too many IDs never seen connected: messages dropped

	spooled      atomic.Uint64                   // messages from nodes spooled
	spoolRefused [numRefuseReasons]atomic.Uint64 // messages from nodes refused: spool full
	spooling     episode                         // messages are spooled, until every spool is empty
	forgotten    atomic.Uint64                   // nodes forgotten (forget.go)
	autoRefused  atomic.Uint64                   // numeric fields not made sensors: MaxAutoFields (ha.go)
}

// episode is a run of failures or drops, logged when it starts and when
// it ends rather than once per message.
type episode struct {
	mu sync.Mutex
	on bool
	n  uint64 // failures or drops in this episode
}

// hit counts one failure or drop and reports whether it starts an
// episode.
func (e *episode) hit() (first bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	first = !e.on
	e.on = true
	return first
}

// active reports whether an episode is on.
func (e *episode) active() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.on
}

// end ends the episode, if one is on and done() says it is over, and
// returns how many it counted.
func (e *episode) end(done func() bool) (n uint64, ended bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.on || !done() {
		return 0, false
	}
	n, e.on, e.n = e.n, false, 0
	return n, true
}

// publish publishes on the bus (waiting for its connection) and counts
// the outcome by kind. A state, discovery or gateway publish that the
// MQTT client sent again after a lost connection (bus.ErrUnconfirmed)
// counts as done: the client keeps sending it until the broker has it.
func (g *Gateway) publish(ctx context.Context, kind int, topic string, payload []byte, retain bool) error {
	err := g.bus.Publish(ctx, topic, payload, retain)
	if kind != pubUp && kind != pubRoute && errors.Is(err, bus.ErrUnconfirmed) {
		err = nil
	}
	g.count(kind, topic, err)
	return err
}

// count counts a publish's outcome err by kind. The first failure after
// a success is logged, and so is the first success after failures: one
// line each way, however many messages fail in between.
func (g *Gateway) count(kind int, topic string, err error) {
	s := &g.stats
	if err != nil {
		s.failed[kind].Add(1)
		if s.failing.hit() {
			g.log.Warn("MQTT: publishes are failing; the nodes' messages are spooled in the store meanwhile",
				"kind", pubKinds[kind], "topic", topic, "err", err)
		}
		return
	}
	s.published[kind].Add(1)
	if n, ended := s.failing.end(func() bool { return true }); ended {
		g.log.Info("MQTT: publishes succeed again", "failed", n)
	}
}

var (
	descPublishes = prometheus.NewDesc(metrics.Namespace+"_mqtt_publishes_total",
		"Messages the gateway published and the broker accepted, by kind: up (a node's message), route, state, discovery, gateway.", []string{"kind"}, nil)
	descPublishFailures = prometheus.NewDesc(metrics.Namespace+"_mqtt_publish_failures_total",
		"Publishes that failed (connection lost, or broker slower than 4T for a node's message), by kind; a node's message whose publish failed is spooled. Publishes not tried because the broker was not connected are not counted.", []string{"kind"}, nil)
	descFleetDropped = prometheus.NewDesc(metrics.Namespace+"_nodes_dropped_messages_total",
		"Messages for nodes that the gateway dropped, by reason: queue_full (the node's durable queue was full), noqos_full (too many qos-off messages waited), invalid (it could never be written), store_full (all the durable queues together were full), too_many_nodes (a new node ID never seen connected, past queue.max_nodes).", []string{"reason"}, nil)
	descStoredMessages = prometheus.NewDesc(metrics.Namespace+"_nodes_stored_messages",
		"Messages for nodes waiting in the gateway's durable store, all nodes together (those not connected since the gateway started included).", nil, nil)
	descStoredBytes = prometheus.NewDesc(metrics.Namespace+"_nodes_stored_bytes",
		"Payload bytes of the messages waiting in the gateway's durable store, all nodes together.", nil, nil)
	descSpooledMessages = prometheus.NewDesc(metrics.Namespace+"_nodes_spooled_messages",
		"Messages from nodes acknowledged while the broker could not take them, waiting in the up spools of the store to be published, all nodes together.", nil, nil)
	descSpooledBytes = prometheus.NewDesc(metrics.Namespace+"_nodes_spooled_bytes",
		"Payload bytes of the messages waiting in the up spools, all nodes together.", nil, nil)
	descSpooled = prometheus.NewDesc(metrics.Namespace+"_nodes_spooled_total",
		"Messages from nodes that went to the up spool rather than straight to the broker (broker not connected, a publish failed or took longer than 4T, or earlier messages of the node were spooled).", nil, nil)
	descMQTTConnected = prometheus.NewDesc(metrics.Namespace+"_mqtt_connected",
		"1 while the gateway is connected to its MQTT broker (always with the embedded broker), 0 while it is not (it retries).", nil, nil)
	descForgotten = prometheus.NewDesc(metrics.Namespace+"_nodes_forgotten_total",
		"Nodes forgotten: down for nodes.forget_after with nothing queued (their link, page row and series went), or removed by Forget (tether nodes forget).", nil, nil)
	descSpoolRefused = prometheus.NewDesc(metrics.Namespace+"_nodes_spool_refused_total",
		"Messages from nodes not acknowledged because the up spool was full, by reason: spool_full (the node's spool held queue.max_up_messages), store_full (the queues and spools together were at queue.max_total_bytes). The node repeats them; a qos-off message is lost.", []string{"reason"}, nil)
)

// collector exports the gateway's own fleet series; it reads counters
// and the store's in-memory depths, so a scrape costs no disk access.
type collector struct{ g *Gateway }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPublishes
	ch <- descPublishFailures
	ch <- descFleetDropped
	ch <- descStoredMessages
	ch <- descStoredBytes
	ch <- descSpooledMessages
	ch <- descSpooledBytes
	ch <- descSpooled
	ch <- descSpoolRefused
	ch <- descMQTTConnected
	ch <- descForgotten
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := &c.g.stats
	for k, name := range pubKinds {
		ch <- prometheus.MustNewConstMetric(descPublishes, prometheus.CounterValue, float64(s.published[k].Load()), name)
		ch <- prometheus.MustNewConstMetric(descPublishFailures, prometheus.CounterValue, float64(s.failed[k].Load()), name)
	}
	for r, name := range dropReasons {
		ch <- prometheus.MustNewConstMetric(descFleetDropped, prometheus.CounterValue, float64(s.dropped[r].Load()), name)
	}
	t := c.g.st.Total()
	ch <- prometheus.MustNewConstMetric(descStoredMessages, prometheus.GaugeValue, float64(t.Messages))
	ch <- prometheus.MustNewConstMetric(descStoredBytes, prometheus.GaugeValue, float64(t.Bytes))
	u := c.g.st.UpTotal()
	ch <- prometheus.MustNewConstMetric(descSpooledMessages, prometheus.GaugeValue, float64(u.Messages))
	ch <- prometheus.MustNewConstMetric(descSpooledBytes, prometheus.GaugeValue, float64(u.Bytes))
	ch <- prometheus.MustNewConstMetric(descSpooled, prometheus.CounterValue, float64(s.spooled.Load()))
	for r, name := range refuseReasons {
		ch <- prometheus.MustNewConstMetric(descSpoolRefused, prometheus.CounterValue, float64(s.spoolRefused[r].Load()), name)
	}
	ch <- prometheus.MustNewConstMetric(descForgotten, prometheus.CounterValue, float64(s.forgotten.Load()))
	if b := c.g.bus; b != nil {
		v := 0.0
		if b.Status().Connected {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descMQTTConnected, prometheus.GaugeValue, v)
	}
}
