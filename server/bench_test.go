package server_test

import (
	"bufio"
	"context"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// The benchmarks compare the link with a raw TCP line echo on the same
// loopback, measured in the same run: the floor that any protocol over
// TCP pays. Each reports p50 and p99 per operation besides ns/op.
//
//	go test -run '^$' -bench . -benchtime 20000x ./server

// reportPercentiles adds p50 and p99 of the samples as custom metrics.
func reportPercentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-us")
	b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), "p99-us")
}

// echoServer echoes lines on a loopback TCP socket.
func echoServer(b *testing.B) string {
	ln := testutil.Listen(b)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadSlice('\n')
					if err != nil {
						return
					}
					if _, err := c.Write(line); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkRawEcho is the floor: a 32-byte line to a TCP echo and back.
func BenchmarkRawEcho(b *testing.B) {
	addr := echoServer(b)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	line := []byte("00" + string(make([]byte, 0)) + "raw echo payload of 32 bytes...\n")
	samples := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := c.Write(line); err != nil {
			b.Fatal(err)
		}
		if _, err := r.ReadSlice('\n'); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(t0))
	}
	b.StopTimer()
	reportPercentiles(b, samples)
}

// benchPair connects a Go client to a server on loopback.
func benchPair(b *testing.B) (*client.Client, *link.Link) {
	ctx := context.Background()
	log := testutil.Logger()
	srv, err := server.New(server.Config{Logger: log, RecvQueue: 4096})
	if err != nil {
		b.Fatal(err)
	}
	ln := testutil.Listen(b)
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	c, err := client.Dial(ctx, client.Config{ID: "bench", Server: ln.Addr().String(), Logger: log, RecvQueue: 4096})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		c.Close()
		srv.Close()
		<-done
	})
	node, err := srv.Node(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	if err := c.WaitUp(ctx); err != nil {
		b.Fatal(err)
	}
	// Past the first message and the server's write pause.
	if err := c.Write(ctx, "warm-up"); err != nil {
		b.Fatal(err)
	}
	if _, err := node.ReadLine(ctx); err != nil {
		b.Fatal(err)
	}
	return c, node
}

// BenchmarkQoSRoundTrip: a qos write that returns once the server has
// acknowledged it (the message travels, the ACK comes back).
func BenchmarkQoSRoundTrip(b *testing.B) {
	c, node := benchPair(b)
	ctx := context.Background()
	go func() {
		for {
			if _, err := node.ReadLine(ctx); err != nil {
				return
			}
		}
	}()
	samples := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if err := c.Write(ctx, "qos payload of about 32 bytes..."); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(t0))
	}
	b.StopTimer()
	reportPercentiles(b, samples)
}

// BenchmarkRawStream is the throughput floor: lines written one way on a
// TCP socket and read by the far end.
func BenchmarkRawStream(b *testing.B) {
	ln := testutil.Listen(b)
	got := make(chan int)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		n := 0
		for {
			if _, err := r.ReadSlice('\n'); err != nil {
				got <- n
				return
			}
			n++
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(c)
	b.ResetTimer()
	for i := range b.N {
		w.WriteString("00stream payload " + strconv.Itoa(i) + "\n")
		if w.Buffered() > 4096 {
			w.Flush()
		}
	}
	w.Flush()
	c.Close()
	if n := <-got; n != b.N {
		b.Fatalf("read %d of %d", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkNoQoSThroughput: qos=false writes from the node, read by the
// server's application.
func BenchmarkNoQoSThroughput(b *testing.B) {
	c, node := benchPair(b)
	benchThroughput(b, node, func(ctx context.Context, i int) error {
		return c.Write(ctx, "stream payload "+strconv.Itoa(i), link.QoS(false))
	})
}

// BenchmarkQoSNoWaitThroughput: qos writes with wait=false from several
// goroutines, as the qos-fast demo does.
func BenchmarkQoSNoWaitThroughput(b *testing.B) {
	c, node := benchPair(b)
	sem := make(chan struct{}, 32)
	benchThroughput(b, node, func(ctx context.Context, i int) error {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			c.Write(ctx, "stream payload "+strconv.Itoa(i), link.Wait(false))
		}()
		return nil
	})
}

func benchThroughput(b *testing.B, node *link.Link, write func(ctx context.Context, i int) error) {
	ctx := context.Background()
	done := make(chan error, 1)
	b.ResetTimer()
	go func() {
		for range b.N {
			if _, err := node.ReadLine(ctx); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := range b.N {
		if err := write(ctx, i); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// kaT is T for the keepalive benchmarks: long enough that a loaded
// machine does not make the server time out or write its own keepalive.
const kaT = 400 * time.Millisecond

// BenchmarkKeepaliveAnswer is one idle node's keepalive as the server
// sees it: a node writes one every T/8 (+1 ms), the server answers each
// at once (it has written nothing for T/8). Per operation: one wakeup of
// the server's read loop, a read, an answer, and the node's side of it.
// Its time is the sleep's; read its allocations (-benchmem) next to
// BenchmarkRawKeepaliveEcho's.
func BenchmarkKeepaliveAnswer(b *testing.B) {
	srv, err := server.New(server.Config{Logger: testutil.Logger(), Timeout: kaT})
	if err != nil {
		b.Fatal(err)
	}
	ln := testutil.Listen(b)
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	b.Cleanup(func() {
		srv.Close()
		<-done
	})
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ka\n")); err != nil {
		b.Fatal(err)
	}
	benchKeepalives(b, c)
}

// BenchmarkRawKeepaliveEcho is BenchmarkKeepaliveAnswer's floor: the
// same keepalives echoed by a plain TCP server.
func BenchmarkRawKeepaliveEcho(b *testing.B) {
	c, err := net.Dial("tcp", echoServer(b))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("\n")); err != nil {
		b.Fatal(err)
	}
	benchKeepalives(b, c)
}

// benchKeepalives reads the server's first line, then b.N times waits
// T/8 + 1 ms, writes a keepalive and reads the answer.
func benchKeepalives(b *testing.B, c net.Conn) {
	r := bufio.NewReader(c)
	if _, err := r.ReadSlice('\n'); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		time.Sleep(kaT/8 + time.Millisecond)
		if _, err := c.Write([]byte("\n")); err != nil {
			b.Fatal(err)
		}
		if line, err := r.ReadSlice('\n'); err != nil || len(line) != 1 {
			b.Fatalf("answer %q, %v", line, err)
		}
	}
}
