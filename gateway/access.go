package gateway

// Access control of the node port (docs/GATEWAY.md, "Access control"):
// TLS for Go nodes with a certificate naming their ID, IDs pinned to
// networks, and an approval mode for IDs never seen before. The server
// applies the static rules (server.Access); the gateway adds what it
// learns and keeps in the store (admit).

import (
	"container/list"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tether-iot/tether/gateway/internal/metrics"
	"github.com/tether-iot/tether/gateway/internal/store"
	"github.com/tether-iot/tether/internal/pki"
	"github.com/tether-iot/tether/server"
)

// DefaultMaxPending bounds the IDs waiting for approval when
// Config.Nodes.MaxPending is zero.
const DefaultMaxPending = 100

// NodeTLSConfig is the node port's TLS (tls: in the file), for nodes
// that run Go: on the same port as the plain nodes (the gateway tells a
// TLS ClientHello from an ID line by its first byte), each node proving
// its ID with a client certificate whose Common Name is the ID.
type NodeTLSConfig struct {
	// Enabled serves TLS nodes. With Cert, Key and CA empty, the
	// gateway's own CA in <data>/ca (made on first use, as by tether ca
	// init) signs the nodes' certificates and the gateway's.
	Enabled bool `yaml:"enabled"`
	// Cert and Key are the gateway's certificate and key (PEM); empty
	// means <data>/ca/gateway.pem, issued by the gateway's CA.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// CA is the PEM file of the CA that signs the nodes' certificates;
	// empty means the gateway's own (<data>/ca/ca.pem).
	CA string `yaml:"ca"`
	// Hosts are extra DNS names or IP addresses for the certificate the
	// gateway issues itself (Tether nodes check "tether-gateway").
	Hosts []string `yaml:"hosts"`
	// Required refuses every plain-TCP claim: only TLS nodes.
	Required bool `yaml:"required"`
	// RequiredFor lists IDs that must use TLS. Besides them, an ID is
	// TLS-only once the gateway's CA has issued a certificate for it
	// (tether ca issue), or once it has connected over TLS.
	RequiredFor []string `yaml:"required_for"`
	// RevokedSerials lists node certificates refused, by serial number
	// (hex, as tether ca issue and tether ca list print them).
	RevokedSerials []string `yaml:"revoked_serials"`
	// RevokedIDs lists node IDs refused whatever they present.
	RevokedIDs []string `yaml:"revoked_ids"`
}

func (c Config) validateAccess() error {
	t := c.TLS
	if (t.Cert == "") != (t.Key == "") {
		return bad("tls", "cert and key go together")
	}
	if !t.Enabled && (t.Required || len(t.RequiredFor) > 0) {
		return bad("tls.enabled", "tls.required and tls.required_for need TLS: set tls.enabled (or --tls)")
	}
	for i, s := range t.RevokedSerials {
		if pki.NormalizeSerial(s) == "" || strings.Trim(pki.NormalizeSerial(s), "0123456789abcdef") != "" {
			return bad(fmt.Sprintf("tls.revoked_serials[%d]", i), "%q is not a serial number in hex (tether ca list prints them)", s)
		}
	}
	for i, id := range slices.Concat(t.RequiredFor, t.RevokedIDs) {
		if err := checkID(id); err != nil {
			return bad(fmt.Sprintf("tls[%d]", i), "%v", err)
		}
	}
	if _, err := parseNets(c.Nodes.AllowFrom); err != nil {
		return bad("nodes.allow_from", "%v", err)
	}
	for id, nets := range c.Nodes.Pin {
		if err := checkID(id); err != nil {
			return bad("nodes.pin", "%v", err)
		}
		ps, err := parseNets(nets)
		if err != nil {
			return bad("nodes.pin", "node %q: %v", id, err)
		}
		if len(ps) == 0 {
			return bad("nodes.pin", "node %q: no address or network: it could never connect", id)
		}
	}
	if c.Nodes.MaxPending < 0 {
		return bad("nodes.max_pending", "must be positive")
	}
	return nil
}

