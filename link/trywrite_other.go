//go:build !unix

package link

import (
	"errors"
	"syscall"
)

const canTryWrite = false

// rawWriter is never used where writes cannot be made non-blocking: every
// write goes through a flusher goroutine.
type rawWriter struct {
	rc syscall.RawConn
}

func (w *rawWriter) tryWrite([]byte) (int, error) {
	return 0, errors.New("link: no non-blocking writes on this platform")
}
