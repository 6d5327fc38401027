// Package notify has the one waiting primitive Tether's packages share: a
// broadcast that wakes every waiter once, guarded by its owner's lock.
package notify

// Broadcast wakes every current waiter when Notify is called. Its zero
// value is ready to use. It is not safe for concurrent use: the owner's
// lock guards it, and a waiter takes the channel under that lock, releases
// the lock, then waits on the channel. A channel is made only when someone
// waits, so an idle Broadcast costs nothing.
type Broadcast struct{ ch chan struct{} }

// Wait returns a channel that Notify closes.
func (b *Broadcast) Wait() <-chan struct{} {
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

// Notify wakes every waiter.
func (b *Broadcast) Notify() {
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}
