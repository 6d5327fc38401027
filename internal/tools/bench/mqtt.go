package bench

import (
	"context"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// mqttRun runs Paho clients publishing QoS 1 to the broker at spec.Addr:
// each of spec.Conns clients runs spec.Workers publishers, each waiting
// for its PUBACK (token.Wait) before the next publish.
func mqttRun(ctx context.Context, spec LoadSpec) (Response, error) {
	clients := make([]paho.Client, max(spec.Conns, 1))
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Disconnect(0)
			}
		}
	}()
	for i := range clients {
		opts := paho.NewClientOptions().
			AddBroker("tcp://" + spec.Addr).
			SetClientID(fmt.Sprintf("bench-%d", i)).
			SetAutoReconnect(false).
			SetConnectRetry(false).
			SetCleanSession(true).
			SetKeepAlive(30 * time.Second)
		c := paho.NewClient(opts)
		if err := waitToken(ctx, c.Connect()); err != nil {
			return Response{}, fmt.Errorf("mqtt connect: %w", err)
		}
		clients[i] = c
	}
	start := time.Now()
	deadline := start.Add(spec.Duration)
	total, samples, first := load(len(clients)*max(spec.Workers, 1), func(i int) (int64, []int64, error) {
		c := clients[i%len(clients)]
		topic := fmt.Sprintf("bench/%d", i)
		return writeLoop(spec, deadline, func(p string) error {
			return waitToken(ctx, c.Publish(topic, 1, false, p))
		})
	})
	if first != nil {
		return Response{}, fmt.Errorf("mqtt publish: %w", first)
	}
	return Response{Count: total, Elapsed: int64(time.Since(start)), Samples: samples}, nil
}

func waitToken(ctx context.Context, t paho.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}
