package bench

import (
	"fmt"
	"log/slog"
	"net"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// broker is the MQTT baseline: an embedded mochi-mqtt broker on loopback.
type broker struct {
	srv  *mqtt.Server
	addr string
}

func startBroker(log *slog.Logger) (*broker, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("mqtt broker: %w", err)
	}
	srv := mqtt.New(&mqtt.Options{Logger: log})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		ln.Close()
		return nil, fmt.Errorf("mqtt broker: %w", err)
	}
	if err := srv.AddListener(listeners.NewNet("bench", ln)); err != nil {
		ln.Close()
		return nil, fmt.Errorf("mqtt broker: %w", err)
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return nil, fmt.Errorf("mqtt broker: %w", err)
	}
	return &broker{srv: srv, addr: ln.Addr().String()}, nil
}

func (b *broker) close() { b.srv.Close() }
