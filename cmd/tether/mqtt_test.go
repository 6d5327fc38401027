package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tether mqtt passwd adds a user, then changes its password, keeping the
// other users (TestMosquittoReadsOurHashes checks the hashes).
func TestMQTTPasswd(t *testing.T) {
	file := filepath.Join(t.TempDir(), "passwd")
	for _, c := range []struct{ user, pw string }{{"ha", "one"}, {"nodered", "two"}, {"ha", "three"}} {
		var out bytes.Buffer
		e := &env{stdin: strings.NewReader(c.pw + "\n"), stdout: &out, stderr: &out}
		if err := run(context.Background(), e, []string{"mqtt", "passwd", file, c.user}); err != nil {
			t.Fatalf("mqtt passwd %s: %v\n%s", c.user, err, out.String())
		}
	}
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(text)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ha:$7$") || !strings.HasPrefix(lines[1], "nodered:$7$") {
		t.Errorf("password file:\n%s\nwant ha then nodered, $7$ hashes", text)
	}
	var out bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &out}
	if err := run(context.Background(), e, []string{"mqtt", "passwd", file, "x"}); err == nil {
		t.Error("mqtt passwd with no password on stdin succeeded")
	}
}
