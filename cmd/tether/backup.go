package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/tether-iot/tether/gateway"
)

const backupUsage = `Usage: tether backup [--data DIR] [--out FILE]

Writes a consistent copy of the gateway's store (gateway.db: the queues,
the nodes' sequence state, approvals) to FILE, while the gateway runs
(through its admin socket, <data>/admin.sock) or not. The copy is checked
before it is kept. To restore: stop the gateway, put the copy in place of
<data>/gateway.db, start it.

Flags:
`

func runBackup(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), backupUsage)
		fs.PrintDefaults()
	}
	data := fs.String("data", "", "the gateway's data `dir`ectory; default "+gateway.DefaultDataDir())
	out := fs.String("out", "", "the backup `file`; default gateway-<time>.db here")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("tether backup: unexpected %q (tether help backup)", fs.Arg(0))
	}
	if *data == "" {
		*data = gateway.DefaultDataDir()
	}
	if *out == "" {
		*out = "gateway-" + time.Now().Format("20060102-150405") + ".db"
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	n, online, err := gateway.BackupTo(ctx, *data, *out)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("tether backup: took more than 10 minutes: %w", err)
	}
	if err != nil {
		return err
	}
	by := "from the store (no gateway running)"
	if online {
		by = "from the running gateway"
	}
	fmt.Fprintf(e.stdout, "backup of %s written to %s (%d bytes), %s\n", *data, *out, n, by)
	return nil
}
