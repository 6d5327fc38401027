// Package store is the gateway's durable state, in one bbolt file: for
// each node, the link's sequence state (the next id the gateway sends and
// the node's de-duplication window), the queue of messages waiting to be
// written to it, and its up spool (messages from it waiting for the
// broker, see SpoolUp), each with its depth; and, for MQTT
// de-duplication, the last message stored from each publisher.
//
// Every change is one bbolt transaction, committed to disk (fsync) before
// the call returns: what a call reported stored survives a crash.
//
// Each queue's depth (messages and payload bytes) is stored with it, in
// the same transactions, and mirrored in memory: Depth and Total cost no
// disk access, and Enqueue can refuse a message past a Limit (ErrFull).
package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tether-iot/tether/link"
	bolt "go.etcd.io/bbolt"
	bolterr "go.etcd.io/bbolt/errors"
)

// ErrLocked means another process has the store open.
var ErrLocked = errors.New("store: the data directory is in use by another process")

// ErrFull is returned by Enqueue when the node's queue is at its Limit:
// the message was not stored.
var ErrFull = errors.New("store: the node's queue is full")

// ErrStoreFull is returned by Enqueue when all the queues together are
// at Limit.TotalBytes: the message was not stored.
var ErrStoreFull = errors.New("store: the queues are full (all nodes together)")

// FileName is the store's file in its data directory.
const FileName = "gateway.db"

var (
	bucketNodes = []byte("nodes")
	bucketDedup = []byte("dedup")
	keyNext     = []byte("next")
	keyWindow   = []byte("window")
	keyDepth    = []byte("depth")
	keySeen     = []byte("seen")
	bucketQueue = []byte("queue")
)

// Store is an open store. Its methods are safe for concurrent use.
type Store struct {
	db *bolt.DB

	// qmu is held around every transaction that changes a queue's
	// depth, and until the depths below are updated: under it they are
	// exact, which Enqueue's limit needs. (bbolt runs one writer at a
	// time anyway.)
	qmu sync.Mutex
	// mu guards depths and total, which are the committed depths.
	mu     sync.Mutex
	depths map[string]Depth // nodes with a non-empty queue
	total  Depth
	// upDepths and upTotal are the same for the up spools.
	upDepths map[string]Depth
	upTotal  Depth
	seen     map[string]bool  // nodes that have connected (MarkSeen)
	access   map[string]uint8 // nodes' access flags (SetAccess)
}

// Item is one queued message for a node.
type Item struct {
	Seq      uint64 // order in the node's queue
	Payload  string
	Assigned bool  // the message was given a link id (it may have been sent)
	ID       uint8 // its link id, if Assigned
}

// Open opens or creates the store in dir, waiting at most wait for
// another process to release it (then ErrLocked). A store file that is
// damaged (truncated, partly overwritten, empty, not a store) is refused
// with a *DamagedError: see check.go.
func Open(dir string, wait time.Duration) (*Store, error) { return openStore(dir, wait, false) }

// OpenFresh is Open, except that a damaged store file is moved aside
// (gateway.db.damaged-<time>) and a new, empty store starts: what the
// damaged one held is lost. It is the operator's choice (tether serve
// --fresh-store), never the default.
func OpenFresh(dir string, wait time.Duration) (*Store, error) { return openStore(dir, wait, true) }

func openStore(dir string, wait time.Duration, fresh bool) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	path := filepath.Join(dir, FileName)
	if wait <= 0 {
		wait = time.Millisecond
	}
	if err := check(path, wait); err != nil {
		var de *DamagedError
		if !fresh || !errors.As(err, &de) {
			return nil, err
		}
		if err := de.moveAside(); err != nil {
			return nil, err
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: wait})
	if errors.Is(err, bolterr.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := &Store{db: db, depths: make(map[string]Depth), upDepths: make(map[string]Depth), seen: make(map[string]bool), access: make(map[string]uint8)}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketNodes); err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bucketDedup); err != nil {
			return err
		}
		return s.loadDepths(tx)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	return s, nil
}

