package bridge

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"go.bug.st/serial"

	"github.com/tether-iot/tether/internal/notify"
)

// OpenSerial returns a Config.Open that opens the serial port at path
// (/dev/ttyACM0, /dev/ttyUSB0, /dev/serial0) at baud, 8N1, no flow control,
// with go.bug.st/serial. The port is opened exclusively, and each open
// discards what the port had buffered.
func OpenSerial(path string, baud int) func(ctx context.Context) (Port, error) {
	return func(ctx context.Context) (Port, error) {
		p, err := serial.Open(path, &serial.Mode{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		p.ResetInputBuffer()
		return p, nil
	}
}

// ResetCommand returns a Config.Reset that runs command with sh -c (a
// GPIO toggle, say "gpioset gpiochip0 17=0 && sleep 0.1 && gpioset
// gpiochip0 17=1"), bounded by timeout.
func ResetCommand(command string, timeout time.Duration) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, "sh", "-c", command).CombinedOutput()
		if err != nil {
			return fmt.Errorf("reset command %q: %w: %s", command, err, strings.TrimSpace(string(out)))
		}
		return nil
	}
}

// ResetLine returns a Config.Reset that pulses a modem line of the open
// port, "dtr" or "rts", low for pulse and then high again: the DTR pulse
// resets an Arduino (its auto-reset), and either line can drive a reset
// pin through a transistor. current returns the open port (nil if none).
func ResetLine(line string, pulse time.Duration, current func() Port) (func(ctx context.Context) error, error) {
	var set func(ModemLines, bool) error
	switch strings.ToLower(line) {
	case "dtr":
		set = ModemLines.SetDTR
	case "rts":
		set = ModemLines.SetRTS
	default:
		return nil, fmt.Errorf("reset line %q: use dtr or rts", line)
	}
	return func(ctx context.Context) error {
		p := current()
		m, ok := p.(ModemLines)
		if p == nil || !ok {
			return errors.New("reset line: the serial port is not open, or has no modem lines")
		}
		if err := set(m, false); err != nil {
			return err
		}
		notify.Sleep(ctx, pulse)
		return set(m, true)
	}, nil
}

// CurrentPort returns the port the bridge has open, or nil: for
// ResetLine.
func (b *Bridge) CurrentPort() Port {
	if p := b.port.Load(); p != nil {
		return p.port
	}
	return nil
}
