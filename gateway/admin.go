package gateway

// The admin socket: a Unix socket in the data directory (0600, in a 0700
// directory: the gateway's own user only) through which tether nodes
// pending/approve/deny reach the running gateway. The store cannot be
// shared (bbolt locks it), so without a running gateway those commands
// open the store themselves.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tether-iot/tether/gateway/internal/bus"
	"github.com/tether-iot/tether/gateway/internal/store"
)

// AdminSocket is the file name of the gateway's admin socket in its data
// directory.
const AdminSocket = "admin.sock"

// ErrNotRunning: no gateway serves this data directory's admin socket.
var ErrNotRunning = errors.New("gateway: no gateway running on this data directory")

// startAdmin serves the admin socket; a failure (a path too long for a
// Unix socket, say) is logged: the gateway runs without it.
func (g *Gateway) startAdmin() {
	path := filepath.Join(g.cfg.Data, AdminSocket)
	// The store's lock is ours: a socket left there is a dead gateway's.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		g.log.Warn("admin socket: cannot remove the old one; tether nodes will open the store instead", "path", path, "err", err)
		return
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "unix", path)
	if err != nil {
		g.log.Warn("admin socket: cannot listen; tether nodes approve works only while the gateway is stopped", "path", path, "err", err)
		return
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		g.log.Warn("admin socket: cannot restrict it to this user; not served", "path", path, "err", err)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/pending", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(g.Pending())
	})
	act := func(do func(string) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if err := do(r.URL.Query().Get("id")); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}
	}
	mux.HandleFunc("POST /v1/approve", act(g.Approve))
	mux.HandleFunc("POST /v1/deny", act(g.Deny))
	mux.HandleFunc("POST /v1/forget", g.serveForget) // forget.go
	mux.HandleFunc("GET /v1/backup", g.serveBackup)  // backup.go
	g.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := g.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Warn("admin socket failed", "err", err)
		}
	}()
}

// closeAdmin closes the admin socket and removes its file.
func (g *Gateway) closeAdmin() {
	if g.admin == nil {
		return
	}
	g.admin.Close()
	os.Remove(filepath.Join(g.cfg.Data, AdminSocket))
}

// adminClient is an HTTP client of the admin socket in data.
func adminClient(data string) *http.Client {
	path := filepath.Join(data, AdminSocket)
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

// notRunning reports whether err means nobody serves the socket.
func notRunning(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
}

// ListPending returns the IDs waiting for approval at the gateway
// running on data directory data; ErrNotRunning if none runs (the
// pending list lives in the running gateway only).
func ListPending(ctx context.Context, data string) ([]PendingNode, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://gateway/v1/pending", nil)
	if err != nil {
		return nil, err
	}
	resp, err := adminClient(data).Do(req)
	if err != nil {
		if notRunning(err) {
			return nil, ErrNotRunning
		}
		return nil, fmt.Errorf("gateway: admin socket: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return nil, fmt.Errorf("gateway: %s", strings.TrimSpace(string(b)))
	}
	var ps []PendingNode
	if err := json.NewDecoder(resp.Body).Decode(&ps); err != nil {
		return nil, fmt.Errorf("gateway: admin socket: %w", err)
	}
	return ps, nil
}

// ApproveID approves node id at the gateway running on data directory
// data, or, if none runs, in its store; online says which.
func ApproveID(ctx context.Context, data, id string) (online bool, err error) {
	return adminAct(ctx, data, "approve", id, store.FlagApproved, store.FlagDenied)
}

// DenyID denies node id at the gateway running on data directory data,
// or, if none runs, in its store; online says which.
func DenyID(ctx context.Context, data, id string) (online bool, err error) {
	return adminAct(ctx, data, "deny", id, store.FlagDenied, store.FlagApproved)
}

func adminAct(ctx context.Context, data, verb, id string, set, clear uint8) (bool, error) {
	if err := checkID(id); err != nil {
		return false, fmt.Errorf("gateway: %w", err)
	}
	u := "http://gateway/v1/" + verb + "?id=" + url.QueryEscape(id)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return false, err
	}
	resp, err := adminClient(data).Do(req)
	if err == nil {
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			return true, fmt.Errorf("gateway: %s", strings.TrimSpace(string(b)))
		}
		return true, nil
	}
	if !notRunning(err) {
		return false, fmt.Errorf("gateway: admin socket: %w", err)
	}
	st, err := store.Open(data, time.Second)
	if errors.Is(err, store.ErrLocked) {
		return false, fmt.Errorf("%w, but its admin socket does not answer (%s): approve on its status page or by MQTT, or stop it", err, filepath.Join(data, AdminSocket))
	}
	if err != nil {
		return false, err
	}
	defer st.Close()
	return false, st.SetAccess(id, set, clear)
}

// adminTopic is the MQTT topic of an approval verb ("approve", "deny").
func (t Topics) adminTopic(name, verb string) string {
	return t.Prefix + "/$admin/" + name + "/" + verb
}

// subscribeAdmin subscribes to the approval topics in approval mode.
func (g *Gateway) subscribeAdmin(ctx context.Context) error {
	if !g.cfg.Nodes.Approval {
		return nil
	}
	return g.bus.Subscribe(ctx, g.topics.adminTopic(g.cfg.Name, "approve"), g.topics.adminTopic(g.cfg.Name, "deny"))
}

// fromAdminTopic handles a message on an approval topic: its payload is
// the node ID. It reports whether m was one.
func (g *Gateway) fromAdminTopic(m bus.Message) bool {
	var do func(string) error
	switch m.Topic {
	case g.topics.adminTopic(g.cfg.Name, "approve"):
		do = g.Approve
	case g.topics.adminTopic(g.cfg.Name, "deny"):
		do = g.Deny
	default:
		return false
	}
	if !g.cfg.Nodes.Approval {
		return true
	}
	id := strings.TrimSpace(string(m.Payload))
	if err := do(id); err != nil {
		g.log.Warn("MQTT: approval message ignored", "topic", m.Topic, "origin", m.Origin, "err", err)
		return true
	}
	g.log.Info("MQTT: approval message", "topic", m.Topic, "node", id, "origin", m.Origin)
	return true
}
