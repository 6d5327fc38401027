package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tether-iot/tether/gateway"
	hbrowser "github.com/tether-iot/tether/internal/harness/browser"
	"github.com/tether-iot/tether/link"
)

// scaleNodes is how many node IDs TestWebAtScale floods the gateway
// with; TETHER_WEB_SCALE_NODES overrides it.
func scaleNodes(t *testing.T) int {
	if s := os.Getenv("TETHER_WEB_SCALE_NODES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("TETHER_WEB_SCALE_NODES=%q: want a positive count", s)
		}
		return n
	}
	return 10000
}

// floodWatch follows a flood's IDs through the gateway's link events.
type floodWatch struct {
	mu    sync.Mutex
	up    map[string]chan struct{} // closed at the ID's first up
	downs chan string
}

func newFloodWatch() *floodWatch {
	return &floodWatch{up: make(map[string]chan struct{}), downs: make(chan string, 1024)}
}

// expect returns a channel closed when id's link comes up.
func (w *floodWatch) expect(id string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := make(chan struct{})
	w.up[id] = ch
	return ch
}

// event is the gateway's Config.OnEvent.
func (w *floodWatch) event(ctx context.Context, ev link.Event) {
	switch ev.Kind {
	case link.Up:
		w.mu.Lock()
		if ch, ok := w.up[ev.ID]; ok {
			close(ch)
			delete(w.up, ev.ID)
		}
		w.mu.Unlock()
	case link.Down:
		select {
		case w.downs <- ev.ID:
		case <-ctx.Done():
		}
	}
}

// flood connects n nodes with new IDs (prefix + number), each sending
// its ID line and leaving as soon as its link is up, as a flood of new
// IDs does, and returns when the gateway has seen every one of them go
// down. A connection that the server closes before the link is up (a
// handshake that timed out on a loaded machine) is tried again.
func flood(t *testing.T, ctx context.Context, addr, prefix string, n int, w *floodWatch) {
	t.Helper()
	type job struct {
		id string
		i  int
	}
	ids := make(chan job)
	var wg sync.WaitGroup
	var retries atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ids {
				for {
					up := w.expect(j.id)
					// From many loopback addresses, as a flood from many
					// hosts: the server bounds handshakes per address.
					d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 1, byte(j.i/250), byte(1+j.i%250))}}
					c, err := d.DialContext(ctx, "tcp", addr)
					if err != nil {
						t.Errorf("flood: %v", err)
						return
					}
					fmt.Fprintf(c, "%s\n", j.id)
					closed := make(chan struct{})
					go func() {
						io.Copy(io.Discard, c)
						close(closed)
					}()
					again := false
					select {
					case <-up:
					case <-closed:
						again = true
						retries.Add(1)
					case <-ctx.Done():
					}
					c.Close()
					<-closed
					if !again || ctx.Err() != nil {
						break
					}
				}
			}
		}()
	}
	go func() {
		defer close(ids)
		for i := range n {
			select {
			case ids <- job{fmt.Sprintf("%s%05d", prefix, i), i}:
			case <-ctx.Done():
				return
			}
		}
	}()
	for seen := 0; seen < n; {
		select {
		case id := <-w.downs:
			if strings.HasPrefix(id, prefix) {
				seen++
			}
		case <-ctx.Done():
			wg.Wait()
			t.Fatalf("flood: %d of %d nodes seen down: %v", seen, n, ctx.Err())
		}
	}
	wg.Wait()
	if r := retries.Load(); r > 0 {
		t.Logf("flood: %d connections closed by the server before their link was up, tried again", r)
	}
}

// timedGet fetches url and returns its body and how long it took.
func timedGet(t *testing.T, ctx context.Context, url string, hdr http.Header) ([]byte, time.Duration) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	start := time.Now()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %.300s", url, resp.Status, body)
	}
	return body, time.Since(start)
}

// firstEvent reads the first server-sent event of url (its data line).
func firstEvent(t *testing.T, ctx context.Context, url string) []byte {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReaderSize(resp.Body, 1<<16)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatalf("event stream: %v", err)
		}
		if data, ok := strings.CutPrefix(string(line), "data: "); ok {
			return []byte(data)
		}
	}
}

