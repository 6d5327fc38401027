package legacy

import (
	"context"
	"sync"
)

// signal is a broadcast channel guarded by its owner's mutex: broadcast
// wakes every waiter of await.
type signal struct{ ch chan struct{} }

func newSignal() signal { return signal{ch: make(chan struct{})} }

// broadcast must be called with the owner's mutex held.
func (s *signal) broadcast() {
	close(s.ch)
	s.ch = make(chan struct{})
}

// await blocks until pred, evaluated with mu held, is true. mu must be held
// on entry and is held on return. It fails with ctx.Err() or, when life
// ends, with life's cause.
func await(ctx, life context.Context, mu *sync.Mutex, s *signal, pred func() bool) error {
	for !pred() {
		ch := s.ch
		mu.Unlock()
		var err error
		select {
		case <-ch:
		case <-ctx.Done():
			err = ctx.Err()
		case <-life.Done():
			err = context.Cause(life)
		}
		mu.Lock()
		if err != nil {
			return err
		}
	}
	return nil
}

// ctxLock is a mutex whose lock honours a context (asyncio.Lock).
type ctxLock chan struct{}

func newCtxLock() ctxLock { return make(ctxLock, 1) }

func (l ctxLock) lock(ctx, life context.Context) error {
	select {
	case l <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-life.Done():
		return context.Cause(life)
	}
}

func (l ctxLock) unlock() { <-l }
