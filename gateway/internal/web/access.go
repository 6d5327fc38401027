package web

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tether-iot/tether/internal/passwd"
)

// Who may use the page (issue 9):
//
//   - Requests that reach a loopback address must name localhost, a
//     subdomain of localhost, a literal loopback address or one of
//     Config.Hosts in their Host header: a site whose own name resolves to
//     127.0.0.1 (DNS rebinding) is refused.
//   - With Config.Token or Config.Users, every request needs them (a
//     bearer token, or HTTP Basic authentication).
//   - Without them, a loopback listener is read by anyone on the machine,
//     and Serve refuses a listener beyond loopback unless Config.Insecure.
//   - Actions (POST) need the credentials whatever the listener, and are
//     refused to requests a browser sends on behalf of another site
//     (http.CrossOriginProtection: Sec-Fetch-Site, Origin against Host)
//     and to bodies other than JSON (which other sites cannot send
//     without the browser asking first).

// Why a request was refused: the label "reason" of
// tether_web_refused_total.
const (
	refusedHost        = "host"           // Host header not allowed on loopback
	refusedAuth        = "credentials"    // missing or wrong credentials
	refusedCrossOrigin = "cross_origin"   // an action another site asked for
	refusedNoAuth      = "no_credentials" // an action while none are configured
	refusedContentType = "content_type"   // an action whose body is not JSON
	refusedBusy        = "busy"           // a password check past the CPU budget
)

var refusedReasons = []string{refusedHost, refusedAuth, refusedCrossOrigin, refusedNoAuth, refusedContentType, refusedBusy}

// ErrNoCredentials is returned by Serve (and CheckListener) for a
// listener beyond loopback while the Config has neither Token nor Users
// nor Insecure.
var ErrNoCredentials = errors.New("web: a status page beyond loopback needs credentials (a token or a users file), or an explicit insecure opt-out")

// access checks every request; its methods are safe for concurrent use.
type access struct {
	token    string
	users    *passwd.File
	insecure bool
	hosts    []string
	log      *slog.Logger
	cop      *http.CrossOriginProtection
	refused  *prometheus.CounterVec

	// Basic-auth checks cost tens of milliseconds of CPU each: one at a
	// time (sem), within a CPU budget (a flood of guesses must not starve
	// the nodes), and those that passed are remembered for a while.
	sem    chan struct{}
	mu     sync.Mutex
	passed map[[32]byte]time.Time // hash of user and password -> until
	counts map[string]uint64      // refusals by reason, for the log
	budget time.Duration          // CPU time password checks may spend now
	filled time.Time              // when budget was last refilled
}

// passedTTL is how long a user and password that passed are trusted
// without another bcrypt check; maxPassed bounds how many are.
// Password checks may take checkShare of one core in the long run, and
// checkBurst at once: past it a request is refused (503, Retry-After)
// without a check.
const (
	passedTTL  = 5 * time.Minute
	maxPassed  = 256
	checkShare = 0.2
	checkBurst = time.Second
)

func newAccess(cfg Config) *access {
	a := &access{
		token:    cfg.Token,
		users:    cfg.Users,
		insecure: cfg.Insecure,
		hosts:    cfg.Hosts,
		log:      cfg.Logger,
		cop:      http.NewCrossOriginProtection(),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tether",
			Name:      "web_refused_total",
			Help:      "Requests to the status page, API or metrics refused, by reason: host (a Host header not allowed on loopback: DNS rebinding), credentials (missing or wrong), cross_origin (an action that another site asked for), no_credentials (an action while none are configured), content_type (an action whose body is not JSON), busy (a password to check while password checks had used their CPU budget).",
		}, []string{"reason"}),
		sem:    make(chan struct{}, 1),
		passed: make(map[[32]byte]time.Time),
		counts: make(map[string]uint64),
		budget: checkBurst,
		filled: time.Now(),
	}
	for _, r := range refusedReasons {
		a.refused.WithLabelValues(r)
	}
	return a
}

// credentials reports whether a token or users are configured.
func (a *access) credentials() bool { return a.token != "" || a.users != nil }

