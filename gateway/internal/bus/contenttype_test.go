package bus

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

func TestContentType(t *testing.T) {
	for _, c := range []struct {
		payload, want string
	}{
		{`{"temp": 21.5}`, ContentJSON},
		{` [1, 2] `, ContentJSON},
		{`{"temp": `, ContentText},
		{`21.5`, ContentText},
		{`hello`, ContentText},
		{"\xff\xfe", ""},
		{"", ""},
	} {
		if got := ContentType([]byte(c.payload)); got != c.want {
			t.Errorf("ContentType(%q) = %q, want %q", c.payload, got, c.want)
		}
	}
}

// TestContentTypeMQTT5: an MQTT 5 subscriber of the embedded broker
// gets the gateway's messages with their content type and payload format
// (live and retained); an MQTT 3.1.1 one gets the same payloads.
func TestContentTypeMQTT5(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEmbedded(EmbeddedConfig{Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Publish(ctx, "tether/k/last", []byte(`{"temp": 21.5}`), true); err != nil {
		t.Fatal(err)
	}

	for _, version := range []byte{5, 4} {
		c := dialV(t, ln.Addr().String(), version)
		c.subscribe(t, "tether/#")
		got := c.publish(t) // the retained one
		if version == 4 {
			if string(got.Payload) != `{"temp": 21.5}` {
				t.Errorf("v3.1.1: %q", got.Payload)
			}
			c.conn.Close()
			continue
		}
		if got.Properties.ContentType != ContentJSON || got.Properties.PayloadFormat != 1 || !got.Properties.PayloadFormatFlag {
			t.Errorf("retained: content type %q, payload format %v/%v", got.Properties.ContentType, got.Properties.PayloadFormat, got.Properties.PayloadFormatFlag)
		}
		if err := e.Publish(ctx, "tether/k/up", []byte("hello"), false); err != nil {
			t.Fatal(err)
		}
		if got := c.publish(t); got.Properties.ContentType != ContentText || string(got.Payload) != "hello" {
			t.Errorf("live: content type %q payload %q", got.Properties.ContentType, got.Payload)
		}
		c.conn.Close()
	}
}

type rawV struct {
	conn    net.Conn
	r       *bufio.Reader
	version byte
	early   []packets.Packet // publishes read before a SUBACK
}

func dialV(t *testing.T, addr string, version byte) *rawV {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	c := &rawV{conn: conn, r: bufio.NewReader(conn), version: version}
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: version,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, ClientIdentifier: "v" + string('0'+version), Keepalive: 30}}
	c.write(t, func(b *bytes.Buffer) error { return pk.ConnectEncode(b) })
	if fh, _ := c.read(t); fh.Type != packets.Connack {
		t.Fatalf("CONNACK expected, got %v", fh.Type)
	}
	return c
}

func (c *rawV) write(t *testing.T, enc func(*bytes.Buffer) error) {
	t.Helper()
	var b bytes.Buffer
	if err := enc(&b); err != nil {
		t.Fatal(err)
	}
	if _, err := c.conn.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
}

func (c *rawV) read(t *testing.T) (packets.FixedHeader, []byte) {
	t.Helper()
	h, err := c.r.ReadByte()
	if err != nil {
		t.Fatal(err)
	}
	var fh packets.FixedHeader
	if err := fh.Decode(h); err != nil {
		t.Fatal(err)
	}
	n, _, err := packets.DecodeLength(c.r)
	if err != nil {
		t.Fatal(err)
	}
	fh.Remaining = n
	body := make([]byte, n)
	if _, err := io.ReadFull(c.r, body); err != nil {
		t.Fatal(err)
	}
	return fh, body
}

func (c *rawV) subscribe(t *testing.T, filter string) {
	t.Helper()
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, ProtocolVersion: c.version, PacketID: 7,
		Filters: packets.Subscriptions{{Filter: filter, Qos: 0}}}
	c.write(t, func(b *bytes.Buffer) error { return pk.SubscribeEncode(b) })
	for {
		// A broker may send matching messages before the SUBACK.
		fh, body := c.read(t)
		switch fh.Type {
		case packets.Suback:
			return
		case packets.Publish:
			c.early = append(c.early, packets.Packet{FixedHeader: fh, ProtocolVersion: c.version})
			if err := c.early[len(c.early)-1].PublishDecode(body); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("SUBACK expected, got %v", fh.Type)
		}
	}
}

func (c *rawV) publish(t *testing.T) packets.Packet {
	t.Helper()
	if len(c.early) > 0 {
		pk := c.early[0]
		c.early = c.early[1:]
		return pk
	}
	for {
		fh, body := c.read(t)
		if fh.Type != packets.Publish {
			continue
		}
		pk := packets.Packet{FixedHeader: fh, ProtocolVersion: c.version}
		if err := pk.PublishDecode(body); err != nil {
			t.Fatal(err)
		}
		return pk
	}
}

// TestRetainedPublishWhileSubscribing: the gateway publishes retained
// messages while clients subscribe to wildcards, which makes the broker
// scan its retained messages: under -race this was a data race in
// mochi's topic index (mochi-mqtt/server#200) until retainSync kept
// them apart.
func TestRetainedPublishWhileSubscribing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEmbedded(EmbeddedConfig{Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 3000 {
			if err := e.Publish(ctx, fmt.Sprintf("t/%d/x", i%64), []byte("v"), true); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := range 30 {
		c := dialV(t, ln.Addr().String(), 4)
		c.subscribe(t, []string{"t/#", "t/+/x", "#"}[i%3])
		c.conn.Close()
	}
	<-done
}
