package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDistOf(t *testing.T) {
	ns := make([]int64, 0, 100)
	for i := 100; i >= 1; i-- {
		ns = append(ns, int64(i)*1000)
	}
	d := distOf(ns)
	if d.N != 100 || d.P50 != 51 || d.P99 != 100 || d.Max != 100 || d.Mean != 50.5 {
		t.Errorf("distOf(1..100 µs) = %+v", d)
	}
	if d := distOf(nil); d != (Dist{}) {
		t.Errorf("distOf(nil) = %+v", d)
	}
}

func TestCommas(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.4: "1,234,567", -12345: "-12,345"} {
		if got := commas(v); got != want {
			t.Errorf("commas(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestVerdicts(t *testing.T) {
	if v := verdictMax(90, 100); v != "met" {
		t.Errorf("verdictMax(90, 100) = %q", v)
	}
	if v := verdictMax(150, 100); v != "missed by 50%" {
		t.Errorf("verdictMax(150, 100) = %q", v)
	}
	if v := verdictMin(75, 100); v != "missed by 25%" {
		t.Errorf("verdictMin(75, 100) = %q", v)
	}
}

func TestGaugeWait(t *testing.T) {
	var g gauge
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 250 {
				g.add(time.Now())
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.wait(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if g.count() != 1000 || g.span() < 0 {
		t.Errorf("count %d, span %v", g.count(), g.span())
	}
	short, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := g.wait(short, 1001); err == nil {
		t.Error("wait past the count returned nil with a cancelled ctx")
	}
}

// TestServeFarm drives a farm over pipes as a parent would.
func TestServeFarm(t *testing.T) {
	var in bytes.Buffer
	for _, req := range []string{`{"op":"usage"}`, `{"op":"nope"}`, `not json`} {
		in.WriteString(req + "\n")
	}
	var out bytes.Buffer
	if err := ServeFarm(context.Background(), &in, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d responses, want 3:\n%s", len(lines), out.String())
	}
	var r [3]Response
	for i, l := range lines {
		if err := json.Unmarshal([]byte(l), &r[i]); err != nil {
			t.Fatal(err)
		}
	}
	if r[0].Err != "" || r[0].Usage == nil || r[0].Usage.Goroutines == 0 {
		t.Errorf("usage: %+v", r[0])
	}
	if r[1].Err == "" || r[2].Err == "" {
		t.Errorf("bad requests answered without an error: %+v, %+v", r[1], r[2])
	}
}

func TestHistogram(t *testing.T) {
	r := &Result{samples: map[string][]int64{}}
	for i := range 1000 {
		r.samples["raw TCP echo"] = append(r.samples["raw TCP echo"], int64(20_000+i*10))
		r.samples["Tether qos round trip"] = append(r.samples["Tether qos round trip"], int64(30_000+i*50))
	}
	svg := r.HistogramSVG()
	if err := xml.Unmarshal(svg, new(struct{})); err != nil {
		t.Fatalf("SVG: %v", err)
	}
	for _, want := range []string{"raw TCP echo", "Tether qos round trip", "10 µs", "100 µs"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

func TestMQTTConnect(t *testing.T) {
	p := mqttConnect("idle-7", 2*time.Second)
	want := []byte{0x10, 18, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 2, 0, 6, 'i', 'd', 'l', 'e', '-', '7'}
	if !bytes.Equal(p, want) {
		t.Errorf("mqttConnect = % x, want % x", p, want)
	}
	if p := mqttConnect("x", 1500*time.Millisecond); p[10] != 0 || p[11] != 2 {
		t.Errorf("keepalive 1.5 s encoded as %d s, want 2 (rounded up)", int(p[10])<<8|int(p[11]))
	}
}

func TestProcUsage(t *testing.T) {
	cpu, rss, err := procUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss <= 0 || cpu < 0 {
		t.Errorf("procUsage(self) = %v, %d", cpu, rss)
	}
}
