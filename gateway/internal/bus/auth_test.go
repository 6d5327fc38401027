package bus

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Hashes made by the real mosquitto_passwd ($7$) check, as do ours; a
// wrong password does not. (TestMosquittoReadsOurHashes, in package
// gateway, has a real mosquitto check ours.)
func TestPasswordFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mosquitto_passwd", "-b", file, "ha", "s3cret pass").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd (apt-get install mosquitto): %v: %s", err, out)
	}
	text, _ := os.ReadFile(file)
	ours, err := HashPassword("other")
	if err != nil {
		t.Fatal(err)
	}
	text, err = SetPassword(text, "nodered", ours)
	if err != nil {
		t.Fatal(err)
	}
	users, err := ParsePasswords(text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	for _, tc := range []struct {
		user, pw string
		want     bool
	}{{"ha", "s3cret pass", true}, {"ha", "s3cret", false}, {"nodered", "other", true}, {"nodered", "s3cret pass", false}} {
		if ok, err := verify(users[tc.user], tc.pw); ok != tc.want || err != nil {
			t.Errorf("verify(%s, %q) = %v, %v; want %v", tc.user, tc.pw, ok, err, tc.want)
		}
	}
	for _, bad := range []string{"nocolon", "u:plain", "u:$7$x$AA==$AA==", "u:$6$!!$AA=="} {
		if _, err := ParsePasswords([]byte(bad)); err == nil {
			t.Errorf("ParsePasswords(%q) accepted", bad)
		}
	}
}

func TestCovers(t *testing.T) {
	for _, tc := range []struct {
		allowed, f string
		want       bool
	}{
		{"#", "tether/a/up", true},
		{"#", "$SYS/x", false},
		{"tether/#", "tether", true},
		{"tether/#", "tether/a/#", true},
		{"tether/a/#", "tether/#", false},
		{"tether/+/down", "tether/a/down", true},
		{"tether/+/down", "tether/+/down", true},
		{"tether/a/down", "tether/+/down", false},
		{"tether/+/down", "tether/#", false},
		{"tether/+/down", "tether/a/down/noqos", false},
	} {
		if got := covers(tc.allowed, tc.f); got != tc.want {
			t.Errorf("covers(%q, %q) = %v", tc.allowed, tc.f, got)
		}
	}
}