// Path returns the store's file.
func (s *Store) Path() string { return s.db.Path() }

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// node returns node's bucket, creating it in a writable tx.
func node(tx *bolt.Tx, id string) (*bolt.Bucket, error) {
	nodes := tx.Bucket(bucketNodes)
	if tx.Writable() {
		return nodes.CreateBucketIfNotExists([]byte(id))
	}
	return nodes.Bucket([]byte(id)), nil
}

// Nodes returns the IDs of every node with state in the store, sorted.
func (s *Store) Nodes() ([]string, error) {
	var ids []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNodes).ForEachBucket(func(k []byte) error {
			ids = append(ids, string(k))
			return nil
		})
	})
	return ids, err
}

// Snapshot returns the saved link state of node: the zero Snapshot if
// there is none.
func (s *Store) Snapshot(id string) (link.Snapshot, error) {
	var snap link.Snapshot
	err := s.db.View(func(tx *bolt.Tx) error {
		b, _ := node(tx, id)
		if b == nil {
			return nil
		}
		if v := b.Get(keyNext); len(v) == 1 {
			snap.Next = v[0]
		}
		if v := b.Get(keyWindow); v != nil {
			return snap.Window.UnmarshalBinary(v)
		}
		return nil
	})
	if err != nil {
		return link.Snapshot{}, fmt.Errorf("store: snapshot of %q: %w", id, err)
	}
	return snap, nil
}

// SaveWindow saves node's receive window (after accepting a message).
func (s *Store) SaveWindow(id string, w link.Window) error {
	v, err := w.MarshalBinary()
	if err != nil {
		return err
	}
	return s.update(id, func(b *bolt.Bucket) error { return b.Put(keyWindow, v) })
}

// SaveNext saves the id of the next message to node.
func (s *Store) SaveNext(id string, next uint8) error {
	return s.update(id, func(b *bolt.Bucket) error { return b.Put(keyNext, []byte{next}) })
}

func (s *Store) update(id string, fn func(b *bolt.Bucket) error) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := node(tx, id)
		if err != nil {
			return err
		}
		return fn(b)
	})
	if err != nil {
		return fmt.Errorf("store: node %q: %w", id, err)
	}
	return nil
}

// Origin identifies a message's publisher and its MQTT packet, to spot a
// broker's redelivery of a message already stored (see Enqueue).
type Origin struct {
	Client   string // the publisher's session ("" skips de-duplication)
	PacketID uint16
	Dup      bool // the MQTT DUP flag: a redelivery
	Topic    string
}

// Enqueue appends payload to node's queue and returns its sequence
// number. If o.Dup is set and the last message stored from o.Client had
// the same packet id, topic and payload, it is a redelivery of a message
// stored but not acknowledged before a crash: nothing is stored and
// stored is false. Otherwise, if the queue is at lim, nothing is stored
// and the error is ErrFull (ErrStoreFull if all the queues and up spools
// together are at lim.TotalBytes): the queue, and the order of what is
// in it, are left as they were.
func (s *Store) Enqueue(id, payload string, o Origin, lim Limit) (seq uint64, stored bool, err error) {
	var mark []byte
	if o.Client != "" {
		h := sha256.New()
		h.Write([]byte(o.Topic))
		h.Write([]byte{0})
		h.Write([]byte(payload))
		mark = binary.BigEndian.AppendUint16(nil, o.PacketID)
		mark = h.Sum(mark)
	}
	s.qmu.Lock()
	defer s.qmu.Unlock()
	d, total := s.Depth(id), s.Used()
	var full error
	err = s.db.Update(func(tx *bolt.Tx) error {
		dd := tx.Bucket(bucketDedup)
		if mark != nil && o.Dup && bytes.Equal(dd.Get([]byte(o.Client)), mark) {
			return nil
		}
		if !lim.fits(d, len(payload)) {
			full = ErrFull
			return nil
		}
		if !lim.fitsTotal(total, len(payload)) {
			full = ErrStoreFull
			return nil
		}
		b, err := node(tx, id)
		if err != nil {
			return err
		}
		q, err := b.CreateBucketIfNotExists(bucketQueue)
		if err != nil {
			return err
		}
		seq, err = q.NextSequence()
		if err != nil {
			return err
		}
		if err := q.Put(seqKey(seq), encodeItem(Item{Payload: payload})); err != nil {
			return err
		}
		d = d.add(1, len(payload))
		if err := b.Put(keyDepth, d.encode()); err != nil {
			return err
		}
		stored = true
		if mark != nil {
			return dd.Put([]byte(o.Client), mark)
		}
		return nil
	})
	switch {
	case err != nil:
		return 0, false, fmt.Errorf("store: enqueue for %q: %w", id, err)
	case full != nil:
		return 0, false, full
	case stored:
		s.setDepth(id, d)
	}
	return seq, stored, nil
}

