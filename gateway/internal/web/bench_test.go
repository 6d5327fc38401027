package web

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/tether-iot/tether/server"
)

// BenchmarkRefresh10k: one refresh of a browser's page (the table read,
// one page of 100 rows compared and sent) with 10,000 rows in the table
// (offline IDs, each with a durable queue), and the same with the whole
// table as one page (the old behaviour: every row compared each second).
func BenchmarkRefresh10k(b *testing.B) {
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = fmt.Sprintf("node-%05d", i)
	}
	srv, err := server.New(server.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	for _, limit := range []int{DefaultPageSize, 10000} {
		b.Run(fmt.Sprintf("page=%d", limit), func(b *testing.B) {
			s, err := New(Config{Server: srv, Logger: slog.New(slog.DiscardHandler), Refresh: time.Hour,
				Offline: func() []string { return ids },
				Queue:   func(id string) Queue { return Queue{Stored: len(id)} }})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			sub := &subscriber{ch: make(chan []byte, 4), gone: make(chan struct{}), q: Query{Limit: limit}}
			s.hub.mu.Lock()
			s.hub.subs[sub] = struct{}{}
			s.hub.mu.Unlock()
			sent := 0
			b.ResetTimer()
			for range b.N {
				sub.last = nil // every row counts as changed: the worst case
				s.hub.flush(true)
				msg := <-sub.ch
				sent += len(msg)
			}
			b.ReportMetric(float64(sent)/float64(b.N), "bytes/refresh")
		})
	}
}
