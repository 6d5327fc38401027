package wire

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// lines pairs raw lines (LF excluded) with their decoded frames or errors;
// both the decoder and the encoder tests read it.
var lines = []struct {
	raw   string
	frame Frame
	err   error
}{
	{raw: "", frame: Frame{Kind: Keepalive}},
	{raw: "00", frame: Frame{Kind: Ack, ID: 0}},
	{raw: "ff", frame: Frame{Kind: Ack, ID: 0xff}},
	{raw: "7a", frame: Frame{Kind: Ack, ID: 0x7a}},
	{raw: "00hello", frame: Frame{Kind: Msg, ID: 0, Payload: []byte("hello")}},
	{raw: `01[1, "c:cut", 1795557084.132295]`, frame: Frame{Kind: Msg, ID: 1, Payload: []byte(`[1, "c:cut", 1795557084.132295]`)}},
	{raw: "ffé€", frame: Frame{Kind: Msg, ID: 0xff, Payload: []byte("é€")}},
	{raw: "0a ", frame: Frame{Kind: Msg, ID: 0x0a, Payload: []byte(" ")}},
	{raw: "x", err: ErrMalformed},
	{raw: "0", err: ErrMalformed},
	{raw: "zz", err: ErrBadID},
	{raw: "0g", err: ErrBadID},
	{raw: " 1x", err: ErrBadID},
	{raw: "-1x", err: ErrBadID},
	{raw: "01\xff\xfe", err: ErrNotUTF8},
}

func TestParse(t *testing.T) {
	for _, tc := range lines {
		f, err := Parse([]byte(tc.raw))
		if !errors.Is(err, tc.err) {
			t.Errorf("Parse(%q) error = %v, want %v", tc.raw, err, tc.err)
			continue
		}
		if err != nil {
			continue
		}
		if f.Kind != tc.frame.Kind || f.ID != tc.frame.ID || !bytes.Equal(f.Payload, tc.frame.Payload) {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.raw, f, tc.frame)
		}
	}
}

func TestParseUppercase(t *testing.T) {
	f, err := Parse([]byte("AB"))
	if err != nil || f.Kind != Ack || f.ID != 0xab {
		t.Fatalf("Parse(AB) = %+v, %v", f, err)
	}
}

func encode(f Frame) []byte {
	switch f.Kind {
	case Ack:
		return AppendAck(nil, f.ID)
	case Msg:
		return AppendMsg(nil, f.ID, string(f.Payload))
	}
	return AppendKeepalive(nil)
}

func TestEncode(t *testing.T) {
	for _, tc := range lines {
		if tc.err != nil {
			continue
		}
		if got := string(encode(tc.frame)); got != tc.raw+"\n" {
			t.Errorf("encode(%+v) = %q, want %q", tc.frame, got, tc.raw+"\n")
		}
	}
}

func TestCheckPayload(t *testing.T) {
	for _, tc := range []struct {
		in, out string
		max     int
		err     error
	}{
		{in: "a", out: "a"},
		{in: "a\n", out: "a"},
		{in: "", err: ErrEmpty},
		{in: "\n", err: ErrEmpty},
		{in: "a\nb", err: ErrNewline},
		{in: "a\n\n", err: ErrNewline},
		{in: "\xff", err: ErrNotUTF8},
		{in: "abc", max: 5, out: "abc"},
		{in: "abcd", max: 5, err: ErrLineTooLong},
	} {
		out, err := CheckPayload(tc.in, tc.max)
		if !errors.Is(err, tc.err) || out != tc.out {
			t.Errorf("CheckPayload(%q, %d) = %q, %v; want %q, %v", tc.in, tc.max, out, err, tc.out, tc.err)
		}
	}
}

func TestCheckNodeID(t *testing.T) {
	good := []string{"1", "qos", "tx", "node one", "ñandú", "Ωmega-7", "温度", "a.b_c-d:e@f", "x/y+z#", "é" /* e + U+0301 */, strings.Repeat("x", MaxNodeID)}
	bad := []string{"", "a\x00", "a\rb", "a\tb", "\x1b[31m", "\xff", strings.Repeat("x", MaxNodeID+1),
		// Look-alikes (issue 10.8): invisible or odd characters that
		// make one ID look like another on the page, in logs and topics.
		"good\u200b1",       // zero-width space (Cf)
		"\u200dgood1",       // zero-width joiner
		"good\ufeff1",       // BOM / zero-width no-break space
		"\u202egood1",       // right-to-left override (bidi)
		"good\u2066x\u2069", // isolates
		"good\u00a01",       // no-break space
		"good\u20091",       // thin space
		"good\u30001",       // ideographic space
		"good\u2028",        // line separator
		" good1", "good1 ",  // surrounding spaces
		"good\u00ad1",    // soft hyphen (Cf)
		"good\ufe0f1",    // variation selector
		"good\u034f1",    // combining grapheme joiner (default ignorable)
		"\u3164",         // Hangul filler: a blank letter
		"\u0301e",        // a combining mark first
		"good\ue0001",    // private use
		"good\ufffd1",    // replacement character
		"good\uffff",     // noncharacter
		"good\U000e0041", // tag character
	}
	for _, id := range good {
		if err := CheckNodeID(id, 0); err != nil {
			t.Errorf("CheckNodeID(%q) = %v, want nil", id, err)
		}
	}
	for _, id := range bad {
		if err := CheckNodeID(id, 0); !errors.Is(err, ErrBadNodeID) {
			t.Errorf("CheckNodeID(%q) = %v, want ErrBadNodeID", id, err)
		}
	}
}

