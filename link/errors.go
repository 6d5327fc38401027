package link

import (
	"errors"
	"net"

	"github.com/tether-iot/tether/internal/wire"
)

// Errors of application misuse, returned by Write. Test with errors.Is.
var (
	ErrEmpty         = errors.New("empty payload (it would read as an ACK)")
	ErrNewline       = errors.New("payload contains a newline") // a LF anywhere but at the end
	ErrTooLong       = errors.New("line too long")              // longer than Config.MaxLine
	ErrNotUTF8       = errors.New("payload is not valid UTF-8") // the wire carries UTF-8 text
	ErrIDInUse       = errors.New("link: message id is still awaiting its ACK")
	ErrNoQueue       = errors.New("link: messages go to Config.Deliver, not ReadLine")
	ErrBusy          = errors.New("link: another socket is attached and live")
	ErrClosed  error = closedError{} // the link was closed; errors.Is(err, net.ErrClosed) holds too
)

// Reasons for an outage, carried by Down events and returned by Attach.
var (
	// ErrTimeout: no byte came from the peer for T. It is a net.Error
	// whose Timeout method reports true.
	ErrTimeout error = timeoutError{}
	// ErrPeerClosed: the peer closed the socket.
	ErrPeerClosed = errors.New("peer closed the connection")
	// ErrWriteTimeout: a write could not complete within T.
	ErrWriteTimeout error = writeTimeoutError{}
)

// CheckPayload returns the error Write would return for line's content
// (ErrEmpty, ErrNewline, ErrTooLong, ErrNotUTF8), or nil: a queue can
// refuse at once what could never be written. maxLine is Config.MaxLine
// (0: no limit). One final LF is allowed, as Write allows it.
func CheckPayload(line string, maxLine int) error {
	_, err := wire.CheckPayload(line, maxLine)
	return payloadError(err)
}

// payloadError returns the Write error for err, an error of
// wire.CheckPayload.
func payloadError(err error) error {
	for _, e := range [...][2]error{
		{wire.ErrEmpty, ErrEmpty},
		{wire.ErrNewline, ErrNewline},
		{wire.ErrLineTooLong, ErrTooLong},
		{wire.ErrNotUTF8, ErrNotUTF8},
	} {
		if errors.Is(err, e[0]) {
			return e[1]
		}
	}
	return err
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "no data from peer within the timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

type writeTimeoutError struct{}

func (writeTimeoutError) Error() string   { return "write did not complete within the timeout" }
func (writeTimeoutError) Timeout() bool   { return true }
func (writeTimeoutError) Temporary() bool { return true }

type closedError struct{}

func (closedError) Error() string { return "link closed" }
func (closedError) Unwrap() error { return net.ErrClosed }
