package soak

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tether-iot/tether/internal/harness/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunShortSoak(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := Run(ctx, Config{
		Nodes:   20,
		Timeout: 200 * time.Millisecond,
		Outages: 300,
		Seed:    1,
		Logger:  testutil.Logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	r.WriteTo(&b)
	t.Log("\n" + b.String())
	if !r.OK() {
		t.Fatalf("soak failed: %s", r.Verdict())
	}
	if r.Outages < 300 {
		t.Errorf("%d outages, want at least 300", r.Outages)
	}
	if r.Up.Received == 0 || r.Down.Received == 0 {
		t.Errorf("no traffic: %+v %+v", r.Up, r.Down)
	}
}
