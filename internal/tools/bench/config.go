package bench

import (
	"context"
	"io"
	"log/slog"
	"time"
)

// Config sets the scenarios' sizes. A zero field means the default of a
// full run, or of a quick one if Quick is set; the defaults are written
// beside each field as full / quick.
type Config struct {
	// Quick runs every scenario small: seconds, not minutes.
	Quick bool

	// Timeout is T for the server and the nodes: 2 s / 2 s.
	Timeout time.Duration
	// Size is the payload of each message, in bytes: 32 / 32.
	Size int
	// Samples is how many round trips each latency figure is made of
	// (after 10% more for warm-up): 20,000 / 500.
	Samples int
	// Duration is how long each throughput run lasts: 5 s / 1 s.
	Duration time.Duration
	// Writers is how many writers share one connection for "qos without
	// wait" and for its baselines: 16 / 16.
	Writers int
	// AggNodes is how many nodes the aggregate throughput runs over:
	// 1,000 / 50.
	AggNodes int
	// Scale lists the numbers of nodes for the idle and storm scenarios
	// (the cost curve): 100, 1,000, 10,000 / 20, 100.
	Scale []int
	// Idle is how long N idle nodes are watched for CPU use and spurious
	// outages: 60 s / 2 s.
	Idle time.Duration
	// ReconnectDelay is the nodes' wait after an outage before connecting
	// again (client.Config.ReconnectDelay, without the client's jitter and
	// backoff, so that the fleet comes back at once: the server's worst
	// case). It is not part of the storm's time, which starts at the new
	// server's first accept: 0 (2T) / 200 ms.
	ReconnectDelay time.Duration
	// PerIP is how many connections share one 127.x.y.z source address:
	// 32 / 32.
	PerIP int
	// StepTimeout bounds each step that waits for the nodes (all up,
	// all delivered): 2 min / 30 s.
	StepTimeout time.Duration

	// Only, if not empty, runs only the scenarios named: "latency",
	// "throughput", "scale" (3, 4 and 5). For profiling one of them.
	Only []string

	// Mosquitto is the mosquitto binary of the second MQTT baseline; ""
	// finds it on the PATH or in /usr/sbin. If there is none, or the file
	// named does not exist, that baseline is skipped with a line saying so.
	Mosquitto string

	// NewFarm starts the farm the nodes run in; nil means in this
	// process (NewLocalFarm).
	NewFarm func(ctx context.Context) (Farm, error)
	// Progress receives a line per step; nil means none.
	Progress io.Writer
	// Logger receives the servers' logs; nil means none (an Info line
	// per node up or down would swamp a storm).
	Logger *slog.Logger
	// AtIdle, if set, is called when the idle window of n nodes starts
	// (end false), after their memory has been measured, and when it ends
	// (end true): to write a heap profile, or profile the idle CPU.
	AtIdle func(n int, end bool)
	// AtStorm, if set, is called when the storm of n nodes starts (end
	// false: the server is about to restart) and when every node is up
	// and delivered (end true): to profile it.
	AtStorm func(n int, end bool)
}

func (c Config) withDefaults() Config {
	def := func(v *int, full, quick int) {
		if *v == 0 {
			*v = full
			if c.Quick {
				*v = quick
			}
		}
	}
	defD := func(v *time.Duration, full, quick time.Duration) {
		if *v == 0 {
			*v = full
			if c.Quick {
				*v = quick
			}
		}
	}
	defD(&c.Timeout, 2*time.Second, 2*time.Second)
	def(&c.Size, 32, 32)
	def(&c.Samples, 20000, 500)
	defD(&c.Duration, 5*time.Second, time.Second)
	def(&c.Writers, 16, 16)
	def(&c.AggNodes, 1000, 50)
	defD(&c.Idle, 60*time.Second, 2*time.Second)
	defD(&c.ReconnectDelay, 0, 200*time.Millisecond)
	def(&c.PerIP, 32, 32)
	defD(&c.StepTimeout, 2*time.Minute, 30*time.Second)
	if len(c.Scale) == 0 {
		c.Scale = []int{100, 1000, 10000}
		if c.Quick {
			c.Scale = []int{20, 100}
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return c
}

// nodeDelay is the nodes' reconnect delay in force.
func (c Config) nodeDelay() time.Duration {
	if c.ReconnectDelay > 0 {
		return c.ReconnectDelay
	}
	return 2 * c.Timeout
}
