// Package passwd reads and writes password files: one "user:hash" a
// line, where hash is a bcrypt hash ($2a$, $2b$ or $2y$, as "htpasswd
// -nB user" and "tether web passwd FILE user" write them); blank lines
// and lines starting with '#' are skipped. Passwords are never kept, only
// their hashes.
package passwd

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
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
// user:hash, a hash that is not bcrypt (or costs more than MaxCost), a
// user named twice, and a file with no user.
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
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return nil, fmt.Errorf("line %d: user %q: not a bcrypt hash (%v); make one with: tether web passwd FILE %s", n, user, err, user)
		}
		if cost > MaxCost {
			return nil, fmt.Errorf("line %d: user %q: bcrypt cost %d is over %d: every login would take seconds", n, user, cost, MaxCost)
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

// Verify reports whether password is user's. It costs one bcrypt check
// (tens of milliseconds) whether or not the user exists.
func (f *File) Verify(user, password string) bool {
	h, ok := f.users[user]
	if !ok {
		// Unknown users are checked against a hash of the highest cost
		// in the file, so that the time taken does not tell them apart.
		f.dummyOnce.Do(func() {
			cost := bcrypt.MinCost
			for _, h := range f.users {
				c, _ := bcrypt.Cost(h)
				cost = max(cost, c)
			}
			f.dummy, _ = bcrypt.GenerateFromPassword([]byte("not a password"), cost)
		})
		bcrypt.CompareHashAndPassword(f.dummy, []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword(h, []byte(password)) == nil
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
