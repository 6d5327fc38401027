package main

import (
	"context"
	"fmt"

	"github.com/tether-iot/tether/gateway"
)

// nodesForget is tether nodes forget ID (issue 10.2): a typo'd stdin ID
// would otherwise keep a durable queue and a retained "down" for ever.
func nodesForget(ctx context.Context, e *env, data, id string) error {
	if id == "" {
		return fmt.Errorf("tether nodes forget: give the node's ID, e.g. tether nodes forget pump1")
	}
	f, err := gateway.ForgetID(ctx, data, id)
	if err != nil {
		return err
	}
	where := "in the store (no gateway running): its retained MQTT state is cleared when the gateway starts"
	if f.Online {
		where = "by the running gateway"
	}
	fmt.Fprintf(e.stdout, "node %q forgotten %s; %d queued and %d spooled messages deleted\n", id, where, f.Queued, f.Spooled)
	return nil
}
