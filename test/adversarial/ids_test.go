package adversarial

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/tether-iot/tether/gateway"
)

// lookAlikes are IDs that look like the honest node's (issue 10.8).
var lookAlikes = []string{
	honestID + "\u200b",            // zero-width space
	"\u200d" + honestID,            // zero-width joiner
	honestID + "\ufeff",            // zero-width no-break space
	"\u202e" + honestID,            // right-to-left override
	"hon\u00adest",                 // soft hyphen
	honestID + "\u00a0",            // no-break space
	" " + honestID,                 // leading space
	honestID + " ",                 // trailing space
	"hon\u2009est",                 // thin space
	honestID + "\ufe0f",            // variation selector
	"hon\u034fest",                 // combining grapheme joiner
	"\u2066" + honestID + "\u2069", // isolate
}

// TestLookAlikeIDs (issue 10.8): nodes whose IDs look like the honest
// node's are refused at the handshake, counted, and logged with the ID
// escaped; messages published on their down topics make no queue.
func TestLookAlikeIDs(t *testing.T) {
	h := start(t, options{})
	pub := h.attackerMQTT(t)
	var e errs
	h.attack(func(ctx context.Context) {
		for i, id := range lookAlikes {
			c, err := dialFrom(ctx, source(i), h.nodeAddr)
			if err != nil {
				e.add(err)
				continue
			}
			c.Write([]byte(id + "\n00hello\n"))
			e.add(waitClosedByPeer(c, 4*T))
			c.Close()
			if err := waitToken(ctx, pub.Publish(h.g.Topics().Down(id), 1, false, "for a look-alike")); err != nil {
				e.add(err)
			}
		}
	})
	e.check(t)
	st := h.g.Server().Stats()
	if st.BadID != uint64(len(lookAlikes)) {
		t.Errorf("BadID %d, want %d (every look-alike refused and counted): %+v", st.BadID, len(lookAlikes), st)
	}
	if nodes := h.g.Server().Nodes(); len(nodes) != 1 || nodes[0] != honestID {
		t.Errorf("nodes %q, want only %q", nodes, honestID)
	}
	logs := h.logs.text()
	for _, id := range lookAlikes[:8] { // the first 8 are each logged
		if q := strconv.QuoteToASCII(id); !strings.Contains(logs, fmt.Sprintf("id=%q", q)) {
			t.Errorf("no log line with the refused ID escaped as %s", q)
		}
		if h.g.Queue(id).Messages != 0 {
			t.Errorf("a queue was made for %s", strconv.QuoteToASCII(id))
		}
	}
	if strings.Contains(logs, "\u200b") || strings.Contains(logs, "\u202e") {
		t.Error("an invisible character reached the log unescaped")
	}
}

// The config refuses look-alike IDs in nodes.expect and routes.
func TestLookAlikeConfig(t *testing.T) {
	for _, id := range lookAlikes {
		cfg := gateway.Config{Data: t.TempDir(), Logger: slog.New(slog.DiscardHandler), Nodes: gateway.NodesConfig{Expect: []string{id}}}
		g, err := gateway.New(cfg)
		if err == nil {
			g.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "nodes.expect[0]") {
			t.Errorf("expect %s: %v, want refused", strconv.QuoteToASCII(id), err)
		}
	}
}
