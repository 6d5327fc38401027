package gateway_test

import (
	"fmt"

	"github.com/tether-iot/tether/gateway"
)

// The seed's remote-control demo as config: node tx's messages go to
// node rx, without qos.
func ExampleParseConfig() {
	cfg, err := gateway.ParseConfig("gateway.yaml", []byte(`
nodes: {expect: [tx, rx], strict: true}
routes:
  - {from: tx, to: rx, qos: false}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range cfg.Routes {
		fmt.Printf("%s -> %s qos=%v\n", r.From, r.To, r.Reliable())
	}
	_, err = gateway.ParseConfig("bad.yaml", []byte("timeout: 2\nmqtt:\n  brokr: x\n"))
	fmt.Println(err)
	// Output:
	// tx -> rx qos=false
	// bad.yaml:1: timeout: "2" is not a duration: write it as 2s or 500ms
}

func ExampleEscapeID() {
	t := gateway.Topics{Prefix: "tether"}
	fmt.Println(t.Up("kitchen/temp+1"))
	fmt.Println(t.Down("#"))
	// Output:
	// tether/kitchen%2Ftemp%2B1/up
	// tether/%23/down
}