func readAll(t *testing.T, lr *LineReader) (out []string, tooLong int) {
	t.Helper()
	for {
		line, err := lr.ReadLine()
		switch {
		case errors.Is(err, ErrLineTooLong):
			tooLong++
			continue
		case err == io.EOF:
			return out, tooLong
		case err != nil:
			t.Fatalf("ReadLine: %v", err)
		}
		out = append(out, string(line))
	}
}

func TestLineReader(t *testing.T) {
	long := strings.Repeat("y", 5000)
	in := "a\n\n01hello\n" + long + "\nok\n" + strings.Repeat("z", 20) + "\nfragment"
	for name, r := range map[string]io.Reader{
		"whole":    strings.NewReader(in),
		"one-byte": iotest.OneByteReader(strings.NewReader(in)),
		"half":     iotest.HalfReader(strings.NewReader(in)),
	} {
		t.Run(name, func(t *testing.T) {
			lr := NewLineReader(r, 20, nil)
			got, tooLong := readAll(t, lr)
			want := []string{"a", "", "01hello", "ok", strings.Repeat("z", 20)}
			if strings.Join(got, "|") != strings.Join(want, "|") || tooLong != 1 {
				t.Fatalf("got %q (tooLong %d), want %q (tooLong 1)", got, tooLong, want)
			}
			if cap(lr.buf) > 256 {
				t.Fatalf("buffer grew to %d for a 20-byte limit", cap(lr.buf))
			}
		})
	}
}

func TestLineReaderPre(t *testing.T) {
	lr := NewLineReader(strings.NewReader("c\nd\n"), 100, []byte("a\nb"))
	got, _ := readAll(t, lr)
	if strings.Join(got, "|") != "a|bc|d" {
		t.Fatalf("got %q", got)
	}
}

func TestLineReaderGrowsAndShrinks(t *testing.T) {
	long := strings.Repeat("x", 10000)
	lr := NewLineReader(strings.NewReader(long+"\n\n"), 1<<20, nil)
	line, err := lr.ReadLine()
	if err != nil || string(line) != long {
		t.Fatalf("long line: %d bytes, %v", len(line), err)
	}
	if line, err = lr.ReadLine(); err != nil || len(line) != 0 {
		t.Fatalf("keepalive: %q, %v", line, err)
	}
	if _, err := lr.ReadLine(); err != io.EOF {
		t.Fatalf("want EOF, got %v", err)
	}
	if lr.buf != nil && cap(lr.buf) > shrinkBuf {
		t.Fatalf("buffer kept %d bytes after draining", cap(lr.buf))
	}
}

func TestLineReaderBuffered(t *testing.T) {
	lr := NewLineReader(strings.NewReader("node7\n00first\n"), 64, nil)
	id, err := lr.ReadLine()
	if err != nil || string(id) != "node7" {
		t.Fatalf("id %q, %v", id, err)
	}
	if got := string(lr.Buffered()); got != "00first\n" {
		t.Fatalf("Buffered = %q", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, tc := range lines {
		f.Add([]byte(tc.raw))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		fr, err := Parse(line)
		if err != nil {
			return
		}
		enc := encode(fr)
		// Decode→encode→decode is stable; ids are re-encoded lowercase.
		fr2, err := Parse(enc[:len(enc)-1])
		if err != nil || fr2.Kind != fr.Kind || fr2.ID != fr.ID || !bytes.Equal(fr2.Payload, fr.Payload) {
			t.Fatalf("round trip of %q: %+v -> %q -> %+v, %v", line, fr, enc, fr2, err)
		}
		if !bytes.EqualFold(enc[:len(enc)-1], line) {
			t.Fatalf("re-encoding of %q differs: %q", line, enc)
		}
	})
}

func FuzzLineReader(f *testing.F) {
	f.Add([]byte("a\nbb\n\n"), uint8(3), false)
	f.Add([]byte(strings.Repeat("x", 300)+"\nok\n"), uint8(10), true)
	f.Add([]byte("abcdef\nok\n"), uint8(3), true)
	f.Fuzz(func(t *testing.T, in []byte, limit uint8, whole bool) {
		max := int(limit) + 1
		var r io.Reader = iotest.OneByteReader(bytes.NewReader(in))
		if whole {
			r = bytes.NewReader(in)
		}
		lr := NewLineReader(r, max, nil)
		var got [][]byte
		for {
			line, err := lr.ReadLine()
			if errors.Is(err, ErrLineTooLong) {
				got = append(got, nil)
				continue
			}
			if err != nil {
				break
			}
			if len(line) > max {
				t.Fatalf("line of %d bytes passed a limit of %d", len(line), max)
			}
			got = append(got, append([]byte(nil), line...))
		}
		if cap(lr.buf) > max+1 && cap(lr.buf) > minBuf {
			t.Fatalf("buffer %d bytes for limit %d", cap(lr.buf), max)
		}
		// Compare with a simple model: split on LF, drop the final
		// fragment, unless it is already over-long (reported as such).
		parts := bytes.Split(in, []byte("\n"))
		if frag := parts[len(parts)-1]; len(frag) <= max {
			parts = parts[:len(parts)-1]
		}
		if len(parts) != len(got) {
			t.Fatalf("got %d lines, model %d", len(got), len(parts))
		}
		for i, p := range parts {
			if len(p) > max {
				if got[i] != nil {
					t.Fatalf("line %d: over-long line returned", i)
				}
				continue
			}
			if !bytes.Equal(p, got[i]) {
				t.Fatalf("line %d: %q, model %q", i, got[i], p)
			}
		}
	})
}
