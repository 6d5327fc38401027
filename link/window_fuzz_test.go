package link

import (
	"bytes"
	"testing"
)

// FuzzWindowUnmarshal: any bytes either fail to decode or decode to a
// window whose encoding decodes to the same window and encodes to the same
// bytes again (the store keeps windows in this form; a corrupted one must
// be refused or read as some window, never panic).
func FuzzWindowUnmarshal(f *testing.F) {
	var w Window
	b, _ := w.MarshalBinary()
	f.Add(b)
	some := bytes.Clone(b) // ids 00-02 and 80 seen, a 00, flags set, an age
	some[1], some[17] = 0x07, 0x01
	some[33] = 0x0f
	some[41] = 0x5a
	some[len(some)-1] = 0x2c
	f.Add(some)
	f.Add(some[1:42]) // the first encoding (41 bytes)
	f.Add(bytes.Repeat([]byte{0xff}, len(b)))
	f.Add([]byte{})
	f.Add(b[:len(b)-1])
	f.Fuzz(func(t *testing.T, b []byte) {
		var w Window
		if err := w.UnmarshalBinary(b); err != nil {
			return
		}
		b2, err := w.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary of a decoded window: %v", err)
		}
		var w2 Window
		if err := w2.UnmarshalBinary(b2); err != nil {
			t.Fatalf("UnmarshalBinary of MarshalBinary's %x: %v", b2, err)
		}
		if w2 != w {
			t.Fatalf("round trip: %+v became %+v", w, w2)
		}
		if b3, _ := w2.MarshalBinary(); !bytes.Equal(b3, b2) {
			t.Fatalf("encoding not stable: %x then %x", b2, b3)
		}
	})
}
