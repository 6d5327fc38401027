package bench

import (
	"context"
	"fmt"
)

// latencyRounds is how many rounds the latency samples are taken in,
// each round taking its share of every series in turn, so that a burst
// of load from elsewhere on the machine hits every series alike.
const latencyRounds = 5

// latency is scenario 1: one node's qos round trip and one-way delivery,
// against a raw TCP line echo and MQTT QoS 1, each client in the farm.
func (r *runner) latency(ctx context.Context) error {
	cfg := r.cfg
	echo, err := startEcho("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer echo.close()
	ts, err := startTether("127.0.0.1:0", cfg.Timeout, cfg.Logger)
	if err != nil {
		return err
	}
	defer ts.close()
	bk, err := startBroker(cfg.Logger)
	if err != nil {
		return err
	}
	defer bk.close()
	var mq *mosquitto
	if !r.res.MosquittoSkipped {
		if mq, err = startMosquitto(ctx, r.mosquittoBin); err != nil {
			return err
		}
		defer mq.close()
		r.res.Mosquitto = mq.version
	}
	_, err = r.do(ctx, Request{Op: "nodes.start", Nodes: &NodesSpec{Addr: ts.addr(), N: 1, Timeout: cfg.Timeout, PerIP: cfg.PerIP}})
	if err != nil {
		return err
	}
	defer r.do(context.WithoutCancel(ctx), Request{Op: "nodes.stop"})
	echo.oneWay.on.Store(true)
	ts.oneWay.on.Store(true)

	load := func(addr string, count int, measured bool) *LoadSpec {
		return &LoadSpec{Addr: addr, Conns: 1, Workers: 1, Count: count, Size: cfg.Size,
			Mode: "window", Stamp: measured, Samples: measured}
	}
	tload := func(count int, measured bool) *LoadSpec {
		l := load("", count, measured)
		l.Mode = "wait"
		return l
	}
	var raw, qos, mqtt, mosq []int64
	type serie struct {
		name string
		req  func(count int, measured bool) Request
		into *[]int64
	}
	series := []serie{
		{"raw TCP echo", func(n int, m bool) Request { return Request{Op: "raw.run", Load: load(echo.addr(), n, m)} }, &raw},
		{"Tether qos write", func(n int, m bool) Request { return Request{Op: "nodes.write", Load: tload(n, m)} }, &qos},
		{"MQTT QoS 1 publish via mochi-mqtt", func(n int, m bool) Request { return Request{Op: "mqtt.run", Load: load(bk.addr, n, m)} }, &mqtt},
	}
	names := "raw TCP echo, Tether qos write, MQTT QoS 1 (mochi-mqtt + Paho)"
	if mq != nil {
		series = append(series, serie{"MQTT QoS 1 publish via mosquitto", func(n int, m bool) Request { return Request{Op: "mqtt.run", Load: load(mq.addr, n, m)} }, &mosq})
		names += ", MQTT QoS 1 (mosquitto + Paho)"
	}
	rounds := min(latencyRounds, max(cfg.Samples/50, 1))
	warm := max(cfg.Samples/10, 50)
	for _, s := range series {
		if _, err := r.do(ctx, s.req(warm, false)); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	for i := range rounds {
		n := cfg.Samples / rounds
		if i == rounds-1 {
			n = cfg.Samples - i*(cfg.Samples/rounds)
		}
		r.progress("latency: round %d of %d: %d round trips each of %s", i+1, rounds, n, names)
		for _, s := range series {
			resp, err := r.do(ctx, s.req(n, true))
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			*s.into = append(*s.into, resp.Samples...)
		}
	}
	l := &r.res.Latency
	l.RawEcho = r.dist("raw TCP echo", raw)
	l.RawOneWay = r.dist("raw TCP one-way", echo.oneWay.take())
	l.QosRTT = r.dist("Tether qos round trip", qos)
	l.QosOneWay = r.dist("Tether one-way", ts.oneWay.take())
	l.MQTTQoS1 = r.dist("MQTT QoS 1, mochi-mqtt", mqtt)
	if l.QosRTT.N != cfg.Samples || l.RawEcho.N != cfg.Samples || l.MQTTQoS1.N != cfg.Samples {
		return fmt.Errorf("round trips: raw %d, Tether %d, MQTT %d, want %d each", l.RawEcho.N, l.QosRTT.N, l.MQTTQoS1.N, cfg.Samples)
	}
	if mq != nil {
		l.Mosquitto = r.dist("MQTT QoS 1, mosquitto", mosq)
		if l.Mosquitto.N != cfg.Samples {
			return fmt.Errorf("round trips: mosquitto %d, want %d", l.Mosquitto.N, cfg.Samples)
		}
	}
	r.progress("latency p50: raw echo %.1f µs, Tether qos %.1f µs, MQTT QoS 1 %.1f µs via mochi-mqtt, %.1f µs via mosquitto", l.RawEcho.P50, l.QosRTT.P50, l.MQTTQoS1.P50, l.Mosquitto.P50)
	return nil
}

// dist summarises samples and keeps them for the histogram.
func (r *runner) dist(name string, ns []int64) Dist {
	r.res.samples[name] = ns
	return distOf(ns)
}
