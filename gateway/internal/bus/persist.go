package bus

import (
	"log/slog"
	"strconv"
	"strings"

	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/hooks/storage/bolt"
)

// boltHook is mochi's bbolt storage hook, which keeps the broker's
// retained messages and its clients' persistent sessions in a file,
// with one fix: mochi 2.7.9's bolt hook does not store an inflight
// message's packet id (its badger and pebble hooks do), so a restored
// QoS 1 message is refused when it is sent again ("missing packet id")
// and its client's connection dropped. The id is the last part of the
// message's key (client:id), where it is taken back from.
type boltHook struct{ *bolt.Hook }

// StoredInflightMessages returns the stored inflight messages with
// their packet ids.
func (h *boltHook) StoredInflightMessages() ([]storage.Message, error) {
	v, err := h.Hook.StoredInflightMessages()
	for i := range v {
		if v[i].PacketID != 0 {
			continue
		}
		if k := strings.LastIndexByte(v[i].ID, ':'); k >= 0 {
			if id, err := strconv.ParseUint(v[i].ID[k+1:], 10, 16); err == nil {
				v[i].PacketID = uint16(id)
			}
		}
	}
	return v, err
}

// missingSysInfo is mochi's error line for a new broker file, which has
// no $SYS record yet: nothing is wrong.
func missingSysInfo(r slog.Record) bool {
	if r.Message != "failed to get data" {
		return false
	}
	sys := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "key" && a.Value.String() == storage.SysInfoKey {
			sys = true
			return false
		}
		return true
	})
	return sys
}
