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
	err := run(ctx, &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:])
	switch {
	case err == nil:
	case errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "tether:", err)
		os.Exit(1)
	}
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
			if c := lookup(args[1]); c != nil {
				return c.run(ctx, e, []string{"-h"})
			}
		}
		usage(e.stdout)
		return nil
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
	fmt.Fprint(w, "\nRun \"tether help <command>\" for its flags.\n")
}
