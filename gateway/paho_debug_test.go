package gateway_test

import (
	"log"
	"os"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// PAHO_DEBUG=1 go test ./gateway prints the Paho client's own log.
func init() {
	if os.Getenv("PAHO_DEBUG") != "" {
		paho.DEBUG = log.New(os.Stderr, "PAHO ", 0)
		paho.ERROR = log.New(os.Stderr, "PAHOERR ", 0)
	}
}
