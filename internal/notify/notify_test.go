package notify

import (
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBroadcast(t *testing.T) {
	var mu sync.Mutex
	var b Broadcast
	b.Notify() // no waiter: nothing happens
	var wg sync.WaitGroup
	for range 3 {
		mu.Lock()
		ch := b.Wait()
		mu.Unlock()
		wg.Add(1)
		go func() { defer wg.Done(); <-ch }()
	}
	mu.Lock()
	b.Notify()
	if b.ch != nil {
		t.Fatal("channel kept after Notify")
	}
	mu.Unlock()
	wg.Wait()
}
