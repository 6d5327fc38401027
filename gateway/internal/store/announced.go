package store

import (
	"bytes"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// bucketAnnounced keeps, per node ID, the retained MQTT topics the
// gateway published for Home Assistant beyond the fixed ones (configs of
// field sensors and buttons, field values) and the fields it made
// sensors of by itself: so that it can clear what is no longer
// configured, and everything when the node is forgotten, across
// restarts. It is apart from the nodes' buckets, which forgetting a node
// deletes before its retained topics are cleared.
var bucketAnnounced = []byte("announced")

// Announced is what the gateway published for a node's Home Assistant
// entities beyond the fixed ones.
type Announced struct {
	Topics []string `json:"topics,omitempty"` // retained topics published
	Auto   []string `json:"auto,omitempty"`   // fields made sensors by discovery.auto_fields
}

// Announced returns what SetAnnounced recorded for node id (zero if
// nothing).
func (s *Store) Announced(id string) (Announced, error) {
	var a Announced
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAnnounced)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(id))
		if v == nil {
			return nil
		}
		return json.Unmarshal(v, &a)
	})
	if err != nil {
		return Announced{}, fmt.Errorf("store: announced topics of %q: %w", id, err)
	}
	return a, nil
}

// SetAnnounced records a for node id; a zero a deletes the record.
// Calls from many goroutines share commits (the nodes introduced at
// start).
func (s *Store) SetAnnounced(id string, a Announced) error {
	var v []byte
	if len(a.Topics) > 0 || len(a.Auto) > 0 {
		var err error
		if v, err = json.Marshal(a); err != nil {
			return err
		}
	}
	err := s.db.Batch(func(tx *bolt.Tx) error {
		if v == nil {
			if b := tx.Bucket(bucketAnnounced); b != nil {
				return b.Delete([]byte(id))
			}
			return nil
		}
		b, err := tx.CreateBucketIfNotExists(bucketAnnounced)
		if err != nil {
			return err
		}
		if old := b.Get([]byte(id)); bytes.Equal(old, v) {
			return nil
		}
		return b.Put([]byte(id), v)
	})
	if err != nil {
		return fmt.Errorf("store: announced topics of %q: %w", id, err)
	}
	return nil
}
