package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/tether-iot/tether/link"
	bolt "go.etcd.io/bbolt"
)

// The up spool: messages from a node that the gateway acknowledged to the
// node while the broker could not take them (store-and-forward). Each
// node's spool is a bucket of its own beside its queue, with its depth;
// spooled payload bytes count against Limit.TotalBytes with the queues'.

var (
	bucketUp   = []byte("up")
	keyUpDepth = []byte("updepth")
)

// Up is a message from a node waiting in its up spool.
type Up struct {
	Seq     uint64 // order in the node's spool
	Payload string
	// Pubs are the publishes still owed for it, in order (its up topic,
	// then its routes'). Never empty.
	Pubs []Pub
}

// Pub is one publish of a spooled message.
type Pub struct {
	Kind  uint8 // the caller's: what the topic is (an up topic, a route)
	Topic string
}

// SpoolUp appends u (its Seq is ignored) to node's up spool and saves
// node's receive window w, in one transaction (one fsync), and returns
// its sequence number. If the spool is at lim.Messages (lim.Bytes is
// not used), nothing is written and the error is ErrFull; if the queues
// and spools together are at lim.TotalBytes, ErrStoreFull.
func (s *Store) SpoolUp(id string, w link.Window, u Up, lim Limit) (uint64, error) {
	if len(u.Pubs) == 0 {
		return 0, errors.New("store: spooled message without a topic")
	}
	win, err := w.MarshalBinary()
	if err != nil {
		return 0, err
	}
	s.qmu.Lock()
	defer s.qmu.Unlock()
	d := s.UpDepth(id)
	lim.Bytes = 0
	if !lim.fits(d, len(u.Payload)) {
		return 0, ErrFull
	}
	if !lim.fitsTotal(s.Used(), len(u.Payload)) {
		return 0, ErrStoreFull
	}
	var seq uint64
	err = s.db.Update(func(tx *bolt.Tx) error {
		b, err := node(tx, id)
		if err != nil {
			return err
		}
		q, err := b.CreateBucketIfNotExists(bucketUp)
		if err != nil {
			return err
		}
		if seq, err = q.NextSequence(); err != nil {
			return err
		}
		if err := q.Put(seqKey(seq), encodeUp(u)); err != nil {
			return err
		}
		d = d.add(1, len(u.Payload))
		if err := b.Put(keyUpDepth, d.encode()); err != nil {
			return err
		}
		return b.Put(keyWindow, win)
	})
	if err != nil {
		return 0, fmt.Errorf("store: spool a message of %q: %w", id, err)
	}
	s.setUpDepth(id, d)
	return seq, nil
}

// UpHead returns the oldest message of node's up spool; ok is false if
// the spool is empty.
func (s *Store) UpHead(id string) (u Up, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		b, _ := node(tx, id)
		if b == nil {
			return nil
		}
		q := b.Bucket(bucketUp)
		if q == nil {
			return nil
		}
		k, v := q.Cursor().First()
		if k == nil {
			return nil
		}
		u, err = decodeUp(k, v)
		ok = err == nil
		return err
	})
	return u, ok, err
}

// RemoveUp deletes message seq from node's up spool (the broker has
// taken it). Removing a message that is not there does nothing.
func (s *Store) RemoveUp(id string, seq uint64) error {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	d := s.UpDepth(id)
	removed := false
	err := s.update(id, func(b *bolt.Bucket) error {
		q := b.Bucket(bucketUp)
		if q == nil {
			return nil
		}
		v := q.Get(seqKey(seq))
		if v == nil {
			return nil
		}
		u, err := decodeUp(seqKey(seq), v)
		if err != nil {
			return err
		}
		if err := q.Delete(seqKey(seq)); err != nil {
			return err
		}
		d = d.add(-1, -len(u.Payload))
		removed = true
		return b.Put(keyUpDepth, d.encode())
	})
	if err == nil && removed {
		s.setUpDepth(id, d)
	}
	return err
}

// UpDepth returns the depth of node's up spool. It reads memory only.
func (s *Store) UpDepth(id string) Depth {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.upDepths[id]
}

// UpTotal returns the depth of all the up spools together. It reads
// memory only.
func (s *Store) UpTotal() Depth {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.upTotal
}

// Spools returns the IDs of the nodes whose up spool is not empty,
// sorted. It reads memory only.
func (s *Store) Spools() []string {
	s.mu.Lock()
	ids := slices.Collect(maps.Keys(s.upDepths))
	s.mu.Unlock()
	slices.Sort(ids)
	return ids
}

// Used returns the depth of all the queues and up spools together: what
// Limit.TotalBytes bounds. It reads memory only.
func (s *Store) Used() Depth {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total.add(s.upTotal.Messages, int(s.upTotal.Bytes))
}

// setUpDepth records node's committed spool depth; s.qmu is held.
func (s *Store) setUpDepth(id string, d Depth) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.upDepths[id]
	s.upTotal = s.upTotal.add(d.Messages-old.Messages, int(d.Bytes-old.Bytes))
	if d.Messages == 0 {
		delete(s.upDepths, id)
	} else {
		s.upDepths[id] = d
	}
}

// loadUpDepth reads node bucket b's spool depth at Open.
func (s *Store) loadUpDepth(id string, b *bolt.Bucket) error {
	v := b.Get(keyUpDepth)
	if v == nil {
		return nil
	}
	d, err := decodeDepth(v)
	if err != nil {
		return err
	}
	if d.Messages > 0 {
		s.upDepths[id] = d
		s.upTotal = s.upTotal.add(d.Messages, int(d.Bytes))
	}
	return nil
}

// A spooled message is encoded as: the number of publishes (uvarint);
// for each, its kind (a byte) and its topic (uvarint length, bytes);
// then the payload.
func encodeUp(u Up) []byte {
	v := binary.AppendUvarint(nil, uint64(len(u.Pubs)))
	for _, p := range u.Pubs {
		v = append(v, p.Kind)
		v = binary.AppendUvarint(v, uint64(len(p.Topic)))
		v = append(v, p.Topic...)
	}
	return append(v, u.Payload...)
}

var errCorruptUp = errors.New("store: corrupt spooled message")

func decodeUp(k, v []byte) (Up, error) {
	if len(k) != 8 {
		return Up{}, errCorruptUp
	}
	u := Up{Seq: binary.BigEndian.Uint64(k)}
	n, w := binary.Uvarint(v)
	if w <= 0 || n == 0 || n > uint64(len(v)) {
		return Up{}, errCorruptUp
	}
	v = v[w:]
	u.Pubs = make([]Pub, 0, n)
	for range n {
		if len(v) < 1 {
			return Up{}, errCorruptUp
		}
		kind := v[0]
		l, w := binary.Uvarint(v[1:])
		if w <= 0 || l > uint64(len(v)-1-w) {
			return Up{}, errCorruptUp
		}
		v = v[1+w:]
		u.Pubs = append(u.Pubs, Pub{Kind: kind, Topic: string(v[:l])})
		v = v[l:]
	}
	u.Payload = string(v)
	return u, nil
}
