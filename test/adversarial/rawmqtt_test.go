package adversarial

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"syscall"
	"testing"
)

// rawMQTT is an MQTT 3.1.1 client written by hand, for what a well-kept
// client library will not do: stop reading, send an oversized packet.
type rawMQTT struct {
	c    net.Conn
	r    *bufio.Reader
	subs uint16 // SUBSCRIBE packet ids used (from 60000: apart from the broker's)
}

// rawOptions tunes a raw client's connection.
type rawOptions struct {
	ID, User, Password string
	Keepalive          uint16 // seconds; 0: none
	RecvBuf            int    // SO_RCVBUF before connecting; 0: the default
	Clean              bool
}

func dialRaw(t testing.TB, ctx context.Context, addr string, o rawOptions) (*rawMQTT, byte) {
	t.Helper()
	d := net.Dialer{}
	if o.RecvBuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, o.RecvBuf)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if dl, ok := ctx.Deadline(); ok {
		c.SetReadDeadline(dl)
	}
	m := &rawMQTT{c: c, r: bufio.NewReader(c)}
	var vh []byte
	vh = append(vh, 0, 4, 'M', 'Q', 'T', 'T', 4)
	flags := byte(0)
	if o.Clean {
		flags |= 0x02
	}
	if o.User != "" {
		flags |= 0x80
	}
	if o.Password != "" {
		flags |= 0x40
	}
	vh = append(vh, flags, byte(o.Keepalive>>8), byte(o.Keepalive))
	vh = appendString(vh, o.ID)
	if o.User != "" {
		vh = appendString(vh, o.User)
	}
	if o.Password != "" {
		vh = appendString(vh, o.Password)
	}
	m.send(t, 0x10, vh)
	typ, body := m.read(t)
	if typ>>4 != 2 || len(body) != 2 {
		t.Fatalf("raw MQTT: CONNACK expected, got type %#x %v", typ, body)
	}
	return m, body[1]
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func appendLength(b []byte, n int) []byte {
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

func (m *rawMQTT) send(t testing.TB, typ byte, body []byte) {
	t.Helper()
	pk := appendLength([]byte{typ}, len(body))
	if _, err := m.c.Write(append(pk, body...)); err != nil {
		t.Fatalf("raw MQTT: write: %v", err)
	}
}

// read reads one packet: its first byte and its body.
func (m *rawMQTT) read(t testing.TB) (byte, []byte) {
	t.Helper()
	typ, body, err := m.readErr()
	if err != nil {
		t.Fatalf("raw MQTT: read: %v", err)
	}
	return typ, body
}

func (m *rawMQTT) readErr() (byte, []byte, error) {
	typ, err := m.r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mul := 0, 1
	for {
		d, err := m.r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(d&0x7f) * mul
		if d&0x80 == 0 {
			break
		}
		mul *= 128
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(m.r, body); err != nil {
		return 0, nil, err
	}
	return typ, body, nil
}

// subscribe subscribes to filter with qos and returns the SUBACK's code.
func (m *rawMQTT) subscribe(t testing.TB, filter string, qos byte) byte {
	t.Helper()
	m.subs++
	id := 60000 + m.subs
	body := appendString([]byte{byte(id >> 8), byte(id)}, filter)
	m.send(t, 0x82, append(body, qos))
	for {
		typ, b := m.read(t)
		if typ>>4 == 9 {
			if len(b) != 3 {
				t.Fatalf("raw MQTT: bad SUBACK %v", b)
			}
			return b[2]
		}
	}
}

// publish sends a PUBLISH (QoS 0 if id is 0, else QoS 1 with that id).
func (m *rawMQTT) publish(t testing.TB, topic string, payload []byte, retain bool, id uint16) {
	t.Helper()
	if err := m.publishErr(topic, payload, retain, id); err != nil {
		t.Fatalf("raw MQTT: publish: %v", err)
	}
}

// readPublish reads packets until a PUBLISH and returns its topic and
// payload, acknowledging it if it has QoS 1.
func (m *rawMQTT) readPublish(t testing.TB) (topic string, payload []byte, retained bool, err error) {
	t.Helper()
	for {
		typ, b, err := m.readErr()
		if err != nil {
			return "", nil, false, err
		}
		if typ>>4 != 3 {
			continue
		}
		n := int(binary.BigEndian.Uint16(b))
		topic = string(b[2 : 2+n])
		rest := b[2+n:]
		if qos := (typ >> 1) & 3; qos > 0 {
			m.send(t, 0x40, rest[:2])
			rest = rest[2:]
		}
		return topic, rest, typ&1 == 1, nil
	}
}
