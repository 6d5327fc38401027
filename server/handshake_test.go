package server

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/tether-iot/tether/internal/wire"
)

func TestReadID(t *testing.T) {
	for _, tc := range []struct {
		in, id, pre string
		err         error
	}{
		{in: "node1\n", id: "node1"},
		{in: "node1\n\n00hello\n", id: "node1", pre: "\n00hello\n"},
		{in: "a b\n", id: "a b"},
		{in: "\n", err: wire.ErrBadNodeID},
		{in: "a\x00b\n", err: wire.ErrBadNodeID},
		{in: "a\x1b[2Jb\n", err: wire.ErrBadNodeID},
		{in: "\xff\xfe\n", err: wire.ErrBadNodeID},
		{in: strings.Repeat("x", 65) + "\n", err: wire.ErrLineTooLong},
		{in: strings.Repeat("x", 10000), err: wire.ErrLineTooLong},
		{in: "no-newline", err: io.EOF},
	} {
		id, pre, err := readID(strings.NewReader(tc.in), 64)
		if !errors.Is(err, tc.err) {
			t.Errorf("readID(%q) error %v, want %v", tc.in, err, tc.err)
			continue
		}
		if err == nil && (id != tc.id || string(pre) != tc.pre) {
			t.Errorf("readID(%q) = %q, %q; want %q, %q", tc.in, id, pre, tc.id, tc.pre)
		}
	}
}

// FuzzHandshake feeds arbitrary first bytes to the handshake: it never
// panics, never reads past its limit into memory, accepts only valid IDs,
// and gives back exactly the bytes after the ID line.
func FuzzHandshake(f *testing.F) {
	for _, s := range []string{"node1\n", "n\n00hi\n", "\n", "a\x00\n", strings.Repeat("z", 70) + "\n", "\xff\n", "id\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		id, pre, err := readID(iotest.HalfReader(bytes.NewReader(in)), 64)
		if err != nil {
			return
		}
		if wire.CheckNodeID(id, 64) != nil {
			t.Fatalf("accepted bad ID %q", id)
		}
		i := bytes.IndexByte(in, '\n')
		if i < 0 || string(in[:i]) != id {
			t.Fatalf("ID %q is not the first line of %q", id, in)
		}
		if !bytes.HasPrefix(in[i+1:], pre) {
			t.Fatalf("pre %q is not what follows the ID in %q", pre, in)
		}
	})
}
