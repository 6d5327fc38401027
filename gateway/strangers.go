package gateway

// Strangers are node IDs that the gateway keeps state for (a durable
// queue, qos-off messages waiting, a writer) although they are not in
// nodes.expect and were never seen connected. Without nodes.expect the
// gateway owns every ID, so a publisher could make it keep state for any
// number of them: Config.Queue.MaxNodes bounds them.

// stranger reports whether node id would be a new stranger: the gateway
// has no state for it, it is not expected and was never seen connected.
func (g *Gateway) stranger(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.nodes[id] == nil && !g.expect[id] && !g.st.Seen(id)
}

// roomForStranger reports whether one more stranger is allowed.
func (g *Gateway) roomForStranger() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := g.cfg.Queue.MaxNodes
	return m < 0 || g.strangers < m
}

// dropStranger drops a message from MQTT for a new stranger past
// MaxNodes; the first drop of an episode is logged.
func (g *Gateway) dropStranger(id string) {
	g.drop(nil, dropTooManyNodes)
	if g.stats.strangers.hit() {
		g.log.Warn("message for a node ID never seen connected dropped (and acknowledged to the broker): the gateway keeps messages for at most queue.max_nodes such IDs; list your nodes in nodes.expect (more are dropped until some of them connect)",
			"node", id, "max_nodes", g.cfg.Queue.MaxNodes)
	}
}

// seen records that node id has connected: it is no stranger from now
// on, in this run and the next ones.
func (g *Gateway) seen(id string) {
	if err := g.st.MarkSeen(id); err != nil {
		g.log.Warn("store: cannot record that the node connected", "node", id, "err", err)
	}
	n := g.node(id)
	g.mu.Lock()
	if n.stranger {
		n.stranger = false
		g.strangers--
	}
	left := g.strangers
	g.mu.Unlock()
	m := g.cfg.Queue.MaxNodes
	if dropped, ended := g.stats.strangers.end(func() bool { return m < 0 || left <= m/2 }); ended {
		g.log.Info("messages for node IDs never seen connected are kept again", "strangers", left, "dropped", dropped)
	}
}

// dropStoreFull drops a message from MQTT for node id because all the
// queues together are full. The first drop of an episode is logged; the
// episode ends (and is logged) once they have drained to half.
func (g *Gateway) dropStoreFull(id string) {
	g.drop(g.lookupNode(id), dropStoreFull)
	if !g.stats.storeFull.hit() {
		return
	}
	t := g.st.Used()
	g.log.Warn("the durable queues are full (all nodes together, up spools included): new messages from MQTT are dropped (and acknowledged to the broker) until they drain to half",
		"node", id, "stored", t.Messages, "bytes", t.Bytes, "max_total_bytes", g.cfg.Queue.MaxTotalBytes)
	g.storeDrained() // in case writers emptied them meanwhile
}

// storeDrained ends the store-full episode if the queues and spools
// together have drained to half of MaxTotalBytes. Node writers and
// spool drainers call it after each message they remove.
func (g *Gateway) storeDrained() {
	if !g.stats.storeFull.active() {
		return
	}
	t := g.st.Used()
	dropped, ended := g.stats.storeFull.end(func() bool {
		t = g.st.Used()
		m := g.cfg.Queue.MaxTotalBytes
		return m <= 0 || t.Bytes <= m/2
	})
	if ended {
		g.log.Info("the durable queues have room again: new messages are queued", "stored", t.Messages, "bytes", t.Bytes, "dropped", dropped)
	}
}
