//go:build unix

package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// underJournal reports whether f (stderr) is the stream systemd connected
// to its journal: JOURNAL_STREAM is "device:inode" of that stream (a
// child whose stderr was redirected elsewhere inherits the variable, so
// the numbers must match).
func underJournal(journalStream string, f *os.File) bool {
	dev, ino, ok := strings.Cut(journalStream, ":")
	if !ok || f == nil {
		return false
	}
	d, err1 := strconv.ParseUint(dev, 10, 64)
	i, err2 := strconv.ParseUint(ino, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return uint64(st.Dev) == d && uint64(st.Ino) == i
}
