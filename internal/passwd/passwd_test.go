package passwd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestParseVerify(t *testing.T) {
	ha, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	alice := "alice:" + string(ha)
	// htpasswd -nbB writes $2y$ hashes at cost 5.
	h, err := bcrypt.GenerateFromPassword([]byte("battery staple"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	bob := "bob:$2y$" + string(h)[4:]
	f, err := Parse(strings.NewReader("# users of the status page\n\n" + alice + "\n  " + bob + "  \n"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Len() != 2 {
		t.Fatalf("%d users, want 2", f.Len())
	}
	for _, c := range []struct {
		user, pass string
		want       bool
	}{
		{"alice", "correct horse", true},
		{"alice", "correct horse ", false},
		{"alice", "battery staple", false},
		{"bob", "battery staple", true},
		{"bob", "", false},
		{"carol", "correct horse", false},
		{"", "", false},
	} {
		if got := f.Verify(c.user, c.pass); got != c.want {
			t.Errorf("Verify(%q, %q) = %v, want %v", c.user, c.pass, got, c.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	cheap, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	alice := "alice:" + string(cheap)
	costly := "$2a$15$" + string(cheap)[7:] // the cost is in the text
	for _, c := range []struct{ name, file, want string }{
		{"empty", "# nobody\n", "no user"},
		{"no colon", "alice\n", "line 1: want user:hash"},
		{"plain password", "alice:secret\n", "line 1: user \"alice\": not a bcrypt hash"},
		{"sha1 (htpasswd -s)", "alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", "not a bcrypt hash"},
		{"twice", alice + "\n" + alice + "\n", "line 2: user \"alice\" is already listed"},
		{"too costly", "alice:" + costly + "\n", "cost 15 is over 14"},
	} {
		_, err := Parse(strings.NewReader(c.file))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
	if _, err := Hash("a:b", "pw"); err == nil {
		t.Error("Hash accepted a user name with ':'")
	}
	if _, err := Hash("a", ""); err == nil {
		t.Error("Hash accepted an empty password")
	}
}

func TestLoadAndSecret(t *testing.T) {
	dir := t.TempDir()
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	line := "alice:" + string(h)
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(users)
	if err != nil || !f.Verify("alice", "pw") {
		t.Fatalf("Load: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "none")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("alice:pw\n"), 0o600)
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), bad+": line 1") {
		t.Errorf("Load of a bad file: %v, want the path and line", err)
	}

	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("  s3cret-token-0123456789 \nignored\n"), 0o600)
	if s, err := ReadSecret(tok); err != nil || s != "s3cret-token-0123456789" {
		t.Errorf("ReadSecret = %q, %v", s, err)
	}
	os.WriteFile(tok, []byte("\n"), 0o600)
	if _, err := ReadSecret(tok); err == nil {
		t.Error("ReadSecret of an empty file succeeded")
	}
	if !Equal("abc", "abc") || Equal("abc", "abd") || Equal("abc", "abcd") {
		t.Error("Equal is wrong")
	}
}

// TestHash: Hash writes a line that Parse reads and that verifies the
// password, at bcrypt's default cost.
func TestHash(t *testing.T) {
	line, err := Hash("alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(strings.NewReader(line))
	if err != nil {
		t.Fatal(err)
	}
	if cost, _ := bcrypt.Cost(f.users["alice"]); cost != bcrypt.DefaultCost || !f.Verify("alice", "pw") {
		t.Errorf("Hash: cost %d, or the password does not verify", cost)
	}
}

// TestSet: Set adds a user to an empty file, replaces a user's line in
// place and keeps comments; it refuses a file that does not parse.
func TestSet(t *testing.T) {
	hashCost = bcrypt.MinCost
	defer func() { hashCost = bcrypt.DefaultCost }()
	cheap, _ := bcrypt.GenerateFromPassword([]byte("old"), bcrypt.MinCost)
	text := "# web users\nalice:" + string(cheap) + "\n# the end"
	out, err := Set([]byte(text), "alice", "new")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "# web users\nalice:$2a$04$") || !strings.HasSuffix(string(out), "\n# the end") {
		t.Errorf("Set replaced alice as:\n%s", out)
	}
	if out, err = Set(out, "bob", "pw"); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(strings.NewReader(string(out)))
	if err != nil || f.Len() != 2 || !f.Verify("alice", "new") || !f.Verify("bob", "pw") {
		t.Errorf("after Set: %v, %d users:\n%s", err, f.Len(), out)
	}
	if out, err := Set(nil, "carol", "pw"); err != nil || !strings.HasPrefix(string(out), "carol:") {
		t.Errorf("Set on an empty file: %q, %v", out, err)
	}
	if _, err := Set([]byte("alice:plain\n"), "bob", "pw"); err == nil {
		t.Error("Set on a file that does not parse succeeded")
	}
}
