package main

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Environment variables for every flag (docs/RUNNING.md): flag --foo-bar
// of any command may be given as TETHER_FOO_BAR, for containers and
// systemd units (Environment=, EnvironmentFile=). A flag on the command
// line overrides its variable; the variable overrides the config file
// (serve reads a flag set either way as set). One name means one thing in
// every command: TETHER_DATA is the data directory of serve, ca, nodes...

// envPrefix starts every variable.
const envPrefix = "TETHER_"

// envName is the variable of flag name: "mqtt-listen" → TETHER_MQTT_LISTEN.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flagName))
}

// applyEnv sets every flag of fs whose variable getenv finds. A value
// the flag refuses is an error naming the variable.
func applyEnv(fs *flag.FlagSet, getenv func(string) (string, bool)) error {
	if getenv == nil {
		return nil
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil {
			return
		}
		name := envName(f.Name)
		v, ok := getenv(name)
		if !ok {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("environment variable %s=%q (flag --%s): %v", name, v, f.Name, e)
		}
	})
	return err
}

// envHelp ends a command's help: the variables of its flags.
func envHelp(w io.Writer, fs *flag.FlagSet) {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	if len(names) == 0 {
		return
	}
	sort.Strings(names)
	fmt.Fprintf(w, "\nEvery flag may also be set by an environment variable, --%s as %s\n(a flag on the command line overrides it): docs/RUNNING.md lists them.\n", names[0], envName(names[0]))
}
