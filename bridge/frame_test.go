package bridge

import (
	"bytes"
	"hash/crc32"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, line := range []string{"", "03", "03hello", "7f~tilde~inside", "ffé"} {
		f := AppendFrame(nil, FlagServerUp, []byte(line))
		if f[len(f)-1] != '\n' {
			t.Fatalf("%q: no LF", f)
		}
		flag, got, err := ParseFrame(f[:len(f)-1])
		if err != nil || flag != FlagServerUp || string(got) != line {
			t.Errorf("%q: got %q %q %v", f, flag, got, err)
		}
		// Noise before the frame is skipped.
		noisy := append([]byte("\x00\xff~x"), f[:len(f)-1]...)
		if _, got, err := ParseFrame(noisy); err != nil || string(got) != line {
			t.Errorf("noise + %q: got %q %v", f, got, err)
		}
	}
}

// TestFrameKnownVector pins the layout, which the board library (Python)
// must produce byte for byte.
func TestFrameKnownVector(t *testing.T) {
	got := string(AppendFrame(nil, FlagBoard, []byte("00boot 1a2b3c4d")))
	want := "~-00boot 1a2b3c4d" + hex8(crc32.ChecksumIEEE([]byte("-00boot 1a2b3c4d"))) + "\n"
	if got != want {
		t.Errorf("got %q want %q", got, want)
	}
	if got != "~-00boot 1a2b3c4d88b52c7e\n" { // as tether_board.frame(b"00boot 1a2b3c4d")
		t.Errorf("layout changed: %q", got)
	}
}

func hex8(v uint32) string {
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = hexDigits[v&0xf]
		v >>= 4
	}
	return string(b)
}

// TestFrameDetectsEveryByteError: any one byte changed or dropped, and
// any truncation, is caught.
func TestFrameDetectsEveryByteError(t *testing.T) {
	f := AppendFrame(nil, FlagServerDown, []byte("2aset pump 40%"))
	f = f[:len(f)-1]
	for i := range f {
		for bit := range 8 {
			g := bytes.Clone(f)
			g[i] ^= 1 << bit
			if _, line, err := ParseFrame(g); err == nil && !bytes.Equal(line, []byte("2aset pump 40%")) {
				t.Fatalf("flip of byte %d bit %d passed: %q", i, bit, line)
			} else if err == nil && i == 0 {
				t.Fatalf("flip of SOF passed")
			}
		}
		g := append(bytes.Clone(f[:i]), f[i+1:]...)
		if _, _, err := ParseFrame(g); err == nil {
			t.Fatalf("drop of byte %d passed: %q", i, g)
		}
		if _, _, err := ParseFrame(f[:i]); err == nil {
			t.Fatalf("truncation at %d passed", i)
		}
	}
	// Two frames glued (a lost LF): the first is noise before the second.
	g2 := AppendFrame(nil, FlagServerDown, []byte("2b"))
	glued := append(bytes.Clone(f), g2[:len(g2)-1]...)
	if _, line, err := ParseFrame(glued); err != nil || string(line) != "2b" {
		t.Fatalf("glued frames: %q %v", line, err)
	}
	if _, _, err := ParseFrame([]byte("hello from print()")); err != ErrNoFrame {
		t.Fatalf("a print: %v", err)
	}
}

func FuzzParseFrame(f *testing.F) {
	f.Add(AppendFrame(nil, 'u', []byte("01hi")))
	f.Add([]byte("~~~~~~~~~~~~"))
	f.Fuzz(func(t *testing.T, b []byte) {
		flag, line, err := ParseFrame(b)
		if err != nil {
			return
		}
		// What parses is a frame whose re-encoding is the tail of b.
		g := AppendFrame(nil, flag, line)
		if !bytes.HasSuffix(b, g[:len(g)-1]) {
			t.Fatalf("%q parsed as %q %q", b, flag, line)
		}
	})
}
