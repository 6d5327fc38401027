package gateway

import (
	"fmt"
	"os"
	"strings"

	"github.com/tether-iot/tether/gateway/internal/metrics"
	"github.com/tether-iot/tether/gateway/internal/web"
	"github.com/tether-iot/tether/internal/passwd"
	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// validate checks the web fields that need no file.
func (w WebConfig) validate() error {
	if w.MaxNodeMetrics < -1 {
		return bad("web.max_node_metrics", "%d: write a count of nodes, 0 for the default (%d) or -1 for no bound", w.MaxNodeMetrics, metrics.DefaultMaxNodes)
	}
	for i, h := range w.Hosts {
		if h == "" || strings.ContainsAny(h, "/ ") {
			return bad(fmt.Sprintf("web.hosts[%d]", i), "%q: write a host name, such as tether.example.net", h)
		}
	}
	return nil
}

// newWeb makes the status page and its metrics, reading the
// credentials' files, and hooks them into scfg.
func (g *Gateway) newWeb(scfg *server.Config) error {
	cfg := g.cfg
	wc := web.Config{
		Addr:        cfg.Web.Addr,
		Title:       "Tether gateway",
		Name:        cfg.Name,
		Version:     Version(), // buildinfo.go
		Logger:      cfg.Logger,
		Queue:       g.webQueue,
		Offline:     g.offline,
		LastMessage: g.webLast,
		Topics:      g.webTopics,
		Broker:      g.webBroker,
		Send:        g.Send,
		Forget:      g.Forget,
		Insecure:    cfg.Web.Insecure,
		Hosts:       cfg.Web.Hosts,
	}
	if cfg.Nodes.Approval {
		wc.Pending = g.webPending
		wc.Approve = g.Approve
		wc.Deny = g.Deny
	}
	wc.MaxPayload = cfg.MaxLine
	if wc.MaxPayload == 0 {
		wc.MaxPayload = link.DefaultMaxLine
	}
	if f := cfg.Web.TokenFile; f != "" {
		tok, err := passwd.ReadSecret(f)
		if err != nil {
			return bad("web.token_file", "%v", err)
		}
		if len(tok) < web.MinTokenLen {
			return bad("web.token_file", "%s: the token has %d characters, want at least %d (make one with: openssl rand -hex 16 > %s)", f, len(tok), web.MinTokenLen, f)
		}
		warnReadable(g, "web.token_file", f)
		wc.Token = tok
	}
	if f := cfg.Web.UsersFile; f != "" {
		users, err := passwd.Load(f)
		if err != nil {
			return bad("web.users_file", "%v", err)
		}
		warnReadable(g, "web.users_file", f)
		wc.Users = users
	}
	level, _ := metrics.ParseNodeMetrics(cfg.Web.NodeMetrics) // validated
	col := metrics.New(metrics.Config{
		Stored: g.st.Len, Spooled: g.spooledOf, Dropped: g.droppedOf, Offline: g.offline,
		NodeMetrics: level, MaxNodes: cfg.Web.MaxNodeMetrics,
		Priority: func(id string) bool { return g.expect[id] },
		Logger:   cfg.Logger,
	})
	col.Registry().MustRegister(collector{g}, brokerCollector{g}, accessCollector{g}, buildCollector{g})
	wc.Metrics = col
	w, err := web.New(wc)
	if err != nil {
		return err
	}
	g.web = w
	w.Hook(scfg)
	return nil
}

// webPending is the approval list for the page.
func (g *Gateway) webPending() web.Pending {
	ps := g.Pending()
	p := web.Pending{Dropped: g.PendingDropped(), Nodes: make([]web.PendingNode, len(ps))}
	for i, n := range ps {
		p.Nodes[i] = web.PendingNode(n)
	}
	return p
}

// warnReadable logs a warning if a file of secrets can be read by users
// other than its owner.
func warnReadable(g *Gateway, key, path string) {
	fi, err := os.Stat(path)
	if err == nil && fi.Mode().Perm()&0o077 != 0 {
		g.log.Warn("a file of credentials is readable by other users: chmod 600 it", "setting", key, "file", path, "mode", fi.Mode().Perm().String())
	}
}
