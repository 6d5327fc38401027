package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tether-iot/tether/gateway/internal/metrics"
)

// The embedded broker's protection counters on /metrics.
var (
	descMQTTSlowClients = prometheus.NewDesc(metrics.Namespace+"_mqtt_slow_clients_total",
		"MQTT clients the embedded broker disconnected because they did not read what it sent them (see docs/GATEWAY.md).", nil, nil)
	descMQTTDropped = prometheus.NewDesc(metrics.Namespace+"_mqtt_subscriber_dropped_total",
		"Messages the embedded broker did not give a subscriber: its queue or its session's inflight messages were full.", nil, nil)
	descMQTTTooLarge = prometheus.NewDesc(metrics.Namespace+"_mqtt_packets_too_large_total",
		"MQTT clients the embedded broker disconnected for a packet larger than mqtt.embedded.max_packet.", nil, nil)
	descMQTTRetainRefused = prometheus.NewDesc(metrics.Namespace+"_mqtt_retain_refused_total",
		"Messages of MQTT clients delivered but not retained: the clients' retained messages were at their bound.", nil, nil)
	descMQTTRefusedLogins = prometheus.NewDesc(metrics.Namespace+"_mqtt_refused_logins_total",
		"Connections the embedded broker refused: anonymous on a listener that needs users, unknown user, wrong password.", nil, nil)
	descMQTTRefusedWrites = prometheus.NewDesc(metrics.Namespace+"_mqtt_refused_writes_total",
		"Publishes the embedded broker refused: the gateway's own topics, or no write right (mqtt.embedded.acl).", nil, nil)
	descMQTTRefusedReads = prometheus.NewDesc(metrics.Namespace+"_mqtt_refused_reads_total",
		"Subscriptions (and deliveries) the embedded broker refused for want of the read right (mqtt.embedded.acl).", nil, nil)
	descMQTTSubsRefused = prometheus.NewDesc(metrics.Namespace+"_mqtt_subscriptions_refused_total",
		"Subscriptions the embedded broker refused: the client's or all clients' subscriptions were at their bound.", nil, nil)
)

// brokerCollector exports the embedded broker's counters.
type brokerCollector struct{ g *Gateway }

func (c brokerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descMQTTSlowClients
	ch <- descMQTTDropped
	ch <- descMQTTTooLarge
	ch <- descMQTTRetainRefused
	ch <- descMQTTSubsRefused
	ch <- descMQTTRefusedLogins
	ch <- descMQTTRefusedWrites
	ch <- descMQTTRefusedReads
}

func (c brokerCollector) Collect(ch chan<- prometheus.Metric) {
	select {
	case <-c.g.busSet:
	default:
		return // g.emb is not set yet
	}
	if c.g.emb == nil {
		return
	}
	s := c.g.emb.Stats()
	ch <- prometheus.MustNewConstMetric(descMQTTSlowClients, prometheus.CounterValue, float64(s.SlowClients))
	ch <- prometheus.MustNewConstMetric(descMQTTDropped, prometheus.CounterValue, float64(s.Dropped))
	ch <- prometheus.MustNewConstMetric(descMQTTTooLarge, prometheus.CounterValue, float64(s.TooLarge))
	ch <- prometheus.MustNewConstMetric(descMQTTRetainRefused, prometheus.CounterValue, float64(s.RetainRefused))
	ch <- prometheus.MustNewConstMetric(descMQTTSubsRefused, prometheus.CounterValue, float64(s.SubscriptionsRefused))
	ch <- prometheus.MustNewConstMetric(descMQTTRefusedLogins, prometheus.CounterValue, float64(s.RefusedLogins))
	ch <- prometheus.MustNewConstMetric(descMQTTRefusedWrites, prometheus.CounterValue, float64(s.RefusedWrites))
	ch <- prometheus.MustNewConstMetric(descMQTTRefusedReads, prometheus.CounterValue, float64(s.RefusedReads))
}
