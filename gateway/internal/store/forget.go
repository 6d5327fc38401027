package store

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Forget deletes everything the store keeps for node id: its sequence
// state (next id, de-duplication window), whether it was seen, its queue
// and its up spool. It returns how many messages of its queue and of its
// up spool it deleted.
func (s *Store) Forget(id string) (queued, spooled int, err error) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	err = s.db.Update(func(tx *bolt.Tx) error {
		nodes := tx.Bucket(bucketNodes)
		if nodes.Bucket([]byte(id)) == nil {
			return nil
		}
		return nodes.DeleteBucket([]byte(id))
	})
	if err != nil {
		return 0, 0, fmt.Errorf("store: forget %q: %w", id, err)
	}
	queued, spooled = s.Depth(id).Messages, s.UpDepth(id).Messages
	s.setDepth(id, Depth{})
	s.setUpDepth(id, Depth{})
	s.mu.Lock()
	delete(s.seen, id)
	delete(s.access, id)
	s.mu.Unlock()
	return queued, spooled, nil
}

// ForgetIdle is Forget for a node that has nothing queued or spooled:
// in the same transaction it checks that its queue and its up spool are
// empty (false if not: nothing is deleted), and that it has no
// de-duplication window unless whole is set. It keeps the node's access
// flags (an operator's approval or denial, a TLS-only ID: see SetAccess),
// which no idle time undoes; Forget drops them too. Calls from many
// goroutines share commits (bbolt's Batch): the forget timers of a
// flood's IDs expire together.
func (s *Store) ForgetIdle(id string, whole bool) (bool, error) {
	var done bool
	err := s.db.Batch(func(tx *bolt.Tx) error {
		done = false
		nodes := tx.Bucket(bucketNodes)
		b := nodes.Bucket([]byte(id))
		if b == nil {
			return nil
		}
		for _, name := range [][]byte{bucketQueue, bucketUp} {
			if q := b.Bucket(name); q != nil {
				if k, _ := q.Cursor().First(); k != nil {
					return nil
				}
			}
		}
		if !whole && b.Get(keyWindow) != nil {
			return nil
		}
		done = true
		acc := bytes.Clone(b.Get(keyAccess))
		if err := nodes.DeleteBucket([]byte(id)); err != nil || acc == nil {
			return err
		}
		nb, err := nodes.CreateBucket([]byte(id))
		if err != nil {
			return err
		}
		return nb.Put(keyAccess, acc)
	})
	if err != nil || !done {
		return false, err
	}
	s.mu.Lock()
	delete(s.seen, id)
	s.mu.Unlock()
	return true, nil
}

// bucketUnpublish lists the forgotten nodes whose retained MQTT state is
// still to be cleared.
var bucketUnpublish = []byte("unpublish")

// MarkUnpublish records that forgotten node id's retained MQTT state is
// to be cleared (by the gateway, once its broker is connected).
func (s *Store) MarkUnpublish(id string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketUnpublish)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), []byte{1})
	})
}

// Unpublish returns the nodes recorded by MarkUnpublish.
func (s *Store) Unpublish() ([]string, error) {
	var ids []string
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUnpublish)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			ids = append(ids, string(bytes.Clone(k)))
			return nil
		})
	})
	return ids, err
}

// Unpublished removes id from the nodes recorded by MarkUnpublish.
func (s *Store) Unpublished(id string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketUnpublish); b != nil {
			return b.Delete([]byte(id))
		}
		return nil
	})
}
