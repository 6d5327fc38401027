package wire

import (
	"bytes"
	"io"
)

// Buffer sizes of a LineReader: it starts small so that an idle link costs
// little memory, grows (doubling) up to its limit for long lines, and
// shrinks back once drained.
const (
	minBuf    = 256
	shrinkBuf = 4096
)

// LineReader reads LF-terminated lines of bounded length. Unlike
// bufio.Reader it holds only a small buffer while idle, and an over-long
// line costs no more memory than the limit: its bytes are discarded up to
// the next LF, and ReadLine reports ErrLineTooLong once for it.
//
// A LineReader is not safe for concurrent use.
type LineReader struct {
	r          io.Reader
	max        int // longest line, LF excluded
	buf        []byte
	start, end int  // unread bytes are buf[start:end]
	skipping   bool // inside an over-long line, discarding to its LF
	err        error
}

// NewLineReader returns a reader of lines of at most limit bytes (LF
// excluded) from r. Bytes in pre are read before r's: they are what an
// earlier reader had buffered past its last line.
func NewLineReader(r io.Reader, limit int, pre []byte) *LineReader {
	limit = max(limit, 1)
	lr := &LineReader{r: r, max: limit}
	if len(pre) > 0 {
		lr.buf = append(make([]byte, 0, max(len(pre), minBuf)), pre...)
		lr.end = len(pre)
	}
	return lr
}

// Buffered returns the bytes read from the underlying reader but not yet
// returned as lines. It aliases the reader's buffer.
func (lr *LineReader) Buffered() []byte { return lr.buf[lr.start:lr.end] }

// HasLine reports whether a complete line is buffered, so that the next
// ReadLine returns without reading.
func (lr *LineReader) HasLine() bool {
	return bytes.IndexByte(lr.buf[lr.start:lr.end], '\n') >= 0
}

// ReadLine returns the next line without its LF. The slice is valid until
// the next call. For an over-long line it returns ErrLineTooLong as soon as
// the limit is passed; the rest of that line is discarded by later calls, and
// reading goes on with the next line. Errors of the underlying reader are
// returned as they are; a final line without LF is not returned (a link
// that dies mid-line loses the fragment, it does not glue it to anything).
func (lr *LineReader) ReadLine() ([]byte, error) {
	for {
		if i := bytes.IndexByte(lr.buf[lr.start:lr.end], '\n'); i >= 0 {
			line := lr.buf[lr.start : lr.start+i]
			lr.start += i + 1
			if lr.skipping {
				lr.skipping = false
				continue
			}
			if len(line) > lr.max {
				return nil, ErrLineTooLong
			}
			return line, nil
		}
		if lr.skipping {
			lr.start, lr.end = 0, 0
		} else if lr.end-lr.start > lr.max {
			lr.skipping = true
			lr.start, lr.end = 0, 0
			return nil, ErrLineTooLong
		}
		if lr.err != nil {
			return nil, lr.err
		}
		lr.fill()
	}
}

// fill reads once from r, making room first.
func (lr *LineReader) fill() {
	if lr.start == lr.end {
		lr.start, lr.end = 0, 0
		if cap(lr.buf) > shrinkBuf {
			lr.buf = nil
		}
	}
	if lr.buf == nil {
		lr.buf = make([]byte, minBuf)
	}
	lr.buf = lr.buf[:cap(lr.buf)]
	if lr.end == len(lr.buf) {
		if lr.start > 0 {
			lr.end = copy(lr.buf, lr.buf[lr.start:lr.end])
			lr.start = 0
		} else {
			// Full of one unfinished line: grow, but never past what the
			// limit needs (max bytes plus the LF).
			n := min(2*len(lr.buf), lr.max+1)
			n = max(n, len(lr.buf)+1)
			nb := make([]byte, n)
			copy(nb, lr.buf[:lr.end])
			lr.buf = nb
		}
	}
	n, err := lr.r.Read(lr.buf[lr.end:])
	lr.end += n
	if err != nil {
		lr.err = err
	}
}
