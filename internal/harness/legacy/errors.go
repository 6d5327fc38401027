package legacy

import "errors"

var (
	// ErrBadServer is the cause of a node's stop when its first connection
	// to the server fails and NodeConfig.BadServer is nil: the legacy
	// bad_server hook raises by default.
	ErrBadServer = errors.New("legacy: no initial server connection")

	// ErrRestarted is returned by the calls of a node process that
	// Node.Restart replaced.
	ErrRestarted = errors.New("legacy: node restarted")

	// ErrBadID is returned by ServerConn.ReadLine for a queued line whose
	// first two characters are not a number in base 16 (the legacy
	// readline raises ValueError).
	ErrBadID = errors.New("legacy: message id is not hex")

	// ErrInvalidUTF8 is the cause of a legacy server crash when the bytes
	// of a node's ID are not valid UTF-8: the legacy accept loop raises
	// UnicodeDecodeError and the whole server stops.
	ErrInvalidUTF8 = errors.New("legacy: invalid UTF-8")
)
