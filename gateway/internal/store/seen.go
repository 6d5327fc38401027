package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// MarkSeen records that node id has connected: the gateway tells a node
// it has served from an ID nobody connected with (a typo, a flood on
// random IDs). It writes only the first time.
func (s *Store) MarkSeen(id string) error {
	if s.Seen(id) {
		return nil
	}
	// Batched: the first connections of many nodes at once (a restart
	// of the fleet, a flood of new IDs) share one commit and fsync
	// rather than each waiting for its own, and for the others'.
	err := s.db.Batch(func(tx *bolt.Tx) error {
		b, err := node(tx, id)
		if err != nil {
			return err
		}
		return b.Put(keySeen, []byte{1})
	})
	if err != nil {
		return fmt.Errorf("store: node %q: %w", id, err)
	}
	s.mu.Lock()
	s.seen[id] = true
	s.mu.Unlock()
	return nil
}

// Seen reports whether node id has connected (MarkSeen), or, in a store
// written before MarkSeen, has sequence state (which only a connected
// node gets). It reads memory only.
func (s *Store) Seen(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[id]
}

// seenIn reports whether node bucket b was seen, at Open.
func seenIn(b *bolt.Bucket) bool {
	return b.Get(keySeen) != nil || b.Get(keyNext) != nil || b.Get(keyWindow) != nil
}
