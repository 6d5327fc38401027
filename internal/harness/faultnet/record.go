package faultnet

import (
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// recorder writes the JSONL transcript. A nil *recorder records nothing.
// Lines are byte-for-byte what the legacy recorder (Python's json.dumps
// with default separators and ensure_ascii) wrote: keys in a fixed order,
// ", " and ": " separators, "t" rounded to milliseconds.
type recorder struct {
	mu     sync.Mutex
	w      io.Writer
	start  time.Time
	log    *slog.Logger
	failed bool // a write failed: logged once
}

func newRecorder(w io.Writer, start time.Time, log *slog.Logger) *recorder {
	if w == nil {
		return nil
	}
	return &recorder{w: w, start: start, log: log}
}

// event is one transcript line. An empty ev means a data line.
type event struct {
	ev      string // "open", "close", "eof" or ""
	conn    int
	dir     Dir    // data and eof
	dropped bool   // data
	rst     bool   // close
	data    []byte // data
}

func (r *recorder) open(conn int) { r.emit(event{ev: "open", conn: conn}) }

func (r *recorder) close(conn int, rst bool) { r.emit(event{ev: "close", conn: conn, rst: rst}) }

func (r *recorder) eof(conn int, dir Dir) { r.emit(event{ev: "eof", conn: conn, dir: dir}) }

func (r *recorder) data(conn int, dir Dir, dropped bool, data []byte) {
	r.emit(event{conn: conn, dir: dir, dropped: dropped, data: data})
}

// emit writes e as one line. The time is taken under the lock, so "t"
// never decreases along the transcript. A nil r does nothing.
func (r *recorder) emit(e event) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	b := appendEvent(make([]byte, 0, 128+len(e.data)), time.Since(r.start), e)
	if _, err := r.w.Write(b); err != nil && !r.failed {
		r.failed = true
		r.log.Warn("faultnet: transcript write failed", "err", err)
	}
}

// appendEvent appends e, at d since the start, as a transcript line with
// its final LF.
func appendEvent(b []byte, d time.Duration, e event) []byte {
	b = append(b, `{"t": `...)
	b = appendSeconds(b, d)
	if e.ev != "" {
		b = append(b, `, "ev": "`...)
		b = append(b, e.ev...)
		b = append(b, '"')
	}
	b = append(b, `, "conn": `...)
	b = strconv.AppendInt(b, int64(e.conn), 10)
	switch e.ev {
	case "":
		b = append(b, `, "dir": "`...)
		b = append(b, e.dir.String()...)
		b = append(b, `", "dropped": `...)
		b = strconv.AppendBool(b, e.dropped)
		b = append(b, `, "data": `...)
		b = appendPyString(b, e.data)
	case "close":
		b = append(b, `, "rst": `...)
		b = strconv.AppendBool(b, e.rst)
	case "eof":
		b = append(b, `, "dir": "`...)
		b = append(b, e.dir.String()...)
		b = append(b, '"')
	}
	return append(b, "}\n"...)
}

// appendSeconds appends d in seconds rounded to milliseconds, formatted
// like Python's repr of a float: shortest form, at least one decimal.
func appendSeconds(b []byte, d time.Duration) []byte {
	s := math.Round(d.Seconds()*1000) / 1000
	n := len(b)
	b = strconv.AppendFloat(b, s, 'f', -1, 64)
	for _, c := range b[n:] {
		if c == '.' {
			return b
		}
	}
	return append(b, ".0"...)
}

// appendPyString appends data as a JSON string the way Python's json.dumps
// (ensure_ascii) writes it: printable ASCII as is, short escapes for
// \" \\ \n \r \t \b \f, everything else as lowercase \uXXXX (UTF-16
// surrogate pairs above U+FFFF). A byte that is not valid UTF-8 is written
// as \udcXX, Python's surrogateescape form (Go's encoding/json reads it as
// U+FFFD).
func appendPyString(b, data []byte) []byte {
	const hex = "0123456789abcdef"
	u := func(b []byte, r rune) []byte {
		return append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
	}
	b = append(b, '"')
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		switch {
		case r == utf8.RuneError && size == 1:
			b = u(b, 0xdc00|rune(data[0]))
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, `\n`...)
		case r == '\r':
			b = append(b, `\r`...)
		case r == '\t':
			b = append(b, `\t`...)
		case r == '\b':
			b = append(b, `\b`...)
		case r == '\f':
			b = append(b, `\f`...)
		case r >= 0x20 && r <= 0x7e:
			b = append(b, byte(r))
		case r > 0xffff:
			r -= 0x10000
			b = u(b, 0xd800|r>>10)
			b = u(b, 0xdc00|r&0x3ff)
		default:
			b = u(b, r)
		}
		data = data[size:]
	}
	return append(b, '"')
}
