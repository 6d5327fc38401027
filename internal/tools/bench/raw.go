package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync"
	"time"
)

// rawRun runs raw TCP line clients against an echo server: each of
// spec.Conns connections either streams lines as fast as it can (mode
// "stream") or keeps spec.Workers lines awaiting their echo (mode
// "window"; 1 is lock-step, which gives round-trip samples).
func rawRun(ctx context.Context, spec LoadSpec) (Response, error) {
	conns := make([]net.Conn, max(spec.Conns, 1))
	if err := dialAll(ctx, len(conns), spec.Addr, spec.PerIP, func(i int, c net.Conn) error {
		conns[i] = c
		return nil
	}); err != nil {
		closeAll(conns)
		return Response{}, err
	}
	stop := context.AfterFunc(ctx, func() { closeAll(conns) })
	defer stop()
	start := time.Now()
	deadline := start.Add(spec.Duration)
	total, samples, first := load(len(conns), func(i int) (int64, []int64, error) {
		c := conns[i]
		switch {
		case spec.Mode == "stream":
			n, err := rawStream(c, spec, deadline)
			return n, nil, err
		case spec.Workers <= 1:
			return rawLockStep(c, spec, deadline)
		default:
			return rawWindow(c, spec, deadline)
		}
	})
	closeAll(conns)
	if ctx.Err() != nil {
		return Response{}, ctx.Err()
	}
	if first != nil {
		return Response{}, first
	}
	return Response{Count: total, Elapsed: int64(time.Since(start)), Samples: samples}, nil
}

// more reports whether a writer that has written n lines goes on.
func more(spec LoadSpec, n int64, deadline time.Time) bool {
	if spec.Count > 0 {
		return n < int64(spec.Count)
	}
	return time.Now().Before(deadline)
}

func rawLine(spec LoadSpec, fixed []byte) []byte {
	if spec.Stamp {
		return []byte(stamp(spec.Size) + "\n")
	}
	return fixed
}

// rawStream writes lines through a buffer until done, then an end
// marker, and reads the echoes up to the marker's.
func rawStream(c net.Conn, spec LoadSpec, deadline time.Time) (int64, error) {
	fixed := []byte(filler(spec.Size) + "\n")
	rerr := make(chan error, 1)
	go func() {
		r := bufio.NewReaderSize(c, 4096)
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				rerr <- err
				return
			}
			if line[0] == 'E' {
				rerr <- nil
				return
			}
		}
	}()
	w := bufio.NewWriterSize(c, 4096)
	var n int64
	var err error
	for more(spec, n, deadline) {
		if _, err = w.Write(rawLine(spec, fixed)); err != nil {
			break
		}
		n++
	}
	if err == nil {
		_, err = w.WriteString("E\n")
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		c.Close()
		<-rerr
		return n, err
	}
	return n, <-rerr
}

// rawLockStep writes a line and reads its echo, on one goroutine: the
// least a round trip can cost.
func rawLockStep(c net.Conn, spec LoadSpec, deadline time.Time) (int64, []int64, error) {
	defer c.Close()
	fixed := []byte(filler(spec.Size) + "\n")
	r := bufio.NewReaderSize(c, 4096)
	var n int64
	var samples []int64
	for more(spec, n, deadline) {
		t0 := time.Now()
		if _, err := c.Write(rawLine(spec, fixed)); err != nil {
			return n, nil, err
		}
		if _, err := r.ReadSlice('\n'); err != nil {
			return n, nil, err
		}
		n++
		if spec.Samples {
			samples = append(samples, int64(time.Since(t0)))
		}
	}
	return n, samples, nil
}

// rawWindow keeps up to spec.Workers lines awaiting their echo.
func rawWindow(c net.Conn, spec LoadSpec, deadline time.Time) (int64, []int64, error) {
	w := max(spec.Workers, 1)
	fixed := []byte(filler(spec.Size) + "\n")
	sent := make(chan time.Time, w) // send times, in order: echoes come in order
	var samples []int64
	rerr := make(chan error, 1)
	go func() {
		r := bufio.NewReaderSize(c, 4096)
		for {
			if _, err := r.ReadSlice('\n'); err != nil {
				rerr <- err
				return
			}
			t0 := <-sent
			if spec.Samples {
				samples = append(samples, int64(time.Since(t0)))
			}
		}
	}()
	var n int64
	var err error
	readerDone := false
loop:
	for more(spec, n, deadline) {
		select {
		case sent <- time.Now():
		case err = <-rerr:
			readerDone = true
			break loop
		}
		if _, err = c.Write(rawLine(spec, fixed)); err != nil {
			break
		}
		n++
	}
	// Wait for every echo: the queue of send times drains.
	for i := 0; i < w && err == nil; i++ {
		select {
		case sent <- time.Time{}:
		case err = <-rerr:
			readerDone = true
		}
	}
	c.Close()
	if !readerDone {
		<-rerr // the reader's error after Close
	}
	if err != nil {
		return n, nil, err
	}
	return n, samples, nil
}

// dialAll opens n connections to addr in parallel, spreading source
// addresses perIP each (0: all from the default address), and gives each
// to got, whose error fails the whole.
func dialAll(ctx context.Context, n int, addr string, perIP int, got func(int, net.Conn) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, dialParallel)
	)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d := net.Dialer{Timeout: 10 * time.Second}
			if perIP > 0 {
				d.LocalAddr = &net.TCPAddr{IP: sourceIP(i, perIP)}
			}
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				mu.Lock()
				first = cmp(first, fmt.Errorf("dial %s: %w", addr, err))
				mu.Unlock()
				return
			}
			if err := got(i, c); err != nil {
				mu.Lock()
				first = cmp(first, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}
