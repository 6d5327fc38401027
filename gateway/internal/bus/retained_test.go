package bus

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestRetainedNeverExpire (issue 10.4): a retained message of the
// gateway's is still there after 25 hours (mochi's default deletes
// every retained message a day old). Fake time: synctest.
func TestRetainedNeverExpire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, err := NewEmbedded(EmbeddedConfig{})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		if err := e.Publish(context.Background(), "tether/$gateway/g/state", []byte("online"), true); err != nil {
			t.Fatal(err)
		}
		time.Sleep(25 * time.Hour)
		if _, ok := e.srv.Topics.Retained.Get("tether/$gateway/g/state"); !ok {
			t.Fatal("the retained message is gone after 25 h")
		}
	})
}
