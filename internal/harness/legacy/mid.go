package legacy

import "fmt"

// midGen is the legacy gmid generator: 0 first, then 1..255, then 1 again.
type midGen struct{ n int }

func (g *midGen) next() int {
	m := g.n
	g.n = (g.n + 1) & 0xff
	if g.n == 0 {
		g.n = 1
	}
	return m
}

// window is the legacy 256-bit de-duplication list used by isnew.
type window [32]byte

func (w *window) clear() { *w = window{} }

// isNew ports isnew(mid, lst). isnew(-1) clears the list and returns None
// (false). Other negative ids index the bytearray from its end, as Python
// does, so they act on id 256+mid.
func (w *window) isNew(mid int) bool {
	if mid == -1 {
		w.clear()
		return false
	}
	if mid < 0 {
		mid += 256
	}
	idx := mid >> 3
	bit := byte(1) << (mid & 7)
	res := w[idx]&bit == 0
	w[idx] |= bit
	w[(idx+16)&0x1f] = 0
	return res
}

// setByte is the node's ASetByte of ids awaiting an ACK. Negative ids act
// on 256+mid, as in Python.
type setByte [32]byte

func (s *setByte) add(mid int) {
	mid &= 0xff
	s[mid>>3] |= 1 << (mid & 7)
}

func (s *setByte) discard(mid int) {
	if mid < 0 {
		mid += 256
	}
	s[mid>>3] &^= 1 << (mid & 7)
}

func (s *setByte) has(mid int) bool { return s[(mid&0xff)>>3]&(1<<(mid&7)) != 0 }

func (s *setByte) empty() bool { return *s == setByte{} }

// parseMid ports int(s, 16) for the two-character id field: surrounding
// ASCII whitespace is ignored and a sign is allowed, so the result lies in
// -15..255. Unicode whitespace and non-ASCII digits, which CPython also
// accepts, are not modelled.
func parseMid(s string) (int, bool) {
	i, j := 0, len(s)
	for i < j && isSpace(s[i]) {
		i++
	}
	for j > i && isSpace(s[j-1]) {
		j--
	}
	s = s[i:j]
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return 0, false
	}
	v := 0
	for k := 0; k < len(s); k++ {
		d, ok := hexVal(s[k])
		if !ok {
			return 0, false
		}
		v = v*16 + d
	}
	if neg {
		v = -v
	}
	return v, true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func hexVal(c byte) (int, bool) {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0'), true
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10, true
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10, true
	}
	return 0, false
}

// fmtMid is '{:02x}'.format(mid): Go's %02x also writes "-1" for -1.
func fmtMid(mid int) string { return fmt.Sprintf("%02x", mid) }

// frame is the legacy write format: id, then the line, then LF unless the
// line already ends with one. Nothing else is checked, as in the legacy code.
func frame(mid int, line string) string {
	if len(line) > 0 && line[len(line)-1] == '\n' {
		return fmtMid(mid) + line
	}
	return fmtMid(mid) + line + "\n"
}
