package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tether-iot/tether/gateway"
	"github.com/tether-iot/tether/internal/buildinfo"
)

// TestBuildInfo: the running build's version is on /metrics
// (tether_build_info) and in the status data the page reads.
func TestBuildInfo(t *testing.T) {
	ctx := testCtx(t)
	cfg := gwConfig(t, gateway.BrokerNone)
	on := true
	cfg.Web = gateway.WebConfig{Addr: "127.0.0.1:0", Enabled: &on}
	g := startGateway(t, cfg)
	get := func(path string) string {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+g.WebAddr().String()+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	defer http.DefaultClient.CloseIdleConnections()

	i := buildinfo.Read()
	want := fmt.Sprintf(`tether_build_info{goversion=%q,revision=%q,version=%q} 1`, i.GoVersion, i.Revision, i.Version)
	if m := get("/metrics"); !strings.Contains(m, want) {
		t.Errorf("/metrics lacks %s", want)
	}
	var st struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal([]byte(get("/api/status")), &st); err != nil || st.Version != gateway.Version() || st.Version == "" {
		t.Errorf("/api/status version %q (%v), want %q", st.Version, err, gateway.Version())
	}
}
