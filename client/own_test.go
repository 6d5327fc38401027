package client_test

import (
	"reflect"
	"testing"

	"github.com/tether-iot/tether/client"
)

// TestClientOwnsItsLink: the link is the Client's alone. No exported field
// hands it out (c.Link.Close would bypass Client.Close) and no Attach is
// promoted (a socket attached by the user would race the reconnect loop).
func TestClientOwnsItsLink(t *testing.T) {
	typ := reflect.TypeFor[*client.Client]()
	for f := range typ.Elem().Fields() {
		if f.IsExported() {
			t.Errorf("client.Client has an exported field %s (%v)", f.Name, f.Type)
		}
	}
	if _, ok := typ.MethodByName("Attach"); ok {
		t.Error("client.Client has an Attach method")
	}
}
