// Package buildinfo says which build of Tether is running: the module
// version and the VCS revision, time and modified flag that the Go
// toolchain records in every binary (runtime/debug.ReadBuildInfo). tether
// version prints it, the gateway exports it as the tether_build_info
// metric, shows it on its status page and gives it to Home Assistant as
// the devices' sw_version.
//
// A release build may set the version explicitly (scripts/release does):
//
//	go build -ldflags "-X github.com/tether-iot/tether/internal/buildinfo.version=v1.2.0" ./cmd/tether
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
)

// version, if set at link time (-X), overrides the module version.
var version string

// Info describes a build.
type Info struct {
	// Version is the module version: the one set at link time, else the
	// one the toolchain derived (a tag such as v1.2.0, or a pseudo-version
	// v0.0.0-20260102150405-abcdef012345 with "+dirty" for a modified
	// tree), else "devel".
	Version string `json:"version"`
	// Revision is the VCS commit the binary was built from ("" unknown).
	Revision string `json:"revision,omitempty"`
	// Time is the commit's time, RFC 3339 ("" unknown).
	Time string `json:"time,omitempty"`
	// Modified is set when the tree had uncommitted changes.
	Modified bool `json:"modified,omitempty"`
	// GoVersion is the toolchain's version (go1.26.0).
	GoVersion string `json:"go_version"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

var (
	once sync.Once
	info Info
)

// Read returns the running binary's build information (read once).
func Read() Info {
	once.Do(func() {
		bi, ok := debug.ReadBuildInfo()
		info = FromBuildInfo(bi, ok, version)
	})
	return info
}

// FromBuildInfo makes an Info from what debug.ReadBuildInfo returned (ok
// false: nothing) and a version set at link time ("" none).
func FromBuildInfo(bi *debug.BuildInfo, ok bool, linked string) Info {
	i := Info{Version: "devel", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if ok && bi != nil {
		if bi.GoVersion != "" {
			i.GoVersion = bi.GoVersion
		}
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			i.Version = v
		}
		var arch, arm string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				i.Revision = s.Value
			case "vcs.time":
				i.Time = s.Value
			case "vcs.modified":
				i.Modified = s.Value == "true"
			case "GOARCH":
				arch = s.Value
			case "GOARM":
				arm = s.Value
			}
		}
		if arch == "arm" && arm != "" {
			i.Platform += "v" + strings.TrimSuffix(arm, ",softfloat")
		}
	}
	if linked != "" {
		i.Version = linked
	}
	return i
}

// Short returns the version with the revision's first 12 characters when
// the version does not already name it: "v1.2.0", "devel (abcdef012345,
// modified)".
func (i Info) Short() string {
	s := i.Version
	if i.Revision != "" && !strings.Contains(s, shortRev(i.Revision)) {
		s += " (" + shortRev(i.Revision)
		if i.Modified {
			s += ", modified"
		}
		s += ")"
	}
	return s
}

// String is the full line tether version prints.
func (i Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tether %s", i.Version)
	if i.Revision != "" {
		fmt.Fprintf(&b, "\nrevision %s", i.Revision)
		if i.Modified {
			b.WriteString(" (modified)")
		}
	}
	if i.Time != "" {
		fmt.Fprintf(&b, "\ncommitted %s", i.Time)
	}
	fmt.Fprintf(&b, "\nbuilt with %s for %s", i.GoVersion, i.Platform)
	return b.String()
}

func shortRev(r string) string {
	if len(r) > 12 {
		return r[:12]
	}
	return r
}
