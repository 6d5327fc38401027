// Command tether runs Tether's server, nodes, demos, soak and benchmarks.
//
//	tether demo main --outages    the seed's main demo, in one process
//	tether serve                  a server: stdin/stdout, MQTT, status page
//	tether node --id 7 --server host:8123
//	tether bridge --serial /dev/ttyACM0 --id pump1 --server host:8123
//	tether soak                   simulated nodes through injected outages
//	tether bench                  latency, throughput and scale figures
//
// Run "tether help <command>" for a command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// command is one subcommand; each runs from its own file.
type command struct {
	name    string
	summary string // one line for "tether help"
	// run parses args (without the command name) and runs the command.
	// It returns errUsage after printing usage for bad flags.
	run func(ctx context.Context, env *env, args []string) error
}

// env is what a command may touch of the process, so that tests can run
// commands in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// getenv looks up an environment variable (os.LookupEnv); nil: no
	// environment, as in tests that do not set it (environ.go).
	getenv func(string) (string, bool)
	// journal is set when stderr goes to the systemd journal, which
	// stamps each line itself (logging.go).
	journal bool
	// onFlagSet, if set (tests), sees each command's flag set before it
	// parses its arguments.
	onFlagSet func(*flag.FlagSet)
}

// commands are the subcommands, in the order "tether help" lists them.
var commands = []command{
	{"serve", "a server: stdin/stdout, MQTT gateway, status page", runServe},
	{"node", "a node from the shell: stdin lines are sent, received lines printed", runNode},
	{"bridge", "a board on a serial port becomes a node (exactly once, both ways)", runBridge},
	{"ca", "the gateway's CA: TLS credentials for nodes that run Go", runCA},
	{"nodes", "a gateway's node IDs: pending, approve, deny, forget", runNodes},
	{"backup", "a consistent copy of a gateway's store, running or not", runBackup},
	{"demo", "the four demos of micropython-iot: main, remote, qos, qos-fast", runDemo},
	{"soak", "simulated nodes through injected outages; reports loss and duplicates", runSoak},
	{"bench", "latency, throughput and scale figures against raw TCP and MQTT", runBench},
	{"mqtt", "the embedded broker's users: tether mqtt passwd FILE USER", runMQTT},
	{"web", "the status page's users: tether web passwd FILE USER", runWeb},
	{"version", "the build: version, VCS revision and time, Go version", runVersion},
}

// lookup returns the command called name, or nil.
func lookup(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// errUsage means the usage has been printed already; exit status 2.
var errUsage = errors.New("usage")

func main() {
	ctx := signalContext(os.Stderr) // see signals.go
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.LookupEnv}
	e.journal = underJournal(os.Getenv("JOURNAL_STREAM"), os.Stderr) // logging.go
	err := run(ctx, e, os.Args[1:])
	if err != nil && !errors.Is(err, errUsage) && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "tether:", err)
	}
	os.Exit(exitCode(err))
}

// exitCode is the process's exit status after run returned err: 0 for
// success and for help (asked for: tether help serve, -h, --help), 2 for
// bad usage, 1 for any other error.
func exitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	return 1
}

func run(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		usage(e.stderr)
		return errUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			c := lookup(args[1])
			if c == nil {
				fmt.Fprintf(e.stderr, "tether: no command %q\n\n", args[1])
				usage(e.stderr)
				return errUsage
			}
			return c.run(ctx, e, []string{"-h"})
		}
		usage(e.stdout)
		return nil
	case "--version", "-version":
		return runVersion(ctx, e, args[1:])
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(e.stderr, "tether: unknown command %q\n\n", name)
		usage(e.stderr)
		return errUsage
	}
	return c.run(ctx, e, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Tether: a resilient line link between small WiFi nodes and one server,
wire-compatible with micropython-iot.

Usage: tether <command> [flags]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun \"tether help <command>\" for its flags; \"tether version\" (or --version) for the build.\n")
}
