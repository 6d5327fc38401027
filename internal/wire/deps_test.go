package wire

import (
	"go/build"
	"strings"
	"testing"
)

// TestStandardLibraryOnly keeps the wire format free of dependencies (as
// x/net's dnsmessage keeps itself free of fmt): every package wire imports,
// tests aside, is in the standard library, whose packages import only each
// other.
func TestStandardLibraryOnly(t *testing.T) {
	p, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Imports) == 0 {
		t.Fatal("no imports found: is the test in the package's directory?")
	}
	for _, path := range p.Imports {
		first, _, _ := strings.Cut(path, "/")
		if strings.Contains(first, ".") {
			t.Errorf("wire imports %s, outside the standard library", path)
			continue
		}
		dep, err := build.Import(path, "", build.FindOnly)
		if err != nil || !dep.Goroot {
			t.Errorf("wire imports %s, not found in GOROOT (%v)", path, err)
		}
	}
}
