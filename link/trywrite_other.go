//go:build !unix

package link

import (
	"errors"
	"syscall"
)

const canTryWrite = false

func tryWrite(syscall.RawConn, []byte) (int, error) {
	return 0, errors.New("link: no non-blocking writes on this platform")
}
