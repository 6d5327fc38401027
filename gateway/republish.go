package gateway

import "context"

// republishSoon asks the republisher to publish every node's retained
// state (and Home Assistant discovery configs) again. The bus calls it
// after each reconnection: a broker restarted without persistence has
// lost them, and Home Assistant would show every node unavailable until
// its state changed; and so does Home Assistant's online message
// (discovery.go). It never blocks; requests made meanwhile merge.
func (g *Gateway) republishSoon() {
	select {
	case g.republishReq <- struct{}{}:
	default:
	}
}

// republisher publishes the retained state of every node again on each
// request, until the gateway stops. Publishing retained messages that the
// broker still has is harmless: they are the same.
func (g *Gateway) republisher() {
	defer g.wg.Done()
	for {
		select {
		case <-g.republishReq:
		case <-g.ctx.Done():
			return
		}
		g.ha.kick() // the last messages waiting for the broker (ha.go)
		if g.cfg.Discovery.Enabled {
			ctx, cancel := context.WithTimeout(g.ctx, 4*g.srv.Timeout())
			if err := g.announceGateway(ctx); err != nil {
				g.log.Warn("MQTT: Home Assistant discovery of the gateway not published again", "err", err)
			}
			cancel()
		}
		g.mu.Lock()
		nodes := make([]*nodeState, 0, len(g.nodes))
		for _, n := range g.nodes {
			nodes = append(nodes, n)
		}
		g.mu.Unlock()
		for _, n := range nodes {
			if g.ctx.Err() != nil {
				return
			}
			if g.cfg.Discovery.Enabled {
				ctx, cancel := context.WithTimeout(g.ctx, 4*g.srv.Timeout())
				if err := g.announce(ctx, n.id); err != nil {
					g.log.Warn("MQTT: Home Assistant discovery not published again", "node", n.id, "err", err)
				}
				cancel()
			}
			g.publishState(n, false, true)
		}
		g.log.Info("MQTT: node states published again", "nodes", len(nodes), "discovery", g.cfg.Discovery.Enabled)
	}
}