// Head returns the oldest queued message of node; ok is false if the
// queue is empty.
func (s *Store) Head(id string) (it Item, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		b, _ := node(tx, id)
		if b == nil {
			return nil
		}
		q := b.Bucket(bucketQueue)
		if q == nil {
			return nil
		}
		k, v := q.Cursor().First()
		if k == nil {
			return nil
		}
		it, err = decodeItem(k, v)
		ok = err == nil
		return err
	})
	return it, ok, err
}

// Len returns how many messages wait in node's queue (see Depth).
func (s *Store) Len(id string) int { return s.Depth(id).Messages }

// Assign records that queued message seq of node was given link id,
// and that the next id is link.NextID(id), in one transaction.
func (s *Store) Assign(id string, seq uint64, linkID uint8) error {
	return s.update(id, func(b *bolt.Bucket) error {
		q := b.Bucket(bucketQueue)
		if q == nil {
			return fmt.Errorf("no message %d", seq)
		}
		v := q.Get(seqKey(seq))
		if v == nil {
			return fmt.Errorf("no message %d", seq)
		}
		it, err := decodeItem(seqKey(seq), v)
		if err != nil {
			return err
		}
		it.Assigned, it.ID = true, linkID
		if err := q.Put(seqKey(seq), encodeItem(it)); err != nil {
			return err
		}
		return b.Put(keyNext, []byte{link.NextID(linkID)})
	})
}

// Remove deletes message seq from node's queue (it was acknowledged, or
// can never be sent). Removing a message that is not there does nothing.
func (s *Store) Remove(id string, seq uint64) error {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	d := s.Depth(id)
	removed := false
	err := s.update(id, func(b *bolt.Bucket) error {
		q := b.Bucket(bucketQueue)
		if q == nil {
			return nil
		}
		v := q.Get(seqKey(seq))
		if v == nil {
			return nil
		}
		if err := q.Delete(seqKey(seq)); err != nil {
			return err
		}
		d = d.add(-1, -(len(v) - itemHeader))
		removed = true
		return b.Put(keyDepth, d.encode())
	})
	if err == nil && removed {
		s.setDepth(id, d)
	}
	return err
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// An item is encoded as: flags (bit 0: assigned), id, payload.
const itemHeader = 2

func encodeItem(it Item) []byte {
	v := make([]byte, itemHeader, itemHeader+len(it.Payload))
	if it.Assigned {
		v[0] = 1
		v[1] = it.ID
	}
	return append(v, it.Payload...)
}

func decodeItem(k, v []byte) (Item, error) {
	if len(k) != 8 || len(v) < itemHeader {
		return Item{}, errors.New("store: corrupt queue entry")
	}
	return Item{
		Seq:      binary.BigEndian.Uint64(k),
		Assigned: v[0]&1 != 0,
		ID:       v[1],
		Payload:  string(v[itemHeader:]),
	}, nil
}
