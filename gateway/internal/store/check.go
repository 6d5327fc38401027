package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterr "go.etcd.io/bbolt/errors"
)

// Damaged stores (issue 10.5). bbolt trusts its file: a truncated or
// partly overwritten one makes it panic (a freelist page that is not one)
// or, worse, an empty file silently becomes a new store, losing every
// queue and window. So before opening the file for writing, Open checks
// it read-only: bbolt's read-only open validates the meta pages and does
// not read the freelist, and Tx.Check walks every page, with bbolt's own
// recover around it, reporting damage as errors. Only a file that passes
// is opened for writing. The check reads the whole file once per start.

// DamagedError is a store file that cannot be used: it names the file,
// what is wrong, and what to do.
type DamagedError struct {
	Path   string
	Reason string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("store %s is damaged (%s): the gateway does not start on it, so as not to lose what it holds. "+
		"Restore it from a backup (tether backup; stop the gateway, copy the backup over %s), "+
		"or start afresh with tether serve --fresh-store, which moves it aside to %s.damaged-<time> and starts an empty store "+
		"(the queued messages and the nodes' sequence state in it are then lost: a legacy node's next message may be taken as new)",
		e.Path, e.Reason, e.Path, e.Path)
}

// moveAside renames the damaged file so that a new store can start.
func (e *DamagedError) moveAside() error {
	to := e.Path + ".damaged-" + time.Now().UTC().Format("20060102T150405Z")
	if err := os.Rename(e.Path, to); err != nil {
		return fmt.Errorf("store: cannot move the damaged store aside: %w", err)
	}
	return nil
}

// check reports whether the store file at path can be opened: nil if it
// is sound or does not exist; ErrLocked if another process has it; a
// *DamagedError if it is damaged.
func check(path string, wait time.Duration) (err error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("store: %w", err)
	case fi.Size() == 0:
		return &DamagedError{Path: path, Reason: "the file is empty: it was truncated (a full disk, a failed copy)"}
	}
	defer func() {
		// bbolt's read-only open reads only the meta pages, validated
		// by checksum; should it panic all the same, say so.
		if r := recover(); r != nil {
			err = &DamagedError{Path: path, Reason: fmt.Sprint(r)}
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: wait})
	if errors.Is(err, bolterr.ErrTimeout) {
		return fmt.Errorf("%w: %s", ErrLocked, path)
	}
	if err != nil {
		return &DamagedError{Path: path, Reason: err.Error()}
	}
	defer db.Close()
	var first error
	n := 0
	err = db.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			if first == nil {
				first = e
			}
			n++
		}
		if first == nil && tx.Bucket(bucketNodes) == nil {
			// A bbolt file, but not a gateway's: refuse it rather than
			// write into it.
			if c := tx.Cursor(); c != nil {
				if k, _ := c.First(); k != nil {
					first = fmt.Errorf("a bbolt file without the gateway's buckets (first bucket %q)", k)
				}
			}
		}
		return nil
	})
	if err == nil && first != nil {
		reason := first.Error()
		if n > 1 {
			reason = fmt.Sprintf("%s, and %d more problems", reason, n-1)
		}
		return &DamagedError{Path: path, Reason: reason}
	}
	if err != nil {
		return &DamagedError{Path: path, Reason: err.Error()}
	}
	return nil
}

// Backup writes a consistent copy of the store to w while it is in use
// (one read transaction: writers go on meanwhile) and returns its size.
// The copy is a store file: put it in place of gateway.db to restore.
func (s *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// Verify checks the store file at path as Open does, without opening it
// for writing: nil if it is sound, else a *DamagedError (or ErrLocked).
func Verify(path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return check(path, time.Second)
}
