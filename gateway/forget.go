package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/tether-iot/tether/gateway/internal/store"
	"github.com/tether-iot/tether/server"
)

// Forgetting nodes (issue 10.2; docs/GATEWAY.md, "Forgetting nodes").
//
// A flood of connections with new IDs must not leave state behind once
// the attackers have gone. A node that is not in nodes.expect, has
// nothing queued for it (durable queue, qos-off messages), nothing
// spooled from it, and whose link has been down for nodes.forget_after
// is forgotten: its link, its row on the page and its metric series go,
// and its retained state (and discovery configs) are cleared on MQTT.
//
// What the store keeps is what exactly-once needs: a node from which the
// gateway ever accepted a message keeps its next id and its
// de-duplication window in the store, so that if it comes back mid-
// sequence (a legacy node resumes its ids after an outage) a repeat of
// its last message is still dropped. A node that never sent a message
// has no window to protect: the store forgets it entirely (a flood of
// IDs that only connect leaves nothing on disk). Forget, the operator's
// deliberate removal, deletes everything: the node's queue and spool
// too; its next message 00 starts it afresh (a restart).

// DefaultForgetAfter is nodes.forget_after when zero.
const DefaultForgetAfter = time.Hour

// ErrNodeUp is returned by Forget for a node that is connected.
var ErrNodeUp = errors.New("gateway: the node is connected")

// Forget removes node id on purpose: its link, which must be down (else
// ErrNodeUp), everything the store keeps for it (its durable queue and up
// spool included: their messages are deleted), its retained state and
// discovery configs on MQTT, its row on the page and its metric series.
// Its next connection is a new node's. It is the way to undo a typo'd
// ID, whose queue would otherwise wait for ever. It returns how many
// queued and spooled messages were deleted.
func (g *Gateway) Forget(ctx context.Context, id string) (queued, spooled int, err error) {
	if err := checkID(id); err != nil {
		return 0, 0, fmt.Errorf("gateway: %w", err)
	}
	if g.isClosed() {
		return 0, 0, ErrClosed
	}
	if err := g.forgetLink(id); err != nil {
		return 0, 0, err
	}
	queued, spooled, err = g.st.Forget(id)
	if err != nil {
		return queued, spooled, fmt.Errorf("gateway: %w", err)
	}
	if !g.unpublish(ctx, id) {
		// Cleared at the next start (or run) with the broker connected.
		if err := g.st.MarkUnpublish(id); err != nil {
			g.log.Warn("store: cannot record a forgotten node's retained state to clear", "node", id, "err", err)
		}
	}
	g.stats.forgotten.Add(1)
	g.log.Info("node forgotten (asked): its link, queue, spool and saved state are gone", "node", id, "queued", queued, "spooled", spooled)
	return queued, spooled, nil
}

func (g *Gateway) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// forgetLink drops the node's link and its state in memory.
func (g *Gateway) forgetLink(id string) error {
	if err := g.srv.Forget(id); errors.Is(err, server.ErrNodeUp) {
		return fmt.Errorf("%w: %q: forget it once it is down", ErrNodeUp, id)
	}
	g.mu.Lock()
	n := g.nodes[id]
	if n != nil {
		delete(g.nodes, id)
		if n.stranger {
			g.strangers--
		}
	}
	g.mu.Unlock()
	if n != nil {
		n.linkDown()
		n.stopForgetTimer()
	}
	return nil
}

// unpublish clears the node's retained state and discovery configs; false
// if it could not (the broker is not connected).
func (g *Gateway) unpublish(ctx context.Context, id string) bool {
	if g.bus == nil {
		return true
	}
	if !g.bus.Status().Connected {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, g.srv.Timeout())
	defer cancel()
	topics := g.retainedTopics(id) // discovery.go: state, last message, Home Assistant's
	ok := true
	for _, t := range topics {
		if err := g.publish(ctx, pubState, t, nil, true); err != nil {
			g.log.Warn("MQTT: a forgotten node's retained message not cleared", "node", id, "topic", t, "err", err)
			ok = false
		}
	}
	if ok {
		g.unpublished(id) // discovery.go
	}
	return ok
}

// unpublishForgotten clears the retained state of the nodes forgotten
// while the gateway was stopped (tether nodes forget) or its broker away,
// once the broker is connected at start.
func (g *Gateway) unpublishForgotten() {
	defer g.wg.Done()
	select {
	case <-g.busSet:
	case <-g.ctx.Done():
		return
	}
	ids, err := g.st.Unpublish()
	if err != nil {
		g.log.Warn("store: cannot read the forgotten nodes' retained state to clear", "err", err)
		return
	}
	for _, id := range ids {
		if g.lookupNode(id) != nil {
			// Back already: its state is its new one.
		} else if g.ctx.Err() != nil || !g.unpublish(g.ctx, id) {
			return // the next start tries again
		}
		if err := g.st.Unpublished(id); err != nil {
			g.log.Warn("store: cannot record a forgotten node's retained state cleared", "node", id, "err", err)
		}
	}
}