// parseNets parses addresses (a single host) and CIDR networks.
func parseNets(ss []string) ([]netip.Prefix, error) {
	var ps []netip.Prefix
	for _, s := range ss {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			ps = append(ps, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a network (192.168.1.20, 192.168.1.0/24, fd00::/64)", s)
		}
		a = a.Unmap()
		ps = append(ps, netip.PrefixFrom(a, a.BitLen()))
	}
	return ps, nil
}

// serverAccess is the server's form of the config's static rules.
func (c Config) serverAccess() server.Access {
	a := server.Access{
		TLSRequired:    c.TLS.Required,
		TLSOnly:        c.TLS.RequiredFor,
		RevokedSerials: c.TLS.RevokedSerials,
		RevokedIDs:     c.TLS.RevokedIDs,
	}
	a.AllowFrom, _ = parseNets(c.Nodes.AllowFrom) // validated
	if len(c.Nodes.Pin) > 0 {
		a.Pins = make(map[string][]netip.Prefix, len(c.Nodes.Pin))
		for id, nets := range c.Nodes.Pin {
			a.Pins[id], _ = parseNets(nets)
		}
	}
	return a
}

// accessState is the gateway's side of access control.
type accessState struct {
	caDir string // the gateway's CA, if it uses its own

	mu          sync.Mutex
	pending     map[string]*list.Element // of lru, whose values are *PendingNode
	lru         list.List                // the pending IDs, most recently claimed first
	issued      map[string]bool          // IDs the gateway's CA issued a certificate for
	issuedMtime time.Time                // of the issued/ directory when last read
	pendingFull episode                  // the pending list is full: IDs dropped from it
	pendingDrop uint64                   // IDs dropped from the full list, in all
}

// PendingNode is a node ID waiting for approval (Config.Nodes.Approval):
// its claims are refused until an operator approves it.
type PendingNode struct {
	ID       string    `json:"id"`
	Remote   string    `json:"remote"` // the address of its last claim
	TLS      bool      `json:"tls"`
	First    time.Time `json:"first"`
	Last     time.Time `json:"last"`
	Attempts int       `json:"attempts"`
}

// setupAccess configures the server's TLS, Access and Admit from the
// config; it makes the gateway's CA on first use.
func (g *Gateway) setupAccess(scfg *server.Config) error {
	c := g.cfg
	g.acc.pending = make(map[string]*list.Element)
	scfg.Access = c.serverAccess()
	scfg.Admit = g.admit
	if !c.TLS.Enabled {
		return nil
	}
	cert, key := c.TLS.Cert, c.TLS.Key
	if cert == "" || c.TLS.CA == "" {
		ca, created, err := pki.Ensure(pki.Dir(c.Data))
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		if created {
			g.log.Info("TLS: made the gateway's CA; issue node credentials with tether ca issue", "dir", ca.Dir())
		}
		if c.TLS.CA == "" {
			g.acc.caDir = ca.Dir()
		}
		if cert == "" {
			if cert, key, err = ca.GatewayCredentials(c.TLS.Hosts); err != nil {
				return fmt.Errorf("tls: %w", err)
			}
		}
	}
	caFile := c.TLS.CA
	if caFile == "" {
		caFile = filepath.Join(g.acc.caDir, pki.CAFile)
	}
	pool, err := pki.LoadPool(caFile)
	if err != nil {
		return fmt.Errorf("tls.ca: %w", err)
	}
	tc, err := pki.ServerTLS(cert, key, pool)
	if err != nil {
		return fmt.Errorf("tls.cert/key: %w", err)
	}
	scfg.TLS = tc
	g.issuedIDs() // log a broken CA directory at start rather than later
	return nil
}

