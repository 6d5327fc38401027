package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tether-iot/tether/bridge"
	"github.com/tether-iot/tether/link"
)

const bridgeUsage = `Usage: tether bridge --serial PORT --id ID --server HOST:PORT [flags]

A board that has only a serial port (wired TX/RX/GND, or USB) becomes node
ID at the server, with the guarantees of a networked node. The board runs
the Tether board library (boards/micropython) and its lines travel exactly
once both ways, through a noisy wire, outages of the server, restarts of
the board and of this bridge: each line is stored (fsynced) in the --state
directory before it is acknowledged. With --plain the board runs nothing
special: each line it prints is a message (at most once), and each line
from the server is printed to it. See docs/BRIDGE.md.

State changes go to stderr as slog text lines (hop=serial: the board's
link; hop=server: the server's).

Examples:
  tether bridge --serial /dev/ttyACM0 --baud 115200 --id pump1 --server 192.168.0.10:8123
  tether bridge --serial /dev/ttyUSB0 --baud 9600 --id cellar --server gw:8123 --plain
  tether bridge --serial /dev/serial0 --id pump1 --server gw:8123 --reset-line dtr

Flags:
`

func runBridge(ctx context.Context, e *env, args []string) error {
	var (
		port, id, server, state string
		resetCmd, resetLine     string
		logf                    logFlags
		baud, maxLine, maxQueue int
		timeout, serialTimeout  time.Duration
		resetAfter              time.Duration
		plain                   bool
	)
	fs := flag.NewFlagSet("bridge", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), bridgeUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&port, "serial", "", "the serial `port` of the board, e.g. /dev/ttyACM0 (required)")
	fs.IntVar(&baud, "baud", 115200, "the port's baud `rate` (8N1, no flow control)")
	fs.StringVar(&id, "id", "", "the board's node `ID` at the server (required)")
	fs.StringVar(&server, "server", "", "the server's `host:port`; a missing port means 8123 (required)")
	fs.DurationVar(&timeout, "timeout", link.DefaultTimeout, "T of the link to the server; must match the server's")
	fs.DurationVar(&serialTimeout, "serial-timeout", 0, "T of the serial link; must match the board library's (0: --timeout)")
	fs.StringVar(&state, "state", "", "`dir`ectory of the durable state; default <state home>/tether/bridge-<ID>")
	fs.BoolVar(&plain, "plain", false, "plain mode: each line the board prints is a message (at most once), no library on the board")
	fs.StringVar(&resetCmd, "reset-cmd", "", "shell `command` that resets the board when it stops answering (a GPIO toggle)")
	fs.StringVar(&resetLine, "reset-line", "", "reset the board by pulsing this modem `line` of the port low: dtr or rts")
	fs.DurationVar(&resetAfter, "reset-after", 0, "reset a board that has not answered for this long (0: 5 x serial-timeout)")
	fs.IntVar(&maxLine, "max-line", link.DefaultMaxLine, "longest line either way, in `bytes` (id included)")
	fs.IntVar(&maxQueue, "max-queue", bridge.DefaultMaxQueue, "most `lines` kept for the server (and for the board) while the other side is away")
	logf.register(fs, "info", "log `level` on stderr: debug, info (state changes), warn, error")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("bridge takes no arguments (got %q). See tether help bridge", fs.Arg(0))
	case port == "":
		return errors.New("no --serial: give the board's serial port, e.g. --serial /dev/ttyACM0")
	case id == "":
		return errors.New("no --id: give the board's node ID, e.g. --id pump1")
	case server == "":
		return errors.New("no --server: give the server's address, e.g. --server 192.168.0.10:8123")
	case baud <= 0:
		return fmt.Errorf("--baud %d: give the board's baud rate, e.g. --baud 115200", baud)
	case timeout <= 0 || serialTimeout < 0:
		return errors.New("--timeout and --serial-timeout must be positive, e.g. --timeout 2s")
	case resetCmd != "" && resetLine != "":
		return errors.New("give --reset-cmd or --reset-line, not both")
	case plain && (resetCmd != "" || resetLine != ""):
		return errors.New("--plain has no link to tell a silent board from a quiet one: no reset with it")
	}
	log, err := logf.logger(e, e.stderr)
	if err != nil {
		return err
	}
	if state == "" {
		state = filepath.Join(defaultStateHome(), "bridge-"+id)
	}
	cfg := bridge.Config{
		ID:            id,
		Server:        server,
		Timeout:       timeout,
		SerialTimeout: serialTimeout,
		MaxLine:       maxLine,
		Open:          bridge.OpenSerial(port, baud),
		PortName:      port,
		StateDir:      state,
		Plain:         plain,
		MaxQueue:      maxQueue,
		ResetAfter:    resetAfter,
		Logger:        log,
	}
	if resetCmd != "" {
		cfg.Reset = bridge.ResetCommand(resetCmd, 30*time.Second)
	}
	var b *bridge.Bridge
	if resetLine != "" {
		r, err := bridge.ResetLine(resetLine, 100*time.Millisecond, func() bridge.Port { return b.CurrentPort() })
		if err != nil {
			return err
		}
		cfg.Reset = r
	}
	b, err = bridge.New(cfg)
	if err != nil {
		return err
	}
	log.Info("bridge starting", "node", id, "serial", port, "baud", baud, "server", server, "state", state, "plain", plain)
	err = b.Run(ctx)
	st := b.Stats()
	log.Info("bridge stopped", "node", id, "from_board", st.FromBoard, "to_server", st.ToServer,
		"from_server", st.FromServer, "to_board", st.ToBoard, "kept_for_server", st.UpQueued, "kept_for_board", st.DownQueued)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// defaultStateHome is where commands keep state by default.
func defaultStateHome() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "tether")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "tether")
	}
	return "tether-state"
}
