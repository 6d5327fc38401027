// Package wire encodes and decodes the lines of the micropython-iot link
// protocol (see spec.md beside this file). It is stdlib-only and knows
// nothing of sockets, timers or state: the link engine builds on it.
//
// Every line on the wire ends in LF and is one of:
//
//	""            keepalive
//	"hh"          ACK of message id hh (two hex digits)
//	"hh"+payload  message with id hh; payload not empty, valid UTF-8
package wire

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Kind tells the three kinds of line apart.
type Kind uint8

const (
	// Keepalive is an empty line.
	Keepalive Kind = iota
	// Ack acknowledges the message whose id it carries.
	Ack
	// Msg is a message: an id and a payload.
	Msg
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case Keepalive:
		return "keepalive"
	case Ack:
		return "ack"
	case Msg:
		return "msg"
	}
	return "kind(?)"
}

// Frame is one decoded line.
type Frame struct {
	Kind    Kind
	ID      uint8
	Payload []byte // Msg only; aliases the parsed line
}

// Errors returned by Parse and the checks. The link counts them by reason.
var (
	ErrMalformed   = errors.New("malformed line: want empty, hh or hh+payload")
	ErrBadID       = errors.New("message id is not two hex digits")
	ErrNotUTF8     = errors.New("payload is not valid UTF-8")
	ErrLineTooLong = errors.New("line too long")
	ErrEmpty       = errors.New("empty payload (it would read as an ACK)")
	ErrNewline     = errors.New("payload contains a newline")
	ErrBadNodeID   = errors.New("invalid node ID")
)

// Parse decodes one line, given without its LF. A Msg frame's Payload
// aliases line. A message with a payload that is not UTF-8 returns the
// frame (so that its id can be logged) together with ErrNotUTF8.
func Parse(line []byte) (Frame, error) {
	switch len(line) {
	case 0:
		return Frame{Kind: Keepalive}, nil
	case 1:
		return Frame{}, ErrMalformed
	}
	hi, ok1 := unhex(line[0])
	lo, ok2 := unhex(line[1])
	if !ok1 || !ok2 {
		return Frame{}, ErrBadID
	}
	id := hi<<4 | lo
	if len(line) == 2 {
		return Frame{Kind: Ack, ID: id}, nil
	}
	f := Frame{Kind: Msg, ID: id, Payload: line[2:]}
	if !utf8.Valid(f.Payload) {
		return f, ErrNotUTF8
	}
	return f, nil
}

func unhex(c byte) (uint8, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

const hexDigits = "0123456789abcdef"

// AppendMsg appends the line of message id with payload, LF included.
// The payload must have passed CheckPayload.
func AppendMsg(dst []byte, id uint8, payload string) []byte {
	dst = append(dst, hexDigits[id>>4], hexDigits[id&0xf])
	dst = append(dst, payload...)
	return append(dst, '\n')
}

// AppendAck appends the ACK line of message id, LF included.
func AppendAck(dst []byte, id uint8) []byte {
	return append(dst, hexDigits[id>>4], hexDigits[id&0xf], '\n')
}

// AppendKeepalive appends a keepalive line.
func AppendKeepalive(dst []byte) []byte { return append(dst, '\n') }

// CheckPayload reports why an application payload cannot be sent, or nil.
// One final LF is allowed and removed, as the legacy write did; maxLine is
// the longest line (id included, LF excluded) the peer accepts, and 0 means
// no limit. It returns the payload without its final LF.
func CheckPayload(p string, maxLine int) (string, error) {
	if n := len(p); n > 0 && p[n-1] == '\n' {
		p = p[:n-1]
	}
	switch {
	case p == "":
		return "", ErrEmpty
	case maxLine > 0 && len(p)+2 > maxLine:
		return "", ErrLineTooLong
	case !utf8.ValidString(p):
		return "", ErrNotUTF8
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '\n' {
			return "", ErrNewline
		}
	}
	return p, nil
}

// MaxNodeID is the default longest node ID, in bytes.
const MaxNodeID = 64

// CheckNodeID reports whether id is acceptable as a node ID: not empty, at
// most max bytes (MaxNodeID if max <= 0), valid UTF-8, and made of
// visible characters only, so that no two IDs that differ look alike on a
// page, in a log or in a topic (spec.md, "Node IDs"): letters, marks
// (not first), digits, punctuation, symbols, and the ASCII space inside
// (not first or last). Refused: control characters (Cc), format
// characters (Cf: bidi overrides and isolates, zero-width spaces and
// joiners, the soft hyphen, tags), private-use, unassigned and
// noncharacter code points, every space other than U+0020 (no-break,
// thin, ideographic...) and line or paragraph separators, variation
// selectors and other default-ignorable characters (U+034F, the Hangul
// fillers), and U+FFFD, the mark of a decoding error.
func CheckNodeID(id string, max int) error {
	if max <= 0 {
		max = MaxNodeID
	}
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrBadNodeID)
	case len(id) > max:
		return fmt.Errorf("%w: %d bytes, longer than %d", ErrBadNodeID, len(id), max)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w: not UTF-8", ErrBadNodeID)
	case id[0] == ' ' || id[len(id)-1] == ' ':
		return fmt.Errorf("%w: leading or trailing space", ErrBadNodeID)
	}
	for i, r := range id {
		if why := badIDRune(r, i == 0); why != "" {
			return fmt.Errorf("%w: %s %U at byte %d", ErrBadNodeID, why, r, i)
		}
	}
	return nil
}

// badIDRune says why r may not be in a node ID, or "".
func badIDRune(r rune, first bool) string {
	switch {
	case r == ' ':
		return ""
	case r < 0x80 && r > ' ' && r < 0x7f:
		return "" // printable ASCII: the common case
	case unicode.IsControl(r):
		return "control character"
	case unicode.Is(unicode.Cf, r):
		return "invisible format character"
	case unicode.Is(unicode.White_Space, r), unicode.In(r, unicode.Zs, unicode.Zl, unicode.Zp):
		return "space other than U+0020"
	case unicode.In(r, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point):
		return "invisible character"
	case unicode.In(r, unicode.Co, unicode.Noncharacter_Code_Point), r == utf8.RuneError:
		return "private-use or noncharacter code point"
	case !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S):
		return "unassigned code point"
	case first && unicode.Is(unicode.M, r):
		return "combining mark first"
	}
	return ""
}
