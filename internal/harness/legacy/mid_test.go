package legacy

import "testing"

func TestMidSequence(t *testing.T) {
	var g midGen
	for want := range 256 {
		if got := g.next(); got != want {
			t.Fatalf("id %d = %d", want, got)
		}
	}
	for want := 1; want < 300; want++ {
		if got := g.next(); got != (want-1)%255+1 {
			t.Fatalf("after wrap: got %d, want %d", got, (want-1)%255+1)
		}
	}
}

func TestWindow(t *testing.T) {
	var w window
	if !w.isNew(5) || w.isNew(5) {
		t.Fatal("5 must be new once")
	}
	// Setting id 0x85 (byte 16) clears byte 0, which holds 5, half a
	// window ahead.
	if !w.isNew(0x85) || !w.isNew(5) {
		t.Fatal("byte half a window ahead must be cleared")
	}
	// The 00 repeat weakness: the caller clears before each 00.
	w.clear()
	if !w.isNew(0) {
		t.Fatal("0 after clear")
	}
	w.clear()
	if !w.isNew(0) {
		t.Fatal("repeated 0 after clear must be new again")
	}
	// isnew(-1) clears and returns None.
	w.isNew(7)
	if w.isNew(-1) || !w.isNew(7) {
		t.Fatal("isnew(-1) must clear")
	}
	// Other negatives index from the end, as Python does.
	if !w.isNew(-2) || w.isNew(254) {
		t.Fatal("-2 must act on 254")
	}
}

func TestSetByte(t *testing.T) {
	var s setByte
	if !s.empty() {
		t.Fatal("new set not empty")
	}
	s.add(255)
	s.add(3)
	s.discard(-1) // Python: _ba[-1] bit 7, i.e. 255
	if s.has(255) || !s.has(3) || s.empty() {
		t.Fatal("discard(-1) must drop 255 only")
	}
	s.discard(3)
	if !s.empty() {
		t.Fatal("not empty")
	}
}

func TestParseMid(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"00", 0, true}, {"ff", 255, true}, {"FF", 255, true}, {"0a", 10, true},
		{"a\n", 10, true}, {" 1", 1, true}, {"-1", -1, true}, {"+f", 15, true},
		{"zz", 0, false}, {"  ", 0, false}, {"", 0, false}, {"-", 0, false}, {"_1", 0, false},
	} {
		got, ok := parseMid(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseMid(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestFrame(t *testing.T) {
	for _, tc := range []struct {
		mid  int
		line string
		want string
	}{
		{0, "hi", "00hi\n"}, {255, "x\n", "ffx\n"}, {1, "", "01\n"}, {-1, "a", "-1a\n"},
	} {
		if got := frame(tc.mid, tc.line); got != tc.want {
			t.Errorf("frame(%d, %q) = %q, want %q", tc.mid, tc.line, got, tc.want)
		}
	}
}

func TestParseLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Line
		bad  bool
	}{
		{"", Line{Kind: Keepalive}, false},
		{"0a", Line{Kind: Ack, ID: 10}, false},
		{"ffhello", Line{Kind: Message, ID: 255, Payload: "hello"}, false},
		{"0A", Line{}, true},
		{"a", Line{}, true},
		{"zzx", Line{}, true},
	} {
		got, err := ParseLine(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseLine(%q) = %+v, %v", tc.in, got, err)
		}
	}
}
