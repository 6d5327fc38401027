package legacy

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// exchange sends n qos+wait messages each way at once and checks that each
// side reads exactly the other's, in order. onRead, if set, runs after the
// node has read its k-th line.
func exchange(t *testing.T, ctx context.Context, node *Node, sc *ServerConn, round, n int, onRead func(k int)) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	wg.Go(func() {
		for i := range n {
			if err := node.Write(ctx, fmt.Sprintf("c%d-%d", round, i), true, true); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Go(func() {
		for i := range n {
			if err := sc.Write(ctx, fmt.Sprintf("s%d-%d", round, i), true, true); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Go(func() {
		for i := range n {
			got, err := node.ReadLine(ctx)
			if want := fmt.Sprintf("s%d-%d\n", round, i); err != nil || got != want {
				errs <- fmt.Errorf("node read %q, %v; want %q", got, err, want)
				return
			}
			if onRead != nil {
				onRead(i)
			}
		}
	})
	wg.Go(func() {
		for i := range n {
			got, err := sc.ReadLine(ctx)
			if want := fmt.Sprintf("c%d-%d\n", round, i); err != nil || got != want {
				errs <- fmt.Errorf("server read %q, %v; want %q", got, err, want)
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
}

func TestNodeServerExchange(t *testing.T) {
	t.Parallel()
	retry(t, func() {
		ctx := testCtx(t)
		srv := startServer(t, ServerConfig{Expected: []string{"n1"}})
		node := startNode(t, NodeConfig{ID: "n1", Addr: srv.Addr()})
		sc, err := srv.Conn(ctx, "n1")
		if err != nil {
			t.Fatal(err)
		}
		if err := node.WaitUp(ctx); err != nil {
			t.Fatal(err)
		}
		exchange(t, ctx, node, sc, 0, 10, nil)

		// An outage seen first by the node (the legacy close()): both ends
		// notice and the node reconnects after 2T.
		node.DropConn()
		if err := sc.WaitStatus(ctx, false); err != nil {
			t.Fatal(err)
		}
		exchange(t, ctx, node, sc, 1, 10, nil)
		// The legacy counter counts connections that brought a message.
		if got := node.Connects(); got != 2 {
			voidIfStalled(t, fmt.Sprintf("node connects = %d, want 2", got))
			t.Errorf("node connects = %d, want 2", got)
		}

		// An outage seen first by the server, in the middle of the traffic:
		// repeats after the reconnect, exactly once in order.
		exchange(t, ctx, node, sc, 2, 10, func(k int) {
			if k == 3 {
				sc.DropConn()
			}
		})
		// Every message may have gone both ways before the drop (the
		// node reads its queue later): the reconnect may still be to
		// come.
		if err := sc.WaitStatus(ctx, true); err != nil {
			t.Fatal(err)
		}
		if got := sc.NConns(); got != 3 {
			voidIfStalled(t, fmt.Sprintf("server nconns = %d, want 3", got))
			t.Errorf("server nconns = %d, want 3", got)
		}
	})
}
