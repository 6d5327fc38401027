package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/tether-iot/tether/internal/buildinfo"
)

const versionUsage = `Usage: tether version   (or tether --version)

Prints the build: the module version (a tag, or a pseudo-version naming
the commit), the VCS revision and commit time recorded by the Go
toolchain, whether the tree was modified, and the Go version and
platform. The gateway shows the same version on its status page, in its
tether_build_info metric and to Home Assistant (sw_version).
`

func runVersion(_ context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), versionUsage) }
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("version takes no arguments (got %q)", fs.Arg(0))
	}
	fmt.Fprintln(e.stdout, buildinfo.Read())
	return nil
}
