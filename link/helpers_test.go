package link

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tether-iot/tether/internal/harness/testutil"
)

// newLink makes a link closed at the end of the test.
func newLink(t testing.TB, cfg Config) *Link {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testutil.Logger()
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// attacher runs Attach calls on goroutines it owns; stop waits for them.
type attacher struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

func (a *attacher) attach(ctx context.Context, l *Link, c net.Conn) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		err := l.Attach(ctx, c)
		a.mu.Lock()
		a.errs = append(a.errs, err)
		a.mu.Unlock()
	}()
}

// pipePair attaches a node-role and a server-role link to the two ends
// of a net.Pipe.
func pipePair(t testing.TB, ctx context.Context, a *attacher, srv, node *Link) (net.Conn, net.Conn) {
	c1, c2 := net.Pipe()
	a.attach(ctx, srv, c1)
	a.attach(ctx, node, c2)
	return c1, c2
}

func serverCfg(id string, T time.Duration) Config {
	return Config{ID: id, Timeout: T, WritePause: 200 * time.Millisecond, AnswerKeepalives: true}
}

func nodeCfg(id string, T time.Duration) Config {
	return Config{ID: id, Timeout: T, FirstTimeout: 2 * T, UpOnFirstLine: true}
}
