package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.0",
		Main:      debug.Module{Path: "github.com/tether-iot/tether", Version: "v0.0.0-20260102150405-abcdef012345+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "abcdef0123456789abcdef0123456789abcdef01"},
			{Key: "vcs.time", Value: "2026-01-02T15:04:05Z"},
			{Key: "vcs.modified", Value: "true"},
			{Key: "GOARCH", Value: "arm"},
			{Key: "GOARM", Value: "6"},
		},
	}
	i := FromBuildInfo(bi, true, "")
	if i.Version != bi.Main.Version || i.Revision != "abcdef0123456789abcdef0123456789abcdef01" ||
		i.Time != "2026-01-02T15:04:05Z" || !i.Modified || i.GoVersion != "go1.26.0" {
		t.Fatalf("got %+v", i)
	}
	if !strings.HasSuffix(i.Platform, "v6") {
		t.Errorf("platform %q: want the GOARM variant", i.Platform)
	}
	// The pseudo-version names the revision already.
	if i.Short() != bi.Main.Version {
		t.Errorf("Short() = %q", i.Short())
	}
	for _, want := range []string{"tether v0.0.0-", "revision abcdef0123456789abcdef0123456789abcdef01 (modified)", "committed 2026-01-02T15:04:05Z", "built with go1.26.0"} {
		if !strings.Contains(i.String(), want) {
			t.Errorf("String() lacks %q:\n%s", want, i)
		}
	}

	// go run, or a build outside a module's VCS: (devel).
	bi.Main.Version = "(devel)"
	if i := FromBuildInfo(bi, true, ""); i.Version != "devel" || i.Short() != "devel (abcdef012345, modified)" {
		t.Errorf("devel: %+v, Short %q", i, i.Short())
	}
	// A version set at link time wins.
	if i := FromBuildInfo(bi, true, "v1.2.0"); i.Version != "v1.2.0" {
		t.Errorf("linked: %+v", i)
	}
	// No build info at all.
	if i := FromBuildInfo(nil, false, ""); i.Version != "devel" || i.GoVersion == "" || i.Platform == "" {
		t.Errorf("none: %+v", i)
	}
}

func TestRead(t *testing.T) {
	i := Read()
	if i.Version == "" || i.GoVersion == "" || i.Platform == "" {
		t.Fatalf("Read() = %+v", i)
	}
	if Read() != i {
		t.Fatal("Read() changed")
	}
}