// admit is the server's Config.Admit: the rules the gateway learns
// (TLS-only IDs) and approval mode.
func (g *Gateway) admit(c server.Claim) error {
	flags := g.st.Access(c.ID)
	if flags&store.FlagDenied != 0 {
		return errors.New("denied by an operator (tether nodes approve lifts it)")
	}
	if c.TLS {
		if flags&store.FlagTLS == 0 {
			if err := g.st.SetAccess(c.ID, store.FlagTLS, 0); err != nil {
				g.log.Warn("store: cannot record that the node uses TLS", "node", c.ID, "err", err)
			}
		}
		// A certificate from the gateway's CA is an approval already.
		return nil
	}
	if g.cfg.TLS.Enabled {
		switch {
		case flags&store.FlagTLS != 0:
			return fmt.Errorf("%w: it connected over TLS before", server.ErrTLSRequired)
		case g.issuedIDs()[c.ID]:
			return fmt.Errorf("%w: the gateway's CA issued it a certificate", server.ErrTLSRequired)
		}
	}
	if !g.cfg.Nodes.Approval || g.expect[c.ID] || flags&store.FlagApproved != 0 {
		return nil
	}
	if g.st.Seen(c.ID) {
		// Admitted for having connected before: say so in the store,
		// where it outlives the node's forgetting (nodes.forget_after
		// drops "seen" with the rest of an idle node).
		if err := g.st.SetAccess(c.ID, store.FlagApproved, 0); err != nil {
			g.log.Warn("store: cannot record the node's approval", "node", c.ID, "err", err)
		}
		return nil
	}
	g.pend(c)
	return server.ErrPending
}

// pend lists a claim of an ID waiting for approval. The list is bounded
// (Config.Nodes.MaxPending): when it is full, the ID claimed least
// recently is dropped from it (counted), so that a flood of made-up IDs
// cannot keep a real node, which retries every 32 s at most, off the
// list for good.
func (g *Gateway) pend(c server.Claim) {
	a := &g.acc
	now := time.Now()
	max := g.cfg.Nodes.MaxPending
	var dropped string
	a.mu.Lock()
	e := a.pending[c.ID]
	if e == nil {
		if a.lru.Len() >= max {
			old := a.lru.Remove(a.lru.Back()).(*PendingNode)
			delete(a.pending, old.ID)
			a.pendingDrop++
			dropped = old.ID
		}
		e = a.lru.PushFront(&PendingNode{ID: c.ID, First: now})
		a.pending[c.ID] = e
	} else {
		a.lru.MoveToFront(e)
	}
	p := e.Value.(*PendingNode)
	p.Remote, p.TLS, p.Last = c.Remote.String(), c.TLS, now
	p.Attempts++
	first := p.Attempts == 1
	a.mu.Unlock()
	switch {
	case dropped != "":
		if a.pendingFull.hit() {
			g.log.Warn("approval: the pending list is full: the IDs claimed least recently are dropped from it (a real node comes back at its next attempt); new IDs are not logged each until it has room",
				"node", c.ID, "dropped", dropped, "remote", c.Remote.String(), "max_pending", max)
		}
	case first && !a.pendingFull.active():
		g.log.Warn("approval: a node ID never seen before waits for approval: tether nodes approve ID, or its ID published on the approval topic",
			"node", c.ID, "remote", c.Remote.String(), "tls", c.TLS, "topic", g.topics.adminTopic(g.cfg.Name, "approve"))
	}
}

// Pending returns the node IDs waiting for approval, the most recently
// claimed first.
func (g *Gateway) Pending() []PendingNode {
	a := &g.acc
	a.mu.Lock()
	ps := make([]PendingNode, 0, a.lru.Len())
	for e := a.lru.Front(); e != nil; e = e.Next() {
		ps = append(ps, *e.Value.(*PendingNode))
	}
	a.mu.Unlock()
	return ps
}

// PendingDropped returns how many IDs were dropped from the pending
// list because it was full (see Config.Nodes.MaxPending).
func (g *Gateway) PendingDropped() uint64 {
	g.acc.mu.Lock()
	defer g.acc.mu.Unlock()
	return g.acc.pendingDrop
}

