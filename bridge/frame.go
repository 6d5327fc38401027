package bridge

import (
	"errors"
	"hash/crc32"
)

// The serial framing (boards/micropython/spec.md is the reference): each
// line of the link protocol travels in one frame,
//
//	SOF FLAG LINE CRC LF
//
// SOF is '~'; FLAG is one byte (from the bridge, 'u' or 'd': the server
// link is up or down; from the board, '-'); LINE is the link protocol's
// line without its LF (empty: keepalive; two hex digits: ACK; two hex
// digits and a payload: message); CRC is the CRC-32 (IEEE, as zlib and
// binascii.crc32) of FLAG and LINE, as eight lowercase hex digits. A
// receiver takes the first SOF of a line whose CRC checks as the frame's
// start (bytes before it are noise), and drops a line with none: a frame
// that was corrupted, truncated or glued to another is never delivered,
// and the sender's qos repeats it.

// Frame bytes and flags.
const (
	SOF = '~'
	// FlagServerUp and FlagServerDown are the bridge's flags: the state
	// of its link to the server, carried by every frame it sends.
	FlagServerUp   = 'u'
	FlagServerDown = 'd'
	// FlagBoard is the board's flag.
	FlagBoard = '-'

	crcLen = 8
	// frameOverhead is what framing adds to a line: SOF, FLAG, CRC, LF.
	frameOverhead = 2 + crcLen + 1
)

// Errors of ParseFrame.
var (
	ErrNoFrame  = errors.New("bridge: no frame start in the line")
	ErrChecksum = errors.New("bridge: frame checksum mismatch")
)

const hexDigits = "0123456789abcdef"

// AppendFrame appends the frame of one link line (without its LF) to dst.
func AppendFrame(dst []byte, flag byte, line []byte) []byte {
	start := len(dst)
	dst = append(dst, SOF, flag)
	dst = append(dst, line...)
	crc := crc32.ChecksumIEEE(dst[start+1:])
	for i := 28; i >= 0; i -= 4 {
		dst = append(dst, hexDigits[crc>>uint(i)&0xf])
	}
	return append(dst, '\n')
}

// ParseFrame checks one received line (without its LF) and returns the
// frame's flag and link line, which aliases b. Bytes before the frame's
// SOF are skipped; a line whose CRC does not check from any SOF in it is
// ErrChecksum, one without SOF ErrNoFrame.
func ParseFrame(b []byte) (flag byte, line []byte, err error) {
	if len(b) < 2+crcLen {
		if indexByte(b, SOF) < 0 {
			return 0, nil, ErrNoFrame
		}
		return 0, nil, ErrChecksum
	}
	want, ok := parseCRC(b[len(b)-crcLen:])
	body := b[:len(b)-crcLen]
	found := false
	for i := 0; i+1 < len(body); i++ {
		if body[i] != SOF {
			continue
		}
		found = true
		if ok && crc32.ChecksumIEEE(body[i+1:]) == want {
			return body[i+1], body[i+2:], nil
		}
	}
	if !found && indexByte(b, SOF) < 0 {
		return 0, nil, ErrNoFrame
	}
	return 0, nil, ErrChecksum
}

func parseCRC(h []byte) (uint32, bool) {
	var v uint32
	for _, c := range h {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint32(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint32(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}
