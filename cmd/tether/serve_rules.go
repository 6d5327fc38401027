package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/tether-iot/tether/gateway"
)

// serveFlagOf names the flag of each config key that has one.
var serveFlagOf = map[string]string{
	"listen":                "addr",
	"timeout":               "timeout",
	"nodes.expect":          "expect",
	"nodes.strict":          "strict",
	"max_line":              "max-line",
	"data":                  "data",
	"name":                  "name",
	"mqtt.broker":           "broker",
	"mqtt.listen":           "mqtt-listen",
	"discovery.enabled":     "discovery",
	"web.addr":              "web",
	"queue.max_messages":    "queue-max-messages",
	"queue.max_bytes":       "queue-max-bytes",
	"queue.max_total_bytes": "queue-max-total-bytes",
	"queue.max_nodes":       "queue-max-nodes",
	"queue.max_up_messages": "queue-max-up-messages",
	"nodes.max":             "max-nodes",
	"nodes.forget_after":    "forget-after",
	"nodes.tcp_evidence":    "tcp-evidence",
}

// opsFlags are the serve flags of the node limits (issue 10.2).
type opsFlags struct {
	maxNodes    int
	forgetAfter time.Duration
	freshStore  bool
	tcpEvidence bool
}

func (o *opsFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&o.maxNodes, "max-nodes", 0, "most node `IDs` kept (nodes.max); a new ID past it is refused at its handshake; 0: 100000, -1: no bound")
	fs.BoolVar(&o.freshStore, "fresh-store", false, "if the store (gateway.db) is damaged, move it aside and start an empty one (its queues and the nodes' sequence state are lost); without it a damaged store stops the start")
	fs.BoolVar(&o.tcpEvidence, "tcp-evidence", true, "take an original node's TCP acknowledgement of the gateway's ACK of its first message as proof that it got it (nodes.tcp_evidence); false for nodes behind a proxy that terminates TCP (a TCP load balancer, Docker's userland proxy): their repeated first messages are then decided by the horizon, and counted")
	fs.DurationVar(&o.forgetAfter, "forget-after", 0, "forget a node not in --expect, with nothing queued, down this `long` (nodes.forget_after); 0: 1h, negative: never")
}

// apply sets the config key of flag name, if it is one of o's.
func (o *opsFlags) apply(name string, cfg *gateway.Config) {
	switch name {
	case "max-nodes":
		cfg.Nodes.Max = o.maxNodes
	case "forget-after":
		cfg.Nodes.ForgetAfter = gateway.Duration(o.forgetAfter)
	case "fresh-store":
		cfg.FreshStore = o.freshStore
	case "tcp-evidence":
		cfg.Nodes.TCPEvidence = &o.tcpEvidence
	}
}

// checkServeConfig checks cfg with the gateway's rules (the same for
// the flags and the config file) before anything starts; an invalid
// value given as a flag is named by its flag and its key.
func checkServeConfig(fs *flag.FlagSet, cfg gateway.Config) error {
	err := cfg.Validate()
	if err == nil {
		return nil
	}
	var ce *gateway.ConfigError
	if !errors.As(err, &ce) || ce.Key == "" {
		return err
	}
	key := ce.Key
	if i := strings.IndexByte(key, '['); i >= 0 {
		key = key[:i] // nodes.expect[1]
	}
	name := serveFlagOf[key]
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	if !set {
		return fmt.Errorf("config: %s", ce.Msg)
	}
	return fmt.Errorf("--%s: %s", name, ce.Msg)
}
