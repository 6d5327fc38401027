package bridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tether-iot/tether/link"
	bolt "go.etcd.io/bbolt"
	bolterr "go.etcd.io/bbolt/errors"
)

// StateFile is the bridge's state file in its state directory.
const StateFile = "bridge.db"

// ErrLocked means another bridge has the state directory open.
var ErrLocked = errors.New("bridge: the state directory is in use by another bridge")

var (
	bktMeta = []byte("meta")
	bktUp   = []byte("up")
	bktDown = []byte("down")

	keyBoardNext  = []byte("board.next")
	keyBoardWin   = []byte("board.window")
	keyServerNext = []byte("server.next")
	keyServerWin  = []byte("server.window")
	keyID         = []byte("id")
)

// upItem is a line from the board, ACKed to it, not yet ACKed by the
// server; or a restart marker: the board restarted, so the server link
// starts a new life (message 00) before the lines that follow.
type upItem struct {
	seq      uint64
	payload  string
	restart  bool
	assigned bool  // given a server-link id (it may have been sent)
	id       uint8 // that id
}

// downItem is a line from the server, not yet ACKed to it.
type downItem struct {
	seq      uint64
	serverID uint8
	payload  string
	orphan   bool // its sender restarted: no repeat of it will come
	assigned bool // given a board-link id
	boardID  uint8
	acked    bool // the board has taken it
	boot     bool // the bridge's boot message to the board (id 00)
}

// seqState is the sequence state of both links.
type seqState struct {
	board, server link.Snapshot
}

// store is the bridge's durable state in one bbolt file. Every change is
// one transaction, synced to disk before the call returns.
type store struct {
	db *bolt.DB
}

// openStore opens (creating) the state in dir for node id. A state
// directory belongs to one node: opening it for another ID fails.
func openStore(dir, id string) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("bridge: state directory: %w", err)
	}
	path := filepath.Join(dir, StateFile)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 100 * time.Millisecond})
	if errors.Is(err, bolterr.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("bridge: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bktMeta, bktUp, bktDown} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		m := tx.Bucket(bktMeta)
		switch old := m.Get(keyID); {
		case old == nil:
			return m.Put(keyID, []byte(id))
		case string(old) != id:
			return fmt.Errorf("bridge: %s holds the state of node %q, not %q: give each bridge its own --state directory", path, old, id)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &store{db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

// load returns the saved state and queues.
func (s *store) load() (st seqState, ups []upItem, downs []downItem, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		m := tx.Bucket(bktMeta)
		if v := m.Get(keyBoardNext); len(v) == 1 {
			st.board.Next = v[0]
		}
		if v := m.Get(keyServerNext); len(v) == 1 {
			st.server.Next = v[0]
		}
		if v := m.Get(keyBoardWin); v != nil {
			if err := st.board.Window.UnmarshalBinary(v); err != nil {
				return err
			}
		}
		if v := m.Get(keyServerWin); v != nil {
			if err := st.server.Window.UnmarshalBinary(v); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bktUp).ForEach(func(k, v []byte) error {
			it, err := decodeUp(k, v)
			ups = append(ups, it)
			return err
		}); err != nil {
			return err
		}
		return tx.Bucket(bktDown).ForEach(func(k, v []byte) error {
			it, err := decodeDown(k, v)
			downs = append(downs, it)
			return err
		})
	})
	if err != nil {
		err = fmt.Errorf("bridge: load state: %w", err)
	}
	return st, ups, downs, err
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// Encodings: up: flags(1) id(1) payload; flags bit0 restart, bit1 assigned.
// down: flags(1) serverID(1) boardID(1) payload; flags bit0 orphan, bit1
// assigned, bit2 acked, bit3 boot.

func encodeUp(it upItem) []byte {
	var f byte
	if it.restart {
		f |= 1
	}
	if it.assigned {
		f |= 2
	}
	return append([]byte{f, it.id}, it.payload...)
}

func decodeUp(k, v []byte) (upItem, error) {
	if len(k) != 8 || len(v) < 2 {
		return upItem{}, errors.New("bad up item")
	}
	return upItem{seq: binary.BigEndian.Uint64(k), restart: v[0]&1 != 0, assigned: v[0]&2 != 0, id: v[1], payload: string(v[2:])}, nil
}

func encodeDown(it downItem) []byte {
	var f byte
	if it.orphan {
		f |= 1
	}
	if it.assigned {
		f |= 2
	}
	if it.acked {
		f |= 4
	}
	if it.boot {
		f |= 8
	}
	return append([]byte{f, it.serverID, it.boardID}, it.payload...)
}

func decodeDown(k, v []byte) (downItem, error) {
	if len(k) != 8 || len(v) < 3 {
		return downItem{}, errors.New("bad down item")
	}
	return downItem{seq: binary.BigEndian.Uint64(k), orphan: v[0]&1 != 0, assigned: v[0]&2 != 0, acked: v[0]&4 != 0, boot: v[0]&8 != 0,
		serverID: v[1], boardID: v[2], payload: string(v[3:])}, nil
}

func putWindow(m *bolt.Bucket, key []byte, w link.Window) error {
	b, _ := w.MarshalBinary()
	return m.Put(key, b)
}

// addUp stores a line (or a restart marker) from the board together with
// the board link's window that accepts it, and returns it with its seq.
func (s *store) addUp(it upItem, boardWin link.Window) (upItem, error) {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktUp)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		it.seq = seq
		if err := b.Put(seqKey(seq), encodeUp(it)); err != nil {
			return err
		}
		return putWindow(tx.Bucket(bktMeta), keyBoardWin, boardWin)
	})
	return it, err
}

// assignUp records the server-link id given to an up item.
func (s *store) assignUp(it upItem) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bktUp).Put(seqKey(it.seq), encodeUp(it)); err != nil {
			return err
		}
		return tx.Bucket(bktMeta).Put(keyServerNext, []byte{link.NextID(it.id)})
	})
}

// doneUp removes an up item the server has ACKed; for a restart marker,
// the server link's next id becomes 00.
func (s *store) doneUp(it upItem) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if it.restart {
			if err := tx.Bucket(bktMeta).Put(keyServerNext, []byte{0}); err != nil {
				return err
			}
		}
		return tx.Bucket(bktUp).Delete(seqKey(it.seq))
	})
}

// addDown stores a line from the server for the board.
func (s *store) addDown(it downItem) (downItem, error) {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktDown)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		it.seq = seq
		return b.Put(seqKey(seq), encodeDown(it))
	})
	return it, err
}

// putDown rewrites a down item (its board id, its ACK, orphaned), and for
// an assigned one the board link's next id.
func (s *store) putDown(it downItem) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if it.assigned && !it.acked {
			if err := tx.Bucket(bktMeta).Put(keyBoardNext, []byte{link.NextID(it.boardID)}); err != nil {
				return err
			}
		}
		return tx.Bucket(bktDown).Put(seqKey(it.seq), encodeDown(it))
	})
}

// doneDown removes down items and stores the server link's window: w is
// the window that accepts the message whose ACK goes to the server now
// (nil: none).
func (s *store) doneDown(seqs []uint64, w *link.Window) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktDown)
		for _, q := range seqs {
			if err := b.Delete(seqKey(q)); err != nil {
				return err
			}
		}
		if w != nil {
			return putWindow(tx.Bucket(bktMeta), keyServerWin, *w)
		}
		return nil
	})
}
