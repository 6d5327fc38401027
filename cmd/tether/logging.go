package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Logs (docs/RUNNING.md): every command that logs has --log-level and
// --log-format. Lines go to stderr, in slog's text format (key=value, the
// default: what scripts parse) or JSON (one object per line, for log
// shippers), their times in UTC (as on the status page). Under systemd,
// whose journal stamps every line with its own time, the lines carry no
// time of their own: the journal is detected as systemd documents it
// (JOURNAL_STREAM names stderr's device and inode).

// logFlags are a command's log flags.
type logFlags struct {
	level  string
	format string
}

// register adds --log-level (default level; usage says what each level
// shows) and --log-format.
func (l *logFlags) register(fs *flag.FlagSet, level, usage string) {
	fs.StringVar(&l.level, "log-level", level, usage)
	fs.StringVar(&l.format, "log-format", "text", "log `format` on stderr: text (key=value) or json (one object per line)")
}

// logger returns the logger the flags ask for, writing to w. Under the
// journal (e.journal) lines carry no time.
func (l logFlags) logger(e *env, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", l.level)
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: utcTime}
	if e.journal {
		opts.ReplaceAttr = dropTime
	}
	switch strings.ToLower(l.format) {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", l.format)
}

// utcTime writes the time of each record in UTC.
func utcTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey && a.Value.Kind() == slog.KindTime {
		return slog.Time(a.Key, a.Value.Time().UTC())
	}
	return a
}

// dropTime removes the time of each record (the journal has its own).
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
