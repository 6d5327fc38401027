package web

import (
	"bytes"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/tether-iot/tether/link"
)

// subscriber is one browser's event stream, which watches one page of
// the table (its Query).
type subscriber struct {
	ch   chan []byte   // encoded messages, bounded
	gone chan struct{} // closed when the hub drops the subscriber
	q    Query

	// Owned by the hub's run goroutine: what the browser was last sent.
	last   map[string][]byte // the page's rows
	ids    []string          // the page's IDs, in order
	header []byte            // the header and counts, without the time
}

// hub fans updates out to the event streams. One goroutine (run) computes
// and sends every message, so each stream sees them in order: first a
// Status, then Updates. Event only marks what changed and kicks run; it
// never blocks. A subscriber whose queue is full is dropped. Each
// browser is sent its own page's changes only: the table is read once
// per refresh, and each page (Query) computed once for the browsers that
// watch it.
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
}

// kickGap is the least time between two flushes that events ask for: a
// burst of events (a flood of connections) costs one reading of the
// table per gap, not one per event.
const kickGap = 50 * time.Millisecond

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

// poke wakes run to send what changed (after an action) if a browser
// watches.
func (h *hub) poke() {
	select {
	case h.kick <- struct{}{}:
	default:
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
	gap := min(kickGap, h.s.cfg.Refresh)
	var soon *time.Timer
	var soonC <-chan time.Time // set while a kicked flush waits for the gap
	var last time.Time
	defer func() {
		if soon != nil {
			soon.Stop()
		}
	}()
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
			if wait := gap - time.Since(last); wait > 0 {
				if soonC == nil {
					soon = time.NewTimer(wait)
					soonC = soon.C
				}
				continue
			}
			h.flush(false)
			last = time.Now()
		case <-soonC:
			soonC = nil
			h.flush(false)
			last = time.Now()
		case <-t.C:
			h.flush(true)
			last = time.Now()
		}
	}
}

// welcome subscribes sub and queues its page's status as its first
// message. sub is added first, so that an event that comes meanwhile is
// flushed to it later rather than missed (the page ignores events it has
// already seen, by Seq).
func (h *hub) welcome(sub *subscriber) {
	h.mu.Lock()
	h.subs[sub] = struct{}{}
	h.mu.Unlock()
	tb := h.s.readTable(h.s.srv.Load())
	st := Status{Header: h.s.header(tb), Page: h.s.page(tb, sub.q), Events: h.recent()}
	sub.last = make(map[string][]byte, len(st.Nodes))
	sub.ids = make([]string, 0, len(st.Nodes))
	for _, n := range st.Nodes {
		sub.last[n.ID], _ = json.Marshal(n)
		sub.ids = append(sub.ids, n.ID)
	}
	sub.header = headerKey(st.Header, st.Total, st.Matched)
	sub.ch <- encode("status", st) // the queue is new and empty
}

// flush sends each browser the rows of its page that changed: those with
// events, those new to the page, and with all set, any whose counters
// changed since they were last sent; and the page's IDs if they changed.
func (h *hub) flush(all bool) {
	h.mu.Lock()
	if len(h.subs) == 0 {
		clear(h.dirty)
		h.fresh = nil
		h.mu.Unlock()
		return
	}
	dirty := h.dirty
	h.dirty = make(map[string]struct{})
	events := h.fresh
	h.fresh = nil
	subs := make([]*subscriber, 0, len(h.subs))
	for sub := range h.subs {
		subs = append(subs, sub)
	}
	h.mu.Unlock()
	if events == nil {
		events = []Event{}
	}

	tb := h.s.readTable(h.s.srv.Load())
	hd := h.s.header(tb)
	rows := make(map[string][]byte)     // rows read in this flush, by ID
	matches := make(map[string][]entry) // matching entries, by query
	for _, sub := range subs {
		key := sub.q.key()
		m, ok := matches[key]
		if !ok {
			m = tb.match(sub.q)
			matches[key] = m
		}
		win := sub.q.window(m)
		up := update{Header: hd, Total: len(tb.entries), Matched: len(m), Events: events, Nodes: []json.RawMessage{}}
		ids := make([]string, len(win))
		last := make(map[string][]byte, len(win))
		for i, e := range win {
			ids[i] = e.id
			_, ev := dirty[e.id]
			prev, had := sub.last[e.id]
			if !all && !ev && had {
				last[e.id] = prev
				continue
			}
			b, ok := rows[e.id]
			if !ok {
				var err error
				b, err = json.Marshal(h.s.row(e, tb.T))
				if err != nil {
					h.s.log.Warn("status page: node row not encoded", "node", e.id, "err", err)
					continue
				}
				rows[e.id] = b
			}
			last[e.id] = b
			if !ev && had && bytes.Equal(b, prev) {
				continue
			}
			up.Nodes = append(up.Nodes, b)
		}
		if !slices.Equal(ids, sub.ids) {
			up.IDs = &ids
		}
		hk := headerKey(hd, up.Total, up.Matched)
		if len(up.Nodes) == 0 && len(events) == 0 && up.IDs == nil && bytes.Equal(hk, sub.header) {
			continue
		}
		sub.last, sub.ids, sub.header = last, ids, hk
		h.send(sub, encode("update", up))
	}
}

// headerKey is the header and a page's counts without the time, to tell
// whether they changed.
func headerKey(hd Header, total, matched int) []byte {
	hd.Time = time.Time{}
	b, _ := json.Marshal(struct {
		Header
		Total, Matched int
	}{hd, total, matched})
	return b
}

// broadcast queues msg for every subscriber, dropping those whose queue
// is full.
func (h *hub) broadcast(msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		h.sendLocked(sub, msg)
	}
}

// send queues msg for sub, dropping it if its queue is full.
func (h *hub) send(sub *subscriber, msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sendLocked(sub, msg)
}

func (h *hub) sendLocked(sub *subscriber, msg []byte) {
	if _, ok := h.subs[sub]; !ok {
		return
	}
	select {
	case sub.ch <- msg:
	default:
		h.dropLocked(sub)
		h.s.log.Warn("status page: browser too slow, event stream dropped", "queue", cap(sub.ch))
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
	Total   int               `json:"total"`
	Matched int               `json:"matched"`
	IDs     *[]string         `json:"ids,omitempty"` // nil: unchanged
	Nodes   []json.RawMessage `json:"nodes"`
	Events  []Event           `json:"events"`
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
