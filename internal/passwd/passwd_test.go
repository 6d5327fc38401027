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
		{"too many iterations", "alice:$7$1000001$2sws1nh+GEOyZYH+$SyEBsgWnUa5UbpnWL7Z1FZG0pb6S6uBs1qLSZoD5Yi7NOkJSITCnPKi7e3GS/wcJ2ho6YCtQYW2gz8Ia+r96Sw==\n", "1000001 iterations is over 1000000"},
		{"$7$ not base64", "alice:$7$101$!!$SyEB\n", "bad base64 in a $7$ hash"},
		{"$6$ too short", "alice:$6$56sJAIa43sgEW+Lq$jYUs\n", "bad base64 in a $6$ hash"},
		{"$5$", "alice:$5$abc$def\n", "not a bcrypt hash nor a mosquitto_passwd one"},
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

// mosquittoFile is what mosquitto_passwd (mosquitto 2.0) wrote: alice
// and bob in its default format ($7$: PBKDF2-SHA512, 101 iterations),
// carol with -H sha512 ($6$, mosquitto 1.x's).
const mosquittoFile = `alice:$7$101$2sws1nh+GEOyZYH+$SyEBsgWnUa5UbpnWL7Z1FZG0pb6S6uBs1qLSZoD5Yi7NOkJSITCnPKi7e3GS/wcJ2ho6YCtQYW2gz8Ia+r96Sw==
bob:$7$101$GbirpP60Z/l64U9A$pk8N9uJa2vzj1bc5EAIdOypjEbNz4siVGG3AAtHQmIYU/+DAYd1RVDh0fkqjX8AG/URQcQ8u/xYBq3m4XW6ykA==
carol:$6$56sJAIa43sgEW+Lq$jYUsyF8qx8o7mYunV39s5Wf9eJ3a/iFEfn728ttIDG3h979m1ZdeAaVdtzrF/YWsm/Vsjq6Rj7IOROj3K704GQ==
`

// TestMosquittoFormat: one password file for the broker and the page: a
// file that mosquitto_passwd wrote is read, and its passwords verified,
// beside bcrypt lines (tether web passwd's) in the same file.
func TestMosquittoFormat(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("dave's"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(strings.NewReader(mosquittoFile + "dave:" + string(h) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Len() != 4 {
		t.Fatalf("%d users, want 4", f.Len())
	}
	for _, c := range []struct {
		user, pass string
		want       bool
	}{
		{"alice", "correct horse", true},
		{"alice", "correct horse!", false},
		{"alice", "battery staple", false},
		{"bob", "battery staple", true},
		{"bob", "", false},
		{"carol", "old style", true},
		{"carol", "old styl", false},
		{"dave", "dave's", true},
		{"dave", "correct horse", false},
		{"eve", "correct horse", false},
	} {
		if got := f.Verify(c.user, c.pass); got != c.want {
			t.Errorf("Verify(%q, %q) = %v, want %v", c.user, c.pass, got, c.want)
		}
	}
}

// TestUnknownUserCost: an unknown user is checked against a hash in the
// format and at the cost of the costliest in the file, so that the time
// a check takes does not tell whether a user exists.
func TestUnknownUserCost(t *testing.T) {
	f, err := Parse(strings.NewReader(mosquittoFile))
	if err != nil {
		t.Fatal(err)
	}
	f.Verify("nobody", "x")
	if !strings.HasPrefix(string(f.dummy), "$7$101$") {
		t.Errorf("a mosquitto file's unknown users are checked against %q, want a $7$ hash of 101 iterations", f.dummy)
	}
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost+1)
	if err != nil {
		t.Fatal(err)
	}
	f, err = Parse(strings.NewReader(mosquittoFile + "dave:" + string(h) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	f.Verify("nobody", "x")
	if c, err := bcrypt.Cost(f.dummy); err != nil || c != bcrypt.MinCost+1 {
		t.Errorf("with a bcrypt line (about 5 ms) beside $7$ ones of 101 iterations (0.15 ms), unknown users are checked against %q, want bcrypt at cost %d", f.dummy, bcrypt.MinCost+1)
	}
	if MatchMosquitto(string(dummyLike([]byte("$7$101$2sws1nh+GEOyZYH+$SyEBsgWnUa5UbpnWL7Z1FZG0pb6S6uBs1qLSZoD5Yi7NOkJSITCnPKi7e3GS/wcJ2ho6YCtQYW2gz8Ia+r96Sw=="))), "not a password") {
		t.Error("a dummy hash matches a password")
	}
}

// TestHashMosquitto: HashMosquitto's hashes are $7$ with
// MosquittoIterations and verify (a real mosquitto reads them:
// gateway's TestMosquittoReadsOurHashes).
func TestHashMosquitto(t *testing.T) {
	h, err := HashMosquitto("pw")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$7$10000$") {
		t.Errorf("hash %q, want $7$10000$...", h)
	}
	if f, err := Format(h); err != nil || f != FormatPBKDF2 {
		t.Errorf("Format(%q) = %q, %v", h, f, err)
	}
	if !MatchMosquitto(h, "pw") || MatchMosquitto(h, "pw ") {
		t.Error("HashMosquitto's hash does not verify")
	}
}
