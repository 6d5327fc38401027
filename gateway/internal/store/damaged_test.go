package store_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tether-iot/tether/gateway/internal/store"
)

// damage writes a store with some content in a new directory, then
// damages its file with f.
func damage(t *testing.T, f func(path string, size int64)) string {
	t.Helper()
	dir := t.TempDir()
	s := open(t, dir)
	for i := range 300 {
		if _, _, err := s.Enqueue("n"+string(rune('a'+i%20)), strings.Repeat("x", 200), store.Origin{}, store.Limit{}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	path := filepath.Join(dir, store.FileName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f(path, fi.Size())
	return dir
}

func overwrite(t *testing.T, path string, off int64, n int) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	junk := make([]byte, n)
	for i := range junk {
		junk[i] = byte(i*7 + 3)
	}
	if _, err := fh.WriteAt(junk, off); err != nil {
		t.Fatal(err)
	}
}

// TestOpenDamaged (issue 10.5): a truncated, partly overwritten or empty
// gateway.db is refused with an error that names the file and says what
// to do; no panic. With Fresh, the damaged file is moved aside and a new
// store starts.
func TestOpenDamaged(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func(t *testing.T, path string, size int64)
	}{
		{"zero length", func(t *testing.T, path string, _ int64) { os.Truncate(path, 0) }},
		{"truncated to one page", func(t *testing.T, path string, _ int64) { os.Truncate(path, 4096) }},
		{"truncated to half", func(t *testing.T, path string, size int64) { os.Truncate(path, size/2) }},
		{"meta pages overwritten", func(t *testing.T, path string, _ int64) { overwrite(t, path, 0, 8192) }},
		{"data pages overwritten", func(t *testing.T, path string, size int64) { overwrite(t, path, 2*4096, int(size-3*4096)) }},
		{"not a store", func(t *testing.T, path string, _ int64) {
			os.WriteFile(path, []byte(strings.Repeat("this is not a bbolt file\n", 1000)), 0o600)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := damage(t, func(path string, size int64) { tc.f(t, path, size) })
			path := filepath.Join(dir, store.FileName)
			var s *store.Store
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("Open panicked: %v", r)
					}
				}()
				s, err = store.Open(dir, 0)
			}()
			if err == nil {
				s.Close()
				t.Fatal("a damaged store was opened")
			}
			var de *store.DamagedError
			if !errors.As(err, &de) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "--fresh-store") {
				t.Fatalf("error %q: want a DamagedError naming %s and --fresh-store", err, path)
			}
			s, err = store.OpenFresh(dir, 0)
			if err != nil {
				t.Fatalf("fresh: %v", err)
			}
			defer s.Close()
			if s.Total().Messages != 0 {
				t.Errorf("fresh store holds %+v", s.Total())
			}
			aside, _ := filepath.Glob(path + ".damaged-*")
			if len(aside) != 1 {
				t.Errorf("damaged file not moved aside: %v", aside)
			}
		})
	}
}