// TestWebAtScale floods the gateway with 10,000 node IDs (they connect
// and leave) beside one honest node, then reads the metrics, the JSON
// API and the event stream, and loads the page in headless Chromium. It
// prints each one's size and time; it asserts the sizes (issue 10.2:
// 25,000 IDs gave an 8.7 MB scrape and a page that never rendered).
func TestWebAtScale(t *testing.T) {
	n := scaleNodes(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	watch := newFloodWatch()
	cfg := webOn(gwConfig(t, gateway.BrokerNone), "127.0.0.1:0")
	cfg.OnEvent = func(ev link.Event) { watch.event(ctx, ev) }
	g := startGateway(t, cfg)
	defer func() { t.Logf("server stats %+v links %d", g.Server().Stats(), len(g.Server().Links())) }()
	dialNode(t, ctx, g.Addr().String(), "honest")
	start := time.Now()
	flood(t, ctx, g.Addr().String(), "flood-", n, watch)
	t.Logf("%d IDs connected and left in %v", n, time.Since(start).Round(time.Millisecond))
	base := "http://" + g.WebAddr().String()

	body, took := timedGet(t, ctx, base+"/metrics", nil)
	series := strings.Count(string(body), "\ntether_node_up{")
	t.Logf("FIGURE /metrics: %d bytes in %v, %d nodes with per-node series", len(body), took.Round(time.Millisecond), series)
	if series > 1000 {
		t.Errorf("/metrics: per-node series for %d nodes, want at most 1000 by default", series)
	}
	if len(body) > 1<<20 {
		t.Errorf("/metrics: %d bytes, want under 1 MiB", len(body))
	}

	body, took = timedGet(t, ctx, base+"/api/status", nil)
	rows := strings.Count(string(body), `"messages_in"`)
	t.Logf("FIGURE /api/status: %d bytes in %v, %d rows", len(body), took.Round(time.Millisecond), rows)
	if rows > 1000 || len(body) > 1<<20 {
		t.Errorf("/api/status: %d rows in %d bytes, want a page (at most 1000 rows, under 1 MiB)", rows, len(body))
	}
	body, took = timedGet(t, ctx, base+"/api/nodes", nil)
	rows = strings.Count(string(body), `"messages_in"`)
	t.Logf("FIGURE /api/nodes: %d bytes in %v, %d rows", len(body), took.Round(time.Millisecond), rows)
	if rows > 1000 || len(body) > 1<<20 {
		t.Errorf("/api/nodes: %d rows in %d bytes, want a page (at most 1000 rows, under 1 MiB)", rows, len(body))
	}
	ev := firstEvent(t, ctx, base+"/events")
	rows = strings.Count(string(ev), `"messages_in"`)
	t.Logf("FIGURE /events first message: %d bytes, %d rows", len(ev), rows)
	if rows > 1000 || len(ev) > 1<<20 {
		t.Errorf("/events: first message has %d rows in %d bytes, want a page", rows, len(ev))
	}

	bctx := browser(t)
	wctx, wcancel := context.WithTimeout(bctx, 3*time.Minute)
	defer wcancel()
	start = time.Now()
	err := chromedp.Do(wctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#live[data-state="live"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-node="flood-00000"]`)),
	)
	took = time.Since(start)
	if err != nil {
		t.Fatalf("FIGURE page at %d nodes: not rendered after %v: %v", n+1, took.Round(time.Millisecond), err)
	}
	dom, err := chromedp.Run(wctx, chromedp.Evaluate[int](`document.querySelectorAll("#nodes tbody tr").length`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("FIGURE page at %d nodes: rendered in %v, %d rows in the table", n+1, took.Round(time.Millisecond), dom)
	if dom > 1000 {
		t.Errorf("page: %d rows in the table, want a page of them", dom)
	}
	start = time.Now()
	if err := chromedp.Do(wctx,
		chromedp.Navigate(base+"/?q=honest"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-node="honest"][data-state="up"]`)),
	); err != nil {
		t.Fatalf("the honest node not found by a search: %v", err)
	}
	t.Logf("FIGURE page searched for the honest node in %v", time.Since(start).Round(time.Millisecond))
}

// browser starts a headless Chromium (internal/harness/browser).
func browser(t *testing.T) context.Context { return hbrowser.Start(t, 1500, 900) }
