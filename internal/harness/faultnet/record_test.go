package faultnet

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tether-iot/tether/internal/harness/testutil"
)

func TestAppendPyString(t *testing.T) {
	// want is what Python's json.dumps(b.decode("utf-8", "surrogateescape")) prints.
	in := []byte("a\"\\\n\r\t\b\f\x00\x1f\x7f~ \xc3\xa9\xf0\x9f\x98\x80\xff\xed\xa0\x80")
	want := `"a\"\\\n\r\t\b\f\u0000\u001f\u007f~ \u00e9\ud83d\ude00\udcff\udced\udca0\udc80"`
	if got := string(appendPyString(nil, in)); got != want {
		t.Errorf("appendPyString = %s\nwant %s", got, want)
	}
}

func TestAppendSeconds(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0.0"},
		{42 * time.Second, "42.0"},
		{1857 * time.Millisecond, "1.857"},
		{1850 * time.Millisecond, "1.85"},
		{12345600 * time.Microsecond, "12.346"},
	}
	for _, tt := range tests {
		if got := string(appendSeconds(nil, tt.d)); got != tt.want {
			t.Errorf("appendSeconds(%v) = %s, want %s", tt.d, got, tt.want)
		}
	}
}

// TestTranscriptRoundTrip re-encodes every line of the legacy transcripts
// and expects the same bytes, so ours are in exactly their format.
func TestTranscriptRoundTrip(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testutil.TranscriptDir(t), "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			var r rec
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("%s:%d: %v", name, n, err)
			}
			e := event{ev: r.Ev, conn: r.Conn}
			if r.Dir == "s2c" {
				e.dir = S2C
			}
			if r.Dropped != nil {
				e.dropped = *r.Dropped
			}
			if r.RST != nil {
				e.rst = *r.RST
			}
			if r.Data != nil {
				e.data = []byte(*r.Data)
			}
			d := time.Duration(r.T*1000+0.5) * time.Millisecond
			if got := string(appendEvent(nil, d, e)); got != line+"\n" {
				t.Errorf("%s:%d: re-encoded\n%s\nwant\n%s", name, n, got, line)
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_ = f.Close()
	}
}

// TestRecord checks the transcript of a short session: every line parses,
// t never decreases, and the events are the ones that happened.
func TestRecord(t *testing.T) {
	tr := newTranscript(t)
	p, srv := startProxy(t, Config{Record: tr}, false)
	c, s := pair(t, p, srv)
	write(t, c, "hi\n")
	expect(t, s, "hi\n")
	write(t, s, "00\n")
	expect(t, c, "00\n")
	_ = c.Close()
	expectErr(t, s, io.EOF)
	c2, s2 := pair(t, p, srv)
	write(t, c2, "x\n")
	expect(t, s2, "x\n")
	p.Reset()
	expectErr(t, c2, syscall.ECONNRESET)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}

	tr.mu.Lock()
	raw := tr.buf.Bytes()
	tr.mu.Unlock()
	var got []string
	last := 0.0
	for line := range bytes.Lines(raw) {
		var r rec
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if r.T < last {
			t.Errorf("t went back: %v after %v", r.T, last)
		}
		last = r.T
		r.T = 0
		b, _ := json.Marshal(r)
		got = append(got, string(b))
	}
	want := []string{
		`{"t":0,"ev":"open","conn":1,"dir":"","dropped":null,"data":null,"rst":null}`,
		`{"t":0,"ev":"","conn":1,"dir":"c2s","dropped":false,"data":"hi\n","rst":null}`,
		`{"t":0,"ev":"","conn":1,"dir":"s2c","dropped":false,"data":"00\n","rst":null}`,
		`{"t":0,"ev":"eof","conn":1,"dir":"c2s","dropped":null,"data":null,"rst":null}`,
		`{"t":0,"ev":"close","conn":1,"dir":"","dropped":null,"data":null,"rst":false}`,
		`{"t":0,"ev":"open","conn":2,"dir":"","dropped":null,"data":null,"rst":null}`,
		`{"t":0,"ev":"","conn":2,"dir":"c2s","dropped":false,"data":"x\n","rst":null}`,
		`{"t":0,"ev":"close","conn":2,"dir":"","dropped":null,"data":null,"rst":true}`,
	}
	if len(got) != len(want) {
		t.Fatalf("transcript has %d lines, want %d:\n%s", len(got), len(want), raw)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: %s\nwant %s", i+1, got[i], want[i])
		}
	}
}
