package store

import (
	bolt "go.etcd.io/bbolt"
)

// Access flags of a node ID, kept in its bucket (key "access", one byte):
// what the operator decided about it and what the gateway learnt.
const (
	// FlagApproved: an operator approved the ID (approval mode).
	FlagApproved uint8 = 1 << iota
	// FlagDenied: an operator denied the ID; its claims are refused
	// without being listed as pending.
	FlagDenied
	// FlagTLS: the node proved its ID with a certificate once; from then
	// on a plain-TCP claim of it is refused.
	FlagTLS
)

var keyAccess = []byte("access")

// Access returns the access flags of node id. It reads memory only.
func (s *Store) Access(id string) uint8 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.access[id]
}

// SetAccess sets the flags set and clears the flags clear of node id, in
// one transaction; it writes only if they change.
func (s *Store) SetAccess(id string, set, clear uint8) error {
	s.mu.Lock()
	old := s.access[id]
	s.mu.Unlock()
	v := old&^clear | set
	if v == old {
		return nil
	}
	if err := s.update(id, func(b *bolt.Bucket) error { return b.Put(keyAccess, []byte{v}) }); err != nil {
		return err
	}
	s.mu.Lock()
	if v == 0 {
		delete(s.access, id)
	} else {
		s.access[id] = v
	}
	s.mu.Unlock()
	return nil
}

// WithAccess returns the IDs whose flags include all of flags, with
// their flags.
func (s *Store) WithAccess(flags uint8) map[string]uint8 {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]uint8)
	for id, v := range s.access {
		if v&flags == flags {
			m[id] = v
		}
	}
	return m
}

// loadAccess reads node bucket b's flags, at Open.
func (s *Store) loadAccess(id string, b *bolt.Bucket) {
	if v := b.Get(keyAccess); len(v) == 1 && v[0] != 0 {
		s.access[id] = v[0]
	}
}
