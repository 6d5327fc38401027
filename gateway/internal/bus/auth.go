package bus

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tether-iot/tether/internal/passwd"
)

// Password files are mosquitto's (mosquitto_passwd): one "user:hash" a
// line, '#' comments. Hashes are mosquitto 2's "$7$" (PBKDF2-SHA512:
// $7$iterations$base64 salt$base64 hash) or mosquitto 1.x's "$6$"
// (SHA-512 of password then salt: $6$base64 salt$base64 hash): package
// passwd reads and makes them (the status page reads the same files).

// HashPassword returns password's "$7$" hash (PBKDF2-SHA512, a random
// 12-byte salt), as mosquitto_passwd writes it.
func HashPassword(password string) (string, error) { return passwd.HashMosquitto(password) }

// verify reports whether password matches hash.
func verify(hash, password string) (bool, error) {
	if err := passwd.CheckMosquitto(hash); err != nil {
		return false, err
	}
	return passwd.MatchMosquitto(hash, password), nil
}

// ParsePasswords reads a password file: user name -> hash.
func ParsePasswords(text []byte) (map[string]string, error) {
	users := make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("line %d: want user:hash", n)
		}
		if err := passwd.CheckMosquitto(hash); err != nil {
			return nil, fmt.Errorf("line %d (user %q): %v", n, user, err)
		}
		if _, dup := users[user]; dup {
			return nil, fmt.Errorf("line %d: user %q again", n, user)
		}
		users[user] = hash
	}
	return users, sc.Err()
}

// SetPassword returns the password file text with user's line added or
// replaced by one with hash; the other lines are kept.
func SetPassword(text []byte, user, hash string) ([]byte, error) {
	if user == "" || strings.ContainsAny(user, ":\n\r") {
		return nil, fmt.Errorf("user name %q: not empty, no ':' or line break", user)
	}
	var out bytes.Buffer
	done := false
	for line := range strings.Lines(string(text)) {
		u, _, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && u == user && !strings.HasPrefix(u, "#") {
			if !done {
				fmt.Fprintf(&out, "%s:%s\n", user, hash)
				done = true
			}
			continue
		}
		out.WriteString(line)
		if !strings.HasSuffix(line, "\n") {
			out.WriteByte('\n')
		}
	}
	if !done {
		fmt.Fprintf(&out, "%s:%s\n", user, hash)
	}
	return out.Bytes(), nil
}

// User is a user of the embedded broker: its password hash and the topic
// filters it may read (subscribe to and receive; none means every
// topic) and write (publish to; none means no topic).
type User struct {
	Hash  string
	Read  []string
	Write []string
}

// Auth is who may use the embedded broker and what they may do. The
// gateway's topics (EmbeddedConfig.GatewayTopic) are never written by a
// client, whatever its rights.
type Auth struct {
	// Anonymous accepts clients that give no user name, with every
	// right but the gateway's topics.
	Anonymous bool
	// Users by name; a client giving a user name must give its password.
	Users map[string]User
}

// authHook authenticates clients and checks their rights (Auth).
type authHook struct {
	mqtt.HookBase
	e           *Embedded
	auth        Auth
	gatewayOnly func(string) bool

	refusedLogins, refusedWrites, refusedReads atomic.Uint64
	loginLog, writeLog, readLog                rateLog
}

func (h *authHook) ID() string { return "tether-auth" }

func (h *authHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

// OnConnectAuthenticate accepts an anonymous client if Anonymous, and a
// user with its password.
func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	name := string(pk.Connect.Username)
	ok := false
	switch u, known := h.auth.Users[name]; {
	case name == "":
		ok = h.auth.Anonymous
	case known:
		ok, _ = verify(u.Hash, string(pk.Connect.Password))
	}
	if !ok {
		h.refusedLogins.Add(1)
		if n, log := h.loginLog.allow(); log {
			why := "unknown user or wrong password"
			if name == "" {
				why = "anonymous clients are not accepted on this listener: give a user name and password"
			}
			h.e.log.Warn("embedded MQTT broker: connection refused", "client", cl.ID, "user", name,
				"remote", cl.Net.Remote, "reason", why, "not_logged_since", n)
		}
	}
	return ok
}

// OnACLCheck checks a client's write (publish) or read (subscribe, and
// each message given to it) of topic, a topic name or a filter.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true
	}
	name := string(cl.Properties.Username)
	u, known := h.auth.Users[name]
	var ok bool
	switch {
	case write && h.gatewayOnly(topic):
		ok = false
	case !known:
		ok = name == "" && h.auth.Anonymous
	case write:
		ok = coveredBy(topic, u.Write)
	case len(u.Read) == 0:
		ok = true
	default:
		ok = coveredBy(topic, u.Read)
	}
	if ok {
		return true
	}
	count, rl, what := &h.refusedReads, &h.readLog, "read"
	if write {
		count, rl, what = &h.refusedWrites, &h.writeLog, "write"
	}
	count.Add(1)
	if n, log := rl.allow(); log {
		h.e.log.Warn("embedded MQTT broker: "+what+" refused: no right", "client", cl.ID, "user", name,
			"topic", topic, "not_logged_since", n)
	}
	return false
}

// coveredBy reports whether every topic that filter (or topic name)
// matches is matched by one of the allowed filters.
func coveredBy(filter string, allowed []string) bool {
	for _, a := range allowed {
		if covers(a, filter) {
			return true
		}
	}
	return false
}

// covers reports whether filter a matches every topic that filter f
// matches.
func covers(a, f string) bool {
	if strings.HasPrefix(f, "$") && !strings.HasPrefix(a, "$") {
		return false
	}
	al := strings.Split(a, "/")
	fl := strings.Split(f, "/")
	for i, p := range al {
		if p == "#" {
			return true
		}
		if i >= len(fl) {
			return false
		}
		switch {
		case fl[i] == "#":
			return false
		case p == "+":
		case p != fl[i]:
			return false
		}
	}
	return len(al) == len(fl)
}
