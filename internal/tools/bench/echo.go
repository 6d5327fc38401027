package bench

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// echoServer is the physical floor: a plain TCP server that echoes every
// line at once, one goroutine and 1 KiB of buffers per connection.
type echoServer struct {
	ln       *acceptListener
	lines    gauge   // non-empty lines received
	accepted gauge   // connections accepted
	oneWay   sampler // write-to-receipt times of stamped lines
	wg       sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func startEcho(addr string) (*echoServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("echo server: %w", err)
	}
	e := &echoServer{ln: &acceptListener{Listener: ln}, conns: make(map[net.Conn]struct{})}
	e.wg.Add(1)
	go e.accept()
	return e, nil
}

func (e *echoServer) addr() string { return e.ln.Addr().String() }

func (e *echoServer) accept() {
	defer e.wg.Done()
	for {
		c, err := e.ln.Accept()
		if err != nil {
			return
		}
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			c.Close()
			return
		}
		e.conns[c] = struct{}{}
		e.wg.Add(1)
		e.mu.Unlock()
		e.accepted.add(time.Now())
		go e.serve(c)
	}
}

// serve echoes lines, flushing whenever no more input is buffered, so
// that a stream is echoed in batches and a lone line at once.
func (e *echoServer) serve(c net.Conn) {
	defer e.wg.Done()
	defer func() {
		e.mu.Lock()
		delete(e.conns, c)
		e.mu.Unlock()
		c.Close()
	}()
	r := bufio.NewReaderSize(c, 512)
	w := bufio.NewWriterSize(c, 512)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		if len(line) > 1 {
			now := time.Now()
			e.lines.add(now)
			if e.oneWay.on.Load() && strings.HasPrefix(string(line), stampPrefix) {
				if sent, ok := parseStamp(string(line)); ok {
					e.oneWay.add(time.Duration(now.UnixNano() - sent))
				}
			}
		}
		if _, err := w.Write(line); err != nil {
			return
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

// close closes the listener and every connection, and waits.
func (e *echoServer) close() {
	e.mu.Lock()
	e.closed = true
	e.ln.Close()
	for c := range e.conns {
		c.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
}