// serveForget is the admin socket's POST /v1/forget?id=ID.
func (g *Gateway) serveForget(w http.ResponseWriter, r *http.Request) {
	q, sp, err := g.Forget(r.Context(), r.URL.Query().Get("id"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(Forgotten{Queued: q, Spooled: sp})
}

// Forgotten says what forgetting a node deleted.
type Forgotten struct {
	Queued  int  `json:"queued"`  // messages for it
	Spooled int  `json:"spooled"` // messages from it not yet published
	Online  bool `json:"-"`       // the running gateway forgot it (else the store, offline)
}

// ForgetID forgets node id (see Gateway.Forget) at the gateway running
// on data directory data, through its admin socket, or, if none runs, in
// its store: its retained state is then cleared at the gateway's next
// start.
func ForgetID(ctx context.Context, data, id string) (Forgotten, error) {
	if err := checkID(id); err != nil {
		return Forgotten{}, fmt.Errorf("gateway: %w", err)
	}
	u := "http://gateway/v1/forget?id=" + url.QueryEscape(id)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return Forgotten{}, err
	}
	resp, err := adminClient(data).Do(req)
	if err == nil {
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			return Forgotten{Online: true}, fmt.Errorf("gateway: %s", strings.TrimSpace(string(b)))
		}
		var f Forgotten
		err := json.NewDecoder(resp.Body).Decode(&f)
		f.Online = true
		return f, err
	}
	if !notRunning(err) {
		return Forgotten{}, fmt.Errorf("gateway: admin socket: %w", err)
	}
	st, err := store.Open(data, time.Second)
	if errors.Is(err, store.ErrLocked) {
		return Forgotten{}, fmt.Errorf("%w, but its admin socket does not answer (%s): stop it, then forget", ErrStoreLocked, filepath.Join(data, AdminSocket))
	}
	if err != nil {
		return Forgotten{}, err
	}
	defer st.Close()
	q, sp, err := st.Forget(id)
	if err != nil {
		return Forgotten{}, err
	}
	return Forgotten{Queued: q, Spooled: sp}, st.MarkUnpublish(id)
}

// forgetAfter returns nodes.forget_after, or 0 for never.
func (g *Gateway) forgetAfter() time.Duration {
	d := time.Duration(g.cfg.Nodes.ForgetAfter)
	switch {
	case d < 0:
		return 0
	case d == 0:
		return DefaultForgetAfter
	}
	return d
}

// scheduleForget arms the node's forget timer when its link goes down
// (an expected node is never forgotten). The timer holds no goroutine.
func (g *Gateway) scheduleForget(n *nodeState) {
	d := g.forgetAfter()
	if d == 0 || g.expect[n.id] {
		return
	}
	n.wmu.Lock()
	defer n.wmu.Unlock()
	if n.forgetT != nil {
		n.forgetT.Stop()
	}
	n.forgetT = time.AfterFunc(d, func() { g.forgetIdle(n) })
}

func (n *nodeState) stopForgetTimer() {
	n.wmu.Lock()
	defer n.wmu.Unlock()
	if n.forgetT != nil {
		n.forgetT.Stop()
		n.forgetT = nil
	}
}

// forgetIdle forgets the node if it is still down with nothing queued,
// spooled or being written.
func (g *Gateway) forgetIdle(n *nodeState) {
	if !g.addWorker() {
		return
	}
	defer g.wg.Done()
	g.mu.Lock()
	current := g.nodes[n.id] == n
	g.mu.Unlock()
	if !current {
		return
	}
	if l, err := g.srv.Lookup(n.id); err == nil && l.Up() {
		return
	}
	if g.st.Len(n.id) > 0 || g.st.UpDepth(n.id).Messages > 0 {
		return // kept while messages wait: its next down arms the timer again
	}
	n.wmu.Lock()
	busy := n.writing || n.fasting || n.inflight != nil || len(n.fast) > 0
	n.wmu.Unlock()
	if busy {
		g.scheduleForget(n) // a writer ending, qos-off messages waiting: later
		return
	}
	if err := g.forgetLink(n.id); err != nil {
		return // it came up meanwhile
	}
	// In the store, only a node that never sent a message (no window
	// to keep) is forgotten.
	gone, err := g.st.ForgetIdle(n.id, false)
	if err != nil {
		g.log.Warn("store: cannot forget a node", "node", n.id, "err", err)
	}
	g.unpublish(g.ctx, n.id)
	g.stats.forgotten.Add(1)
	g.log.Info("node forgotten: down, not expected, nothing queued", "node", n.id,
		"down_for", g.forgetAfter(), "store_kept", !gone)
}

// maxNodes is the server's ID cap of nodes.max.
func (c Config) maxNodes() int {
	switch m := c.Nodes.Max; {
	case m < 0:
		return math.MaxInt
	case m == 0:
		return DefaultMaxNodes
	default:
		return m
	}
}

// DefaultMaxNodes is nodes.max when zero.
const DefaultMaxNodes = 100000
