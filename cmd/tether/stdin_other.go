//go:build !unix

package main

import (
	"errors"
	"io"
	"os"
)

// pollReader is Unix only: elsewhere stdin is read as it is (a blocked
// read of a console is not ended by Close).
type pollReader struct{ io.ReadCloser }

func interruptible(*os.File) (*pollReader, error) { return nil, errors.ErrUnsupported }

func (*pollReader) release() {}
