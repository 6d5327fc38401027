package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"hash/fnv"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
)

// The retained "last" topics: each node's last message on
// <p>/<id>/last (mqtt.retain_last) and the values of its field sensors on
// <p>/<id>/field/<field> (discovery.fields, discovery.auto_fields).
//
// A node's message is acknowledged to it once its up topic (and routes)
// have it: the retained copies are not on that path. deliver and the
// spool's drainer hand each message to setLast, which keeps the newest
// per node; one goroutine, the last publisher, publishes them. Under load
// the messages in between are skipped (only the last one matters), so
// the work is bounded by the nodes, not by their traffic, and the order
// of one node's messages is kept: the newest wins.

// haState is the gateway's Home Assistant state (Gateway.ha).
type haState struct {
	active atomic.Bool // the last publisher runs
	// announce serializes the announcements of a node (the store's
	// record of what was published must follow the last one): striped
	// by node, so that nodes announced at once share the store's commits.
	announce [64]sync.Mutex

	mu      sync.Mutex
	pending map[string]string   // node ID → its newest message not yet published
	auto    map[string][]string // node ID → its auto fields (loaded from the store on first use)
	capped  map[string]bool     // nodes told that they have MaxAutoFields (logged once)
	wake    chan struct{}       // buffer 1: pending has something, or the broker is back
}

// announceLock returns node id's announcement lock.
func (h *haState) announceLock(id string) *sync.Mutex {
	f := fnv.New32a()
	f.Write([]byte(id))
	return &h.announce[f.Sum32()%uint32(len(h.announce))]
}

func (h *haState) wakeCh() chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.wake == nil {
		h.wake = make(chan struct{}, 1)
	}
	return h.wake
}

func (h *haState) kick() {
	select {
	case h.wakeCh() <- struct{}{}:
	default:
	}
}

// set keeps payload as node id's newest message.
func (h *haState) set(id, payload string) {
	h.mu.Lock()
	if h.pending == nil {
		h.pending = make(map[string]string)
	}
	h.pending[id] = payload
	h.mu.Unlock()
	h.kick()
}

// take returns the pending messages and forgets them.
func (h *haState) take() map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.pending
	h.pending = nil
	return p
}

// putBack returns an unpublished message to pending, unless a newer one
// came meanwhile.
func (h *haState) putBack(id, payload string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pending == nil {
		h.pending = make(map[string]string)
	}
	if _, newer := h.pending[id]; !newer {
		h.pending[id] = payload
	}
}

// autoFields returns node id's auto fields, loading stored (from the
// store) the first time.
func (h *haState) autoFields(id string, stored []string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.auto == nil {
		h.auto = make(map[string][]string)
	}
	a, ok := h.auto[id]
	if !ok {
		a = slices.Clone(stored)
		h.auto[id] = a
	}
	return slices.Clone(a)
}

// cached returns node id's auto fields if they are loaded.
func (h *haState) cached(id string) ([]string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	a, ok := h.auto[id]
	return a, ok
}

// addAuto adds field f to node id's auto fields; false if it has
// MaxAutoFields already (first tells whether this is the first refusal).
func (h *haState) addAuto(id, f string) (added, first bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	a := h.auto[id]
	if slices.Contains(a, f) {
		return false, false
	}
	if len(a) >= MaxAutoFields {
		if h.capped == nil {
			h.capped = make(map[string]bool)
		}
		first = !h.capped[id]
		h.capped[id] = true
		return false, first
	}
	a = append(a, f)
	slices.Sort(a)
	h.auto[id] = a
	return true, false
}

// forget drops what is kept of node id.
func (h *haState) forget(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.pending, id)
	delete(h.auto, id)
	delete(h.capped, id)
}

// startHA starts the last publisher if there is anything to publish.
func (g *Gateway) startHA() {
	d := g.cfg.Discovery
	if g.bus == nil || !(g.retainLast() || (d.Enabled && (len(d.Fields) > 0 || d.AutoFields || hasNodeFields(d.Nodes)))) {
		return
	}
	g.ha.wakeCh()
	g.ha.active.Store(true)
	g.wg.Add(1)
	go g.lastPublisher()
}

func hasNodeFields(nodes map[string]NodeDiscovery) bool {
	for _, n := range nodes {
		if len(n.Fields) > 0 {
			return true
		}
	}
	return false
}

// setLast hands node id's new message, published on its up topic, to the
// last publisher.
func (g *Gateway) setLast(id, payload string) {
	if g.ha.active.Load() {
		g.ha.set(id, payload)
	}
}

