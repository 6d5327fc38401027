package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Depth is the size of a queue: its messages and their payload bytes.
type Depth struct {
	Messages int
	Bytes    int64
}

func (d Depth) add(messages, bytes int) Depth {
	return Depth{Messages: d.Messages + messages, Bytes: d.Bytes + int64(bytes)}
}

// A depth is stored as two big-endian uint64: messages, bytes.
func (d Depth) encode() []byte {
	v := binary.BigEndian.AppendUint64(nil, uint64(d.Messages))
	return binary.BigEndian.AppendUint64(v, uint64(d.Bytes))
}

func decodeDepth(v []byte) (Depth, error) {
	if len(v) != 16 {
		return Depth{}, errors.New("store: corrupt queue depth")
	}
	return Depth{Messages: int(binary.BigEndian.Uint64(v)), Bytes: int64(binary.BigEndian.Uint64(v[8:]))}, nil
}

// Limit bounds one node's queue, and all the queues together. A zero or
// negative field is no bound.
type Limit struct {
	Messages int   // messages, the one being sent included
	Bytes    int64 // payload bytes
	// TotalBytes bounds the payload bytes of all the queues and up
	// spools together (ErrStoreFull).
	TotalBytes int64
}

// fits reports whether a message of n bytes fits in a queue of depth d.
func (l Limit) fits(d Depth, n int) bool {
	if l.Messages > 0 && d.Messages+1 > l.Messages {
		return false
	}
	return l.Bytes <= 0 || d.Bytes+int64(n) <= l.Bytes
}

// fitsTotal reports whether a message of n bytes fits in a store whose
// queues total t.
func (l Limit) fitsTotal(t Depth, n int) bool {
	return l.TotalBytes <= 0 || t.Bytes+int64(n) <= l.TotalBytes
}

// Depth returns the depth of node's queue. It reads memory only.
func (s *Store) Depth(id string) Depth {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.depths[id]
}

// Total returns the depth of all the queues together (the up spools
// not included: see UpTotal and Used). It reads memory only.
func (s *Store) Total() Depth {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Queues returns the IDs of the nodes whose queue is not empty, sorted.
// It reads memory only.
func (s *Store) Queues() []string {
	s.mu.Lock()
	ids := slices.Collect(maps.Keys(s.depths))
	s.mu.Unlock()
	slices.Sort(ids)
	return ids
}

// setDepth records node's committed depth; s.qmu is held.
func (s *Store) setDepth(id string, d Depth) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.depths[id]
	s.total = s.total.add(d.Messages-old.Messages, int(d.Bytes-old.Bytes))
	if d.Messages == 0 {
		delete(s.depths, id)
	} else {
		s.depths[id] = d
	}
}

// loadDepths reads every queue's depth, and which nodes were seen,
// into memory, in Open's transaction. A store written before depths were kept has none: the
// queue is counted and its depth stored.
func (s *Store) loadDepths(tx *bolt.Tx) error {
	nodes := tx.Bucket(bucketNodes)
	var ids [][]byte
	if err := nodes.ForEachBucket(func(k []byte) error {
		ids = append(ids, bytes.Clone(k))
		return nil
	}); err != nil {
		return err
	}
	for _, k := range ids {
		b := nodes.Bucket(k)
		if seenIn(b) {
			s.seen[string(k)] = true
		}
		s.loadAccess(string(k), b)
		var d Depth
		if v := b.Get(keyDepth); v != nil {
			var err error
			if d, err = decodeDepth(v); err != nil {
				return err
			}
		} else if q := b.Bucket(bucketQueue); q != nil {
			if err := q.ForEach(func(_, v []byte) error {
				d = d.add(1, len(v)-itemHeader)
				return nil
			}); err != nil {
				return err
			}
			if err := b.Put(keyDepth, d.encode()); err != nil {
				return err
			}
		}
		if d.Messages > 0 {
			s.depths[string(k)] = d
			s.total = s.total.add(d.Messages, int(d.Bytes))
		}
		if err := s.loadUpDepth(string(k), b); err != nil {
			return err
		}
	}
	return nil
}
