package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"slices"
	"time"
)

//go:embed assets
var assets embed.FS

// csp keeps the page to its own origin: no CDN, no inline code.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (s *Server) routes() http.Handler {
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(static)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		page(w)
		http.ServeFileFS(w, r, static, "index.html")
	})
	for _, name := range []string{"/app.js", "/style.css"} {
		mux.HandleFunc("GET "+name, func(w http.ResponseWriter, r *http.Request) {
			page(w)
			files.ServeHTTP(w, r)
		})
	}
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		if q, ok := query(w, r); ok {
			writeJSON(w, http.StatusOK, s.status(q))
		}
	})
	mux.HandleFunc("GET /api/nodes", func(w http.ResponseWriter, r *http.Request) {
		if q, ok := query(w, r); ok {
			writeJSON(w, http.StatusOK, s.page(s.readTable(s.srv.Load()), q))
		}
	})
	mux.HandleFunc("GET /api/nodes/{id...}", s.serveNode)
	if s.cfg.Send != nil {
		mux.HandleFunc("POST /api/nodes/{id}/send", s.access.action(s.serveSend))
	}
	if s.cfg.Forget != nil {
		mux.HandleFunc("POST /api/nodes/{id}/forget", s.access.action(s.serveForget))
	}
	if s.cfg.Pending != nil {
		mux.HandleFunc("GET /api/pending", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, s.pending(-1))
		})
	}
	if s.cfg.Approve != nil {
		mux.HandleFunc("POST /api/pending/{id}/approve", s.access.action(s.verdict("approved", s.cfg.Approve)))
	}
	if s.cfg.Deny != nil {
		mux.HandleFunc("POST /api/pending/{id}/deny", s.access.action(s.verdict("denied", s.cfg.Deny)))
	}
	mux.HandleFunc("GET /events", s.serveEvents)
	mux.Handle("GET /metrics", s.metrics.Handler())
	return s.access.guard(mux)
}

// query parses r's Query, or answers 400.
func query(w http.ResponseWriter, r *http.Request) (Query, bool) {
	q, err := ParseQuery(r.URL.Query())
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return q, false
	}
	return q, true
}

// known reports whether id is a row of the table: a node that connected,
// or an offline one.
func (s *Server) known(id string) bool {
	srv := s.srv.Load()
	if srv == nil {
		return false
	}
	if _, err := srv.Lookup(id); err == nil {
		return true
	}
	return slices.Contains(s.offline(srv), id)
}

// serveSend writes {"payload": "..."} to node id (Config.Send).
func (s *Server) serveSend(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var body struct {
		Payload string `json:"payload"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, int64(8*s.cfg.MaxPayload+1024)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want {\"payload\": \"...\"}: " + err.Error()})
		return
	}
	if body.Payload == "" || len(body.Payload) > s.cfg.MaxPayload {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("payload of %d bytes: want 1 to %d", len(body.Payload), s.cfg.MaxPayload)})
		return
	}
	if !s.known(id) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown node"})
		return
	}
	if err := s.cfg.Send(r.Context(), id, body.Payload); err != nil {
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
		return
	}
	s.log.Info("status page: message queued for a node", "node", id, "bytes", len(body.Payload), "remote", r.RemoteAddr)
	s.hub.poke()
	writeJSON(w, http.StatusAccepted, map[string]any{"queued": true})
}

// page sets the headers of the page's files: always revalidated (the
// page changes with the binary), and kept to their own origin.
func page(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

func (s *Server) serveNode(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	srv := s.srv.Load()
	if srv == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown node"})
		return
	}
	l, err := srv.Lookup(id)
	if err != nil {
		if slices.Contains(s.offline(srv), id) {
			writeJSON(w, http.StatusOK, s.offlineNode(id))
			return
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown node"})
		return
	}
	writeJSON(w, http.StatusOK, s.node(l, srv.Timeout()))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// emptyBody reads an action's body, which must be a JSON object (its
// fields are ignored) or nothing, or answers 400.
func emptyBody(w http.ResponseWriter, r *http.Request) bool {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1024))
	var v map[string]any
	if err == nil && len(bytes.TrimSpace(b)) > 0 {
		err = json.Unmarshal(b, &v)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want a JSON object ({}): " + err.Error()})
		return false
	}
	return true
}

// serveForget removes node id (Config.Forget).
func (s *Server) serveForget(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !emptyBody(w, r) {
		return
	}
	if !s.known(id) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown node"})
		return
	}
	queued, spooled, err := s.cfg.Forget(r.Context(), id)
	if err != nil {
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
		return
	}
	s.log.Info("status page: node forgotten", "node", id, "queued", queued, "spooled", spooled, "remote", r.RemoteAddr)
	s.hub.poke()
	writeJSON(w, http.StatusOK, map[string]any{"forgotten": id, "queued": queued, "spooled": spooled})
}

// verdict is an approval action: fn (Config.Approve or Deny) on node
// id, said as done ("approved", "denied").
func (s *Server) verdict(done string, fn func(id string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if !emptyBody(w, r) {
			return
		}
		if err := fn(id); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		s.log.Info("status page: node ID "+done, "node", id, "remote", r.RemoteAddr)
		s.hub.poke()
		writeJSON(w, http.StatusOK, map[string]string{done: id})
	}
}

// serveEvents streams the updates of the page that the request's Query
// selects (see hub): a Status first, then Updates, and a comment every 15 s so that proxies keep the stream open.
// The stream ends when the browser goes, the server closes, or the
// browser falls too far behind (its page reconnects after a second).
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	sub := &subscriber{ch: make(chan []byte, s.cfg.SubscriberQueue), gone: make(chan struct{}), q: q}
	select {
	case s.hub.join <- sub:
	case <-ctx.Done():
		return
	case <-s.done:
		http.Error(w, "closing", http.StatusServiceUnavailable)
		return
	}
	defer s.hub.leave(sub)
	// Leave no deadline behind for the connection's next request.
	defer rc.SetWriteDeadline(time.Time{})

	write := func(b []byte) bool {
		if err := rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)); err != nil && err != http.ErrNotSupported {
			return false
		}
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write([]byte("retry: 1000\n\n")) {
		return
	}
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case msg := <-sub.ch:
			if !write(msg) {
				return
			}
		case <-ping.C:
			if !write([]byte(": ping\n\n")) {
				return
			}
		case <-sub.gone:
			return
		case <-ctx.Done():
			return
		case <-s.done:
			return
		}
	}
}
