// Command tether runs Tether's server, nodes, demos, soak and benchmarks.
//
//	tether demo main --outages    the seed's main demo, in one process
//	tether serve                  a server: stdin/stdout, MQTT, status page
//	tether node --id 7 --server host:8123
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
	"os/signal"
	"slices"
	"syscall"
)

// command is one subcommand. Each lives in its own file and registers
// itself in init, so that subcommands can be added without touching this
// file.
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

var commands = map[string]*command{}

func register(c *command) {
	if commands[c.name] != nil {
		panic("tether: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// errUsage means the usage has been printed already; exit status 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:])
	stop()
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
		if len(args) > 1 && commands[args[1]] != nil {
			return commands[args[1]].run(ctx, e, []string{"-h"})
		}
		usage(e.stdout)
		return nil
	}
	c := commands[name]
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
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprint(w, "\nRun \"tether help <command>\" for its flags.\n")
}
