package web

import (
	"embed"
	"encoding/json"
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
		writeJSON(w, http.StatusOK, s.status())
	})
	mux.HandleFunc("GET /api/nodes", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.status().Nodes)
	})
	mux.HandleFunc("GET /api/nodes/{id...}", s.serveNode)
	mux.HandleFunc("GET /events", s.serveEvents)
	mux.Handle("GET /metrics", s.metrics.Handler())
	return mux
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

// serveEvents streams the page's updates (see hub): a Status first, then
// Updates, and a comment every 15 s so that proxies keep the stream open.
// The stream ends when the browser goes, the server closes, or the
// browser falls too far behind (its page reconnects after a second).
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")

	sub := &subscriber{ch: make(chan []byte, s.cfg.SubscriberQueue), gone: make(chan struct{})}
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
