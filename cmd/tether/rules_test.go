package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// TestServeFlagRules (issue 10.7): each flag refuses what its config
// key refuses, with the same words (gateway/rules_test.go), naming the
// flag.
func TestServeFlagRules(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--timeout", "1ns"}, "between 50ms and 1h"},
		{[]string{"--timeout", "0"}, "between 50ms and 1h"},
		{[]string{"--timeout", "-1s"}, "between 50ms and 1h"},
		{[]string{"--timeout", "3h"}, "between 50ms and 1h"},
		{[]string{"--max-line", "2"}, "between 8 and 1048576"},
		{[]string{"--max-line", "-1"}, "between 8 and 1048576"},
		{[]string{"--max-line", "2000000"}, "between 8 and 1048576"},
		{[]string{"--grace", "-1s"}, "0 or more"},
		{[]string{"--queue-max-messages", "-2"}, "-1 (no bound), 0 (the default"},
		{[]string{"--queue-max-total-bytes", "-5"}, "-1 (no bound), 0 (the default"},
		{[]string{"--queue-max-nodes", "-9"}, "-1 (no bound), 0 (the default"},
		{[]string{"--queue-max-up-messages", "-3"}, "-1 (no bound), 0 (the default"},
		{[]string{"--queue-max-bytes", "-1"}, "at least max_line"},
		{[]string{"--addr", "8123"}, "host:port"},
		{[]string{"--mqtt-listen", "1883"}, "host:port"},
		{[]string{"--web", "8080"}, "host:port"},
		{[]string{"--name", "a/b"}, "name"},
		{[]string{"--name", "gw\u200b"}, "visible"},
		{[]string{"--expect", "a,b\u200b"}, "nodes.expect"},
		{[]string{"--max-nodes", "-2"}, "-1 (no bound), 0 (the default"},
		{[]string{"--forget-after", "1ms"}, "at least T"},
	} {
		var errb bytes.Buffer
		args := []string{"serve", "--data", dir, "--broker", "none"}
		if tc.args[0] != "--addr" {
			args = append(args, "--addr", "127.0.0.1:0")
		}
		if tc.args[0] != "--web" {
			args = append(args, "--web", "127.0.0.1:0")
		}
		// Should a value be accepted, serve runs: a second ends it.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := run(ctx, &env{stdout: io.Discard, stderr: &errb}, append(args, tc.args...))
		cancel()
		if err == nil {
			t.Errorf("%v: accepted", tc.args)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tc.args[0]) || !strings.Contains(msg, tc.want) {
			t.Errorf("%v: error %q, want %q and %q", tc.args, msg, tc.args[0], tc.want)
		}
	}
}