// isLoopback reports whether addr is a TCP address on loopback.
func isLoopback(addr net.Addr) bool {
	ta, ok := addr.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// checkListener reports whether a listener on addr may be served.
func (a *access) checkListener(addr net.Addr) error {
	if isLoopback(addr) || a.credentials() || a.insecure {
		return nil
	}
	return fmt.Errorf("%w: %s is not loopback: set a token (web.token_file, --web-token-file) or users (web.users_file, --web-users), listen on 127.0.0.1, or accept anyone who can reach it with web.insecure (--web-insecure)", ErrNoCredentials, addr)
}

// hostAllowed reports whether r may be served given its Host header: on
// a connection to a loopback address, only localhost names, literal
// loopback addresses and the configured names are.
func (a *access) hostAllowed(r *http.Request) bool {
	la, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if la == nil || !isLoopback(la) || r.Host == "" {
		// An HTTP/1.0 request without Host is no browser's.
		return true
	}
	h := hostName(r.Host)
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true // browsers resolve these to loopback themselves (RFC 6761)
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return true
	}
	return slices.Contains(a.hosts, h)
}

// The outcomes of checking a request's credentials.
const (
	authOK   = iota
	authBad  // missing or wrong
	authBusy // a password to check, past the budget
)

// authenticate checks whether r carries the configured credentials.
func (a *access) authenticate(r *http.Request) int {
	if auth := r.Header.Get("Authorization"); a.token != "" && len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		if passwd.Equal(strings.TrimSpace(auth[7:]), a.token) {
			return authOK
		}
		return authBad
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return authBad
	}
	if a.token != "" && passwd.Equal(pass, a.token) {
		return authOK
	}
	if a.users == nil {
		return authBad
	}
	key := sha256.Sum256([]byte(user + "\x00" + pass))
	now := time.Now()
	a.mu.Lock()
	until, ok := a.passed[key]
	a.mu.Unlock()
	if ok && now.Before(until) {
		return authOK
	}
	select {
	case a.sem <- struct{}{}:
	case <-r.Context().Done():
		return authBad
	}
	defer func() { <-a.sem }()
	a.mu.Lock()
	now = time.Now()
	a.budget = min(a.budget+time.Duration(float64(now.Sub(a.filled))*checkShare), checkBurst)
	a.filled = now
	broke := a.budget <= 0
	a.mu.Unlock()
	if broke {
		return authBusy
	}
	good := a.users.Verify(user, pass)
	a.mu.Lock()
	a.budget -= time.Since(now)
	if good {
		if len(a.passed) >= maxPassed {
			clear(a.passed)
		}
		a.passed[key] = now.Add(passedTTL)
	}
	a.mu.Unlock()
	if good {
		return authOK
	}
	return authBad
}

// refuse answers r with code and msg, counts it and logs it (the 1st,
// 2nd, 4th, 8th... refusal of each reason).
func (a *access) refuse(w http.ResponseWriter, r *http.Request, code int, reason, msg string) {
	a.refused.WithLabelValues(reason).Inc()
	a.mu.Lock()
	a.counts[reason]++
	n := a.counts[reason]
	a.mu.Unlock()
	if bits.OnesCount64(n) == 1 {
		a.log.Warn("status page: request refused", "reason", reason, "method", r.Method, "path", r.URL.Path,
			"host", r.Host, "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"), "refusals", n)
	}
	if code == http.StatusUnauthorized {
		h := w.Header()
		h.Add("WWW-Authenticate", `Basic realm="Tether", charset="UTF-8"`)
		if a.token != "" {
			h.Add("WWW-Authenticate", `Bearer realm="Tether"`)
		}
	}
	writeJSON(w, code, map[string]string{"error": msg})
}

// guard checks the Host header and the credentials of every request
// before next.
func (a *access) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.hostAllowed(r) {
			a.refuse(w, r, http.StatusForbidden, refusedHost,
				fmt.Sprintf("host %q not allowed on a loopback address: use localhost or 127.0.0.1, or add the name to web.hosts", hostName(r.Host)))
			return
		}
		if a.credentials() {
			switch a.authenticate(r) {
			case authBad:
				a.refuse(w, r, http.StatusUnauthorized, refusedAuth, "credentials required")
				return
			case authBusy:
				w.Header().Set("Retry-After", "5")
				a.refuse(w, r, http.StatusServiceUnavailable, refusedBusy, "too many password checks: retry in a few seconds (the token is not limited)")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// action guards a state-changing handler: credentials must be
// configured (guard checked them), the request must come from the
// page's own origin or from no browser at all, and its body must be
// JSON.
func (a *access) action(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := a.cop.Check(r); err != nil {
			a.refuse(w, r, http.StatusForbidden, refusedCrossOrigin, "cross-origin request refused")
			return
		}
		if !a.credentials() {
			a.refuse(w, r, http.StatusForbidden, refusedNoAuth,
				"actions need credentials: start the gateway with a token (web.token_file) or users (web.users_file)")
			return
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "application/json") {
			a.refuse(w, r, http.StatusUnsupportedMediaType, refusedContentType, "send a JSON body (Content-Type: application/json)")
			return
		}
		next(w, r)
	}
}