// lastPublisher publishes the pending messages' retained copies until
// the gateway stops. While the broker is not connected they wait (the
// newest per node) for its reconnection, which wakes it (republisher).
func (g *Gateway) lastPublisher() {
	defer g.wg.Done()
	wake := g.ha.wakeCh()
	for {
		select {
		case <-wake:
		case <-g.ctx.Done():
			return
		}
		for id, p := range g.ha.take() {
			if g.ctx.Err() != nil {
				return
			}
			if !g.bus.Status().Connected {
				g.ha.putBack(id, p)
				continue
			}
			if err := g.publishLast(id, p); err != nil {
				g.ha.putBack(id, p)
				if g.ctx.Err() == nil {
					g.log.Debug("MQTT: a node's last message not published; published with the next", "node", id, "err", err)
				}
			}
		}
	}
}

// publishLast publishes node id's message p on its last topic and its
// fields' values on their field topics.
func (g *Gateway) publishLast(id, p string) error {
	ctx, cancel := context.WithTimeout(g.ctx, g.srv.Timeout())
	defer cancel()
	if g.retainLast() {
		if err := g.publish(ctx, pubLast, g.topics.Last(id), []byte(p), true); err != nil {
			return err
		}
	}
	if !g.cfg.Discovery.Enabled {
		return nil
	}
	fields := g.fieldsOf(id)
	if len(fields) == 0 && !g.cfg.Discovery.AutoFields {
		return nil
	}
	obj := jsonObject(p)
	if obj == nil {
		return nil
	}
	keys := sortedKeys(obj)
	var auto map[string]bool // the node's auto fields, new ones included
	if g.cfg.Discovery.AutoFields {
		auto = g.autoAdd(ctx, id, keys, obj, fields)
	}
	for _, k := range keys {
		if _, ok := fields[k]; !ok && !auto[k] {
			continue
		}
		if err := g.publish(ctx, pubLast, g.topics.Field(id, k), fieldValue(obj[k]), true); err != nil {
			return err
		}
	}
	return nil
}

// autoAdd makes sensors of the numeric fields of a message of node id
// that are not sensors yet, while the node has room, and returns the
// node's auto fields. The new sensors' configs are recorded (one store
// write for the message), then published; the node's other configs are
// not published again.
func (g *Gateway) autoAdd(ctx context.Context, id string, keys []string, obj map[string]json.RawMessage, declared map[string]FieldSensor) map[string]bool {
	cur, ok := g.ha.cached(id)
	if !ok {
		stored, err := g.st.Announced(id)
		if err != nil {
			return nil
		}
		cur = g.ha.autoFields(id, stored.Auto)
	}
	var added []string
	for _, k := range keys {
		if _, ok := declared[k]; ok || slices.Contains(cur, k) || !autoField(k, obj[k]) {
			continue
		}
		ok, first := g.ha.addAuto(id, k)
		if !ok {
			g.stats.autoRefused.Add(1)
			if first {
				g.log.Warn("Home Assistant: the node's JSON messages have more numeric fields than discovery.auto_fields makes sensors of; declare the ones you want in discovery.nodes",
					"node", id, "field", k, "max", MaxAutoFields)
			}
			continue
		}
		added = append(added, k)
	}
	all, _ := g.ha.cached(id)
	out := make(map[string]bool, len(all))
	for _, f := range all {
		out[f] = true
	}
	if len(added) == 0 {
		return out
	}
	if err := g.announceAuto(ctx, id, all, added); err != nil {
		g.log.Warn("MQTT: Home Assistant discovery not published", "node", id, "err", err)
	}
	g.log.Info("Home Assistant: sensors made of the node's numeric fields (discovery.auto_fields)", "node", id, "fields", added)
	return out
}

// autoName is a field name that auto_fields takes.
var autoName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,31}$`)

// autoField reports whether field k with JSON value raw is one that
// discovery.auto_fields makes a sensor of: a number, named with letters,
// digits and '_' (up to 32).
func autoField(k string, raw json.RawMessage) bool {
	if !autoName.MatchString(k) || len(raw) == 0 {
		return false
	}
	c := raw[0]
	return c == '-' || (c >= '0' && c <= '9')
}

// jsonObject returns the top-level fields of p if it is a JSON object.
func jsonObject(p string) map[string]json.RawMessage {
	b := bytes.TrimSpace([]byte(p))
	if len(b) == 0 || b[0] != '{' {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}

// fieldValue is the payload of a field's topic: a string's text, "None"
// for null (Home Assistant's unknown), any other value as JSON.
func fieldValue(raw json.RawMessage) []byte {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) > 0 && raw[0] == '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return []byte(s)
		}
	case string(raw) == "null":
		return []byte("None")
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) == nil {
		return b.Bytes()
	}
	return raw
}
