package soak_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/tether-iot/tether/internal/tools/soak"
)

// A short soak, as CI runs it: 20 nodes against an in-process server,
// until they have survived 300 outages of every kind.
func ExampleRun() {
	r, err := soak.Run(context.Background(), soak.Config{
		Nodes:   20,
		Timeout: 300 * time.Millisecond,
		Outages: 300,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	r.WriteTo(os.Stdout)
	if !r.OK() {
		os.Exit(1)
	}
}
