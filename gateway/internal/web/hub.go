package web

import (
	"bytes"
	"encoding/json"
	"sync"
	"time"

	"github.com/tether-iot/tether/link"
)

// subscriber is one browser's event stream.
type subscriber struct {
	ch   chan []byte   // encoded messages, bounded
	gone chan struct{} // closed when the hub drops the subscriber
}

// hub fans updates out to the event streams. One goroutine (run) computes
// and sends every message, so each stream sees them in order: first a
// Status, then Updates. Event only marks what changed and kicks run; it
// never blocks. A subscriber whose queue is full is dropped.
type hub struct {
	s    *Server
	join chan *subscriber
	kick chan struct{} // buffer of 1: a pending kick covers later ones

	mu    sync.Mutex
	subs  map[*subscriber]struct{}
	dirty map[string]struct{} // nodes with events since the last flush
	fresh []Event             // events not yet sent
	ring  []Event             // the most recent events, oldest first
	seq   uint64

	// Owned by run.
	last       map[string][]byte // each node's row as last sent
	lastHeader []byte
}

func newHub(s *Server) *hub {
	return &hub{
		s:     s,
		join:  make(chan *subscriber),
		kick:  make(chan struct{}, 1),
		subs:  make(map[*subscriber]struct{}),
		dirty: make(map[string]struct{}),
	}
}

// event records ev and wakes run if a browser watches.
func (h *hub) event(ev link.Event) {
	e := eventOf(ev)
	h.mu.Lock()
	h.seq++
	e.Seq = h.seq
	h.ring = appendBounded(h.ring, e, h.s.cfg.RecentEvents)
	watched := len(h.subs) > 0
	if watched {
		h.dirty[ev.ID] = struct{}{}
		h.fresh = appendBounded(h.fresh, e, h.s.cfg.RecentEvents)
	}
	h.mu.Unlock()
	if watched {
		select {
		case h.kick <- struct{}{}:
		default:
		}
	}
}

func appendBounded(evs []Event, e Event, n int) []Event {
	if len(evs) >= n {
		evs = append(evs[:0], evs[len(evs)-n+1:]...)
	}
	return append(evs, e)
}

// recent returns a copy of the most recent events.
func (h *hub) recent() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Event{}, h.ring...)
}

// run sends updates until done is closed, then drops every subscriber.
func (h *hub) run(done <-chan struct{}) {
	t := time.NewTicker(h.s.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-done:
			h.mu.Lock()
			for sub := range h.subs {
				h.dropLocked(sub)
			}
			h.mu.Unlock()
			return
		case sub := <-h.join:
			h.welcome(sub)
		case <-h.kick:
			h.flush(false)
		case <-t.C:
			h.flush(true)
		}
	}
}

// welcome subscribes sub and queues the whole status as its first
// message. sub is added first, so that an event that comes meanwhile is
// flushed to it later rather than missed (the page ignores events it has
// already seen, by Seq).
func (h *hub) welcome(sub *subscriber) {
	h.mu.Lock()
	first := len(h.subs) == 0
	h.subs[sub] = struct{}{}
	h.mu.Unlock()
	st := h.s.status()
	if first {
		h.last = make(map[string][]byte, len(st.Nodes))
		for _, n := range st.Nodes {
			h.last[n.ID], _ = json.Marshal(n)
		}
		h.lastHeader = headerKey(st.Header)
	}
	sub.ch <- encode("status", st) // the queue is new and empty
}

// flush sends the rows that changed: those with events, and with all
// set, any whose counters changed since they were last sent.
func (h *hub) flush(all bool) {
	h.mu.Lock()
	if len(h.subs) == 0 {
		clear(h.dirty)
		h.fresh = nil
		h.mu.Unlock()
		h.last, h.lastHeader = nil, nil
		return
	}
	dirty := h.dirty
	h.dirty = make(map[string]struct{})
	events := h.fresh
	h.fresh = nil
	h.mu.Unlock()

	srv := h.s.srv.Load()
	var links []*link.Link
	if srv != nil {
		links = srv.Links()
	}
	up := update{Header: h.s.header(srv, links), Events: events}
	for _, n := range h.s.rows(srv, links) {
		_, ev := dirty[n.ID]
		if !all && !ev {
			continue
		}
		b, err := json.Marshal(n)
		if err != nil {
			h.s.log.Warn("status page: node row not encoded", "node", n.ID, "err", err)
			continue
		}
		if !ev && bytes.Equal(b, h.last[n.ID]) {
			continue
		}
		h.last[n.ID] = b
		up.Nodes = append(up.Nodes, b)
	}
	hk := headerKey(up.Header)
	if len(up.Nodes) == 0 && len(up.Events) == 0 && bytes.Equal(hk, h.lastHeader) {
		return
	}
	h.lastHeader = hk
	if up.Events == nil {
		up.Events = []Event{}
	}
	if up.Nodes == nil {
		up.Nodes = []json.RawMessage{}
	}
	h.broadcast(encode("update", up))
}

// headerKey is the header without its time, to tell whether it changed.
func headerKey(hd Header) []byte {
	hd.Time = time.Time{}
	b, _ := json.Marshal(hd)
	return b
}

// broadcast queues msg for every subscriber, dropping those whose queue
// is full.
func (h *hub) broadcast(msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		select {
		case sub.ch <- msg:
		default:
			h.dropLocked(sub)
			h.s.log.Warn("status page: browser too slow, event stream dropped", "queue", cap(sub.ch))
		}
	}
}

// leave unsubscribes sub.
func (h *hub) leave(sub *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropLocked(sub)
}

func (h *hub) dropLocked(sub *subscriber) {
	if _, ok := h.subs[sub]; ok {
		delete(h.subs, sub)
		close(sub.gone)
	}
}

// update is Update with rows already encoded.
type update struct {
	Header
	Nodes  []json.RawMessage `json:"nodes"`
	Events []Event           `json:"events"`
}

// encode frames one server-sent event. JSON has no raw newline, so the
// data fits on one line.
func encode(name string, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only Config.Extra can hold values that do not marshal.
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	msg := make([]byte, 0, len(b)+len(name)+16)
	msg = append(msg, "event: "...)
	msg = append(msg, name...)
	msg = append(msg, "\ndata: "...)
	msg = append(msg, b...)
	return append(msg, "\n\n"...)
}
