package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Signals (docs/GATEWAY.md, "Signals"): the first SIGINT, SIGTERM or
// SIGHUP cancels the command's context, and the command ends cleanly
// (tether serve drains its nodes' links for at most --grace, publishes
// its offline state and closes the store); a second SIGINT or SIGTERM
// ends the process at once, with the status of a process killed by that
// signal (130 or 143). Nothing acknowledged is lost that way: queued
// messages are in the store before they are acknowledged. A second SIGHUP
// (a closing terminal sends several) changes nothing.
var handledSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// signalContext returns a context cancelled by the first signal; the
// goroutine it starts lives as long as the process.
func signalContext(stderr io.Writer) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, handledSignals...)
	go func() {
		first := <-sigs
		fmt.Fprintf(stderr, "tether: %v: shutting down (a second interrupt ends it at once)\n", first)
		cancel()
		for sig := range sigs {
			if sig == syscall.SIGHUP {
				continue
			}
			fmt.Fprintf(stderr, "tether: %v again: exiting at once\n", sig)
			code := 130
			if sig == syscall.SIGTERM {
				code = 143
			}
			os.Exit(code)
		}
	}()
	return ctx
}
