// Package passwd reads and writes password files: one "user:hash" a
// line; blank lines and lines starting with '#' are skipped. A hash is
// either bcrypt ($2a$, $2b$ or $2y$, as "htpasswd -nB user" and "tether
// web passwd FILE user" write them) or mosquitto_passwd's ($7$, as
// mosquitto_passwd and "tether mqtt passwd FILE user" write them, or
// mosquitto 1.x's $6$), so that one file serves the status page, the
// embedded broker and a mosquitto beside them (which read only the
// mosquitto_passwd lines). Passwords are never kept, only their hashes.
package passwd

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// MaxCost is the highest bcrypt cost accepted in a file: each check of a
// password costs 2^cost rounds, and a file with a huge cost would let
// anyone who sends a password spend seconds of CPU.
const MaxCost = 14

// File is a parsed password file. Its methods are safe for concurrent
// use.
type File struct {
	users map[string][]byte

	dummyOnce sync.Once
	dummy     []byte // a hash to check unknown users against, made at first use
}

// hashCost is the bcrypt cost of Hash (the tests lower it).
var hashCost = bcrypt.DefaultCost

// Load reads a password file.
func Load(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pf, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pf, nil
}

// Parse reads a password file from r. It fails on a line that is not
// user:hash, a hash that is neither bcrypt nor mosquitto_passwd's (or
// costs more than MaxCost or MaxIterations), a user named twice, and a
// file with no user.
func Parse(r io.Reader) (*File, error) {
	f := &File{users: make(map[string][]byte)}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" || hash == "" {
			return nil, fmt.Errorf("line %d: want user:hash (make one with: tether web passwd FILE USER)", n)
		}
		if _, dup := f.users[user]; dup {
			return nil, fmt.Errorf("line %d: user %q is already listed", n, user)
		}
		if _, err := Format(hash); err != nil {
			return nil, fmt.Errorf("line %d: user %q: %v; make one with: tether mqtt passwd FILE %s (or tether web passwd)", n, user, err, user)
		}
		f.users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(f.users) == 0 {
		return nil, errors.New("no user in the file")
	}
	return f, nil
}

// Len returns the number of users.
func (f *File) Len() int { return len(f.users) }

// Verify reports whether password is user's. It costs one check of a
// hash (tens of milliseconds) whether or not the user exists.
func (f *File) Verify(user, password string) bool {
	h, ok := f.users[user]
	if !ok {
		// Unknown users are checked against a hash as costly as the
		// costliest in the file, so that the time taken does not tell
		// them apart.
		f.dummyOnce.Do(func() {
			var costliest []byte
			for _, h := range f.users {
				if costliest == nil || work(string(h)) > work(string(costliest)) {
					costliest = h
				}
			}
			f.dummy = dummyLike(costliest)
		})
		match(f.dummy, password)
		return false
	}
	return match(h, password)
}

// match reports whether password is hash's, in either format.
func match(hash []byte, password string) bool {
	if bytes.HasPrefix(hash, []byte("$2")) {
		return bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
	}
	return MatchMosquitto(string(hash), password)
}

// dummyLike returns the hash of a password nobody has, in the format
// and at the cost of hash.
func dummyLike(hash []byte) []byte {
	const pw = "not a password"
	if cost, err := bcrypt.Cost(hash); err == nil {
		d, _ := bcrypt.GenerateFromPassword([]byte(pw), cost)
		return d
	}
	h, err := parseMosquitto(string(hash))
	if err != nil {
		d, _ := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		return d
	}
	d := mosquittoHash{iter: h.iter, salt: []byte("not a salt"), key: make([]byte, len(h.key))}
	enc := base64.StdEncoding
	if d.iter == 0 {
		return fmt.Appendf(nil, "$6$%s$%s", enc.EncodeToString(d.salt), enc.EncodeToString(d.key))
	}
	return fmt.Appendf(nil, "$7$%d$%s$%s", d.iter, enc.EncodeToString(d.salt), enc.EncodeToString(d.key))
}

// Hash returns the line of a password file for user with password.
func Hash(user, password string) (string, error) {
	if user == "" || strings.ContainsAny(user, ":\n\r") {
		return "", fmt.Errorf("user name %q: must be non-empty, without ':' or line breaks", user)
	}
	if password == "" {
		return "", errors.New("empty password")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), hashCost)
	if err != nil {
		return "", err
	}
	return user + ":" + string(h), nil
}

// Set returns the password file text with user's password set to
// password: its line replaced, or added at the end. Other lines,
// comments included, are kept as they are. text may be empty (a new
// file); it must otherwise parse.
func Set(text []byte, user, password string) ([]byte, error) {
	line, err := Hash(user, password)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(text)) > 0 && !onlyComments(text) {
		if _, err := Parse(bytes.NewReader(text)); err != nil {
			return nil, err
		}
	}
	var out []byte
	found := false
	for l := range strings.Lines(string(text)) {
		name, _, ok := strings.Cut(strings.TrimSpace(l), ":")
		if ok && !strings.HasPrefix(strings.TrimSpace(l), "#") && name == user {
			l = line + "\n"
			found = true
		}
		out = append(out, l...)
	}
	if !found {
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		out = append(out, line+"\n"...)
	}
	return out, nil
}

// onlyComments reports whether text has no line but blank ones and
// comments.
func onlyComments(text []byte) bool {
	for l := range strings.Lines(string(text)) {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// Equal reports in constant time whether a and b are equal: for tokens.
func Equal(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// ReadSecret reads a secret (a token) from a file: its first line,
// without surrounding spaces. It fails on an empty secret.
func ReadSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	s := strings.TrimSpace(string(line))
	if s == "" {
		return "", fmt.Errorf("%s: empty: write the token on its first line", path)
	}
	return s, nil
}