// Approve approves node id (approval mode): its next claim is served. It
// is kept in the store; an ID need not be pending to be approved.
func (g *Gateway) Approve(id string) error {
	if err := checkID(id); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	if err := g.st.SetAccess(id, store.FlagApproved, store.FlagDenied); err != nil {
		return err
	}
	g.unpend(id)
	g.log.Info("approval: node ID approved", "node", id)
	return nil
}

// Deny refuses node id's claims from now on, whatever they present and in
// any mode, without listing it as pending; Approve lifts it. It is kept
// in the store.
func (g *Gateway) Deny(id string) error {
	if err := checkID(id); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	if err := g.st.SetAccess(id, store.FlagDenied, store.FlagApproved); err != nil {
		return err
	}
	g.unpend(id)
	g.log.Info("approval: node ID denied", "node", id)
	// A device connected under the ID now is dropped at once, not at its
	// next connection (a stolen node's, say); its messages stay queued.
	if l, err := g.srv.Lookup(id); err == nil && l.Disconnect(errDenied) {
		g.log.Warn("approval: a denied node ID was connected: its connection is closed", "node", id)
	}
	return nil
}

// errDenied is why a denied node's connection is closed.
var errDenied = errors.New("node ID denied")

func (g *Gateway) unpend(id string) {
	a := &g.acc
	a.mu.Lock()
	if e := a.pending[id]; e != nil {
		a.lru.Remove(e)
		delete(a.pending, id)
	}
	left := a.lru.Len()
	a.mu.Unlock()
	if n, ended := a.pendingFull.end(func() bool { return left < g.cfg.Nodes.MaxPending }); ended {
		g.log.Info("approval: the pending list has room again", "dropped", n)
	}
}

// issuedIDs returns the IDs the gateway's CA issued a certificate for:
// they are TLS-only, even once it has expired or been revoked (an ID
// never falls back to plain TCP by itself; delete its files in
// <data>/ca/issued to allow it). It reads the issued/ directory again
// only when it has changed (one stat).
func (g *Gateway) issuedIDs() map[string]bool {
	a := &g.acc
	if a.caDir == "" {
		return nil
	}
	dir := filepath.Join(a.caDir, pki.IssuedDir)
	fi, err := os.Stat(dir)
	var mtime time.Time
	if err == nil {
		mtime = fi.ModTime()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.issued != nil && mtime.Equal(a.issuedMtime) {
		return a.issued
	}
	ids := make(map[string]bool)
	if err == nil {
		ca, err := pki.Open(a.caDir)
		var certs []*x509.Certificate
		if err == nil {
			certs, err = ca.List()
		}
		if err != nil {
			g.log.Warn("TLS: cannot read the certificates the CA issued", "dir", dir, "err", err)
		}
		for _, c := range certs {
			ids[pki.NodeID(c)] = true
		}
	}
	a.issued, a.issuedMtime = ids, mtime
	return ids
}

var (
	descPending = prometheus.NewDesc(metrics.Namespace+"_nodes_pending",
		"Node IDs waiting for approval (nodes.approval), listed by tether nodes pending.", nil, nil)
	descPendingDropped = prometheus.NewDesc(metrics.Namespace+"_nodes_pending_dropped_total",
		"Node IDs dropped from the pending list because it was full (nodes.max_pending): the least recently claimed first.", nil, nil)
)

// accessCollector exports the approval list's size; the refusals are the
// server's (tether_handshake_rejections_total).
type accessCollector struct{ g *Gateway }

func (c accessCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPending
	ch <- descPendingDropped
}

func (c accessCollector) Collect(ch chan<- prometheus.Metric) {
	a := &c.g.acc
	a.mu.Lock()
	n, dropped := a.lru.Len(), a.pendingDrop
	a.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(descPendingDropped, prometheus.CounterValue, float64(dropped))
}
