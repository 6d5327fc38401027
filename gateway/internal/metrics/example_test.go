package metrics_test

import (
	"bufio"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/tether-iot/tether/gateway/internal/metrics"
	"github.com/tether-iot/tether/server"
)

// The Collector goes into the server's Configure hook (for the ACK
// round-trip histogram) before the server exists, and is given the server
// once it does.
func Example() {
	col := metrics.New(metrics.Config{})
	srv, err := server.New(server.Config{Configure: col.Configure})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	col.SetServer(srv)

	rec := httptest.NewRecorder()
	col.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		for _, name := range []string{"tether_nodes ", "tether_nodes_up ", "tether_nodes_messages_total{", "tether_timeout_seconds "} {
			if strings.HasPrefix(sc.Text(), name) {
				fmt.Println(sc.Text())
			}
		}
	}
	// Output:
	// tether_nodes 0
	// tether_nodes_messages_total{direction="in"} 0
	// tether_nodes_messages_total{direction="out"} 0
	// tether_nodes_up 0
	// tether_timeout_seconds 2
}
