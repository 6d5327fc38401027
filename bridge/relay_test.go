package bridge_test

import (
	"errors"
	"math/rand/v2"
	"os"
	"sync"
	"testing"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// ptyEnd is one pseudo-terminal: the test keeps its master and a handle
// on its slave (so that the master never reads EIO while the program under
// test has the slave closed), and the program opens the slave by Path.
type ptyEnd struct {
	Path   string
	master *os.File
	hold   *os.File
}

func newPty(t testing.TB) *ptyEnd {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Fatalf("pty: %v", err)
	}
	if err := makeRaw(int(s.Fd())); err != nil {
		t.Fatalf("pty raw mode: %v", err)
	}
	// pty.Open leaves the master blocking (its ioctls call Fd), and a
	// blocked read of a blocking file cannot be ended by Close: give it
	// to the runtime poller.
	fd, err := unix.Dup(int(m.Fd()))
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		t.Fatalf("pty master: %v", err)
	}
	m.Close()
	m = os.NewFile(uintptr(fd), "ptmx")
	e := &ptyEnd{Path: s.Name(), master: m, hold: s}
	t.Cleanup(func() { m.Close(); s.Close() })
	return e
}

// makeRaw sets a terminal to raw mode (no echo, no line discipline), as
// a serial port opened by go.bug.st/serial is.
func makeRaw(fd int) error {
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	tio.Cc[unix.VMIN] = 1
	tio.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, tio)
}

// relay is the wire between two ptys, the bridge's and the board's: it
// copies bytes both ways, flipping and dropping some at the rates set,
// or all of them while cut (an unplugged wire).
type relay struct {
	a, b *ptyEnd
	wg   sync.WaitGroup

	mu      sync.Mutex
	rng     *rand.Rand
	flip    float64 // probability that a byte has a bit flipped
	drop    float64 // probability that a byte is dropped
	cut     bool
	flipped int
	dropped int
}

func startRelay(t testing.TB, a, b *ptyEnd, seed uint64) *relay {
	r := &relay{a: a, b: b, rng: rand.New(rand.NewPCG(seed, 13))}
	r.wg.Add(2)
	go r.pump(a.master, b.master)
	go r.pump(b.master, a.master)
	t.Cleanup(r.stop)
	return r
}

func (r *relay) stop() {
	r.a.master.Close()
	r.b.master.Close()
	r.wg.Wait()
}

func (r *relay) set(flip, drop float64) {
	r.mu.Lock()
	r.flip, r.drop = flip, drop
	r.mu.Unlock()
}

func (r *relay) setCut(on bool) {
	r.mu.Lock()
	r.cut = on
	r.mu.Unlock()
}

func (r *relay) faults() (flipped, dropped int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.flipped, r.dropped
}

func (r *relay) pump(src, dst *os.File) {
	defer r.wg.Done()
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			out := r.mangle(buf[:n])
			if len(out) > 0 {
				if _, werr := dst.Write(out); werr != nil && !errors.Is(werr, os.ErrClosed) && !errors.Is(werr, unix.EIO) {
					return
				}
			}
		}
		if err != nil {
			return // closed (the test holds the slave, so never EIO)
		}
	}
}

func (r *relay) mangle(in []byte) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cut {
		r.dropped += len(in)
		return nil
	}
	if r.flip == 0 && r.drop == 0 {
		return append([]byte(nil), in...)
	}
	out := make([]byte, 0, len(in))
	for _, c := range in {
		if r.rng.Float64() < r.drop {
			r.dropped++
			continue
		}
		if r.rng.Float64() < r.flip {
			c ^= 1 << r.rng.IntN(8)
			r.flipped++
		}
		out = append(out, c)
	}
	return out
}
