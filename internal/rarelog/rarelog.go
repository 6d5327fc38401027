// Package rarelog is the rule by which Tether logs events that a peer can
// repeat at will (bad lines, floods, refused deliveries, invalid MQTT
// messages): each is counted, and logged on its first eight occurrences,
// then on each power of two, so that no peer can flood the log.
package rarelog

import "log/slog"

// Due reports whether the count-th occurrence of an event is logged.
func Due(count uint64) bool { return count <= 8 || count&(count-1) == 0 }

// Warn logs msg with args and count at Warn level when Due(count).
func Warn(log *slog.Logger, count uint64, msg string, args ...any) {
	if Due(count) {
		log.Warn(msg, append(args, "count", count)...)
	}
}
