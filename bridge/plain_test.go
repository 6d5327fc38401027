package bridge_test

import (
	"bufio"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/tether-iot/tether/bridge"
)

// TestPlainMode: a board that only prints lines (an Arduino sketch's
// Serial.println) is a node: its lines reach the server exactly once and
// in order while the bridge runs, the server's are printed to it, and a
// line that is not UTF-8 is dropped and counted.
func TestPlainMode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := newRig(t, ctx, 3)
	r.plain = true
	stop := r.startBridge()
	port, err := bridge.OpenSerial(r.dpty.Path, 9600)(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	up, down := newTally("t"), newTally("cmd")
	// A line printed before the bridge has the port open is lost (plain
	// mode is at most once; opening the port discards its input).
	r.waitEvent(bridge.BoardUp)
	node := r.node()
	serverRead := readAll(t, ctx, up, node.ReadLine)
	const n = 50
	go func() {
		for i := 1; i <= n; i++ {
			line := "t" + strconv.Itoa(i) + "\r\n" // println's CRLF
			if i == 10 {
				line = "\xff\xfe garbage\r\n" + line
			}
			if _, err := port.Write([]byte(line)); err != nil {
				return
			}
		}
	}()
	boardRead := make(chan struct{})
	go func() {
		defer close(boardRead)
		sc := bufio.NewScanner(port)
		for sc.Scan() {
			down.add(t, sc.Text())
		}
	}()
	for i := 1; i <= 10; i++ {
		if err := node.Write(ctx, "cmd"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := up.waitFor(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := down.waitFor(ctx, 10); err != nil {
		t.Fatal(err)
	}
	up.check(t, n)
	down.check(t, 10)
	if st := r.b.Stats(); st.PlainBad != 1 || st.FromBoard != n || st.ToBoard != 10 {
		t.Errorf("stats: %+v", st)
	}
	stop()
	port.Close()
	<-boardRead
	r.srv.Close()
	<-serverRead
}
