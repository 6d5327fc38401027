// Package install follows docs/RUNNING.md's Raspberry Pi install from a
// fresh clone of the repository (TestPiInstall).
package install

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/tether-iot/tether/client"
)

// step runs one line of the doc's install steps; unknown lines fail the
// test, so that the doc and this test change together.
type pi struct {
	t      *testing.T
	ctx    context.Context
	src    string // the fresh clone
	root   string // stands for the Pi's /
	arch   string // the release target of this machine (amd64, arm64, armv7, armv6)
	head   string // the clone's commit
	proc   *exec.Cmd
	done   chan error
	log    *logPipe
	ports  map[string]string // TETHER_ADDR, TETHER_MQTT_LISTEN, TETHER_WEB
	status string            // what curl printed
}

// TestPiInstall follows "Install on a Raspberry Pi" (docs/RUNNING.md):
// a fresh clone, the binary built by scripts/release for this machine,
// the files installed into a directory standing for the Pi's root, the
// unit checked by systemd-analyze verify (when present), the binary
// started as systemd would (the unit's environment and environment file,
// stderr as a journal stream; not its user), and then: it serves a node,
// its messages on MQTT, Home Assistant discovery and the status page,
// with the clone's commit as its version, logs without timestamps, and
// stops cleanly on SIGTERM.
func TestPiInstall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("not in a git clone: %v", err)
	}
	p := &pi{t: t, ctx: ctx, root: t.TempDir(), arch: releaseArch()}
	p.src = filepath.Join(t.TempDir(), "tether")
	run(t, "", "git", "clone", "-q", strings.TrimSpace(string(top)), p.src)
	p.head = strings.TrimSpace(run(t, p.src, "git", "rev-parse", "HEAD"))

	doc, err := os.ReadFile(filepath.Join(p.src, "docs/RUNNING.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)<!-- BEGIN pi install steps[^>]*-->(.*?)<!-- END pi install steps -->`).FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/RUNNING.md: no pi install steps")
	}
	var steps []string
	for _, block := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllSubmatch(m[1], -1) {
		for line := range strings.SplitSeq(string(block[1]), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				steps = append(steps, line)
			}
		}
	}
	if len(steps) < 10 {
		t.Fatalf("%d steps in the doc", len(steps))
	}
	defer p.stop()
	for _, s := range steps {
		t.Logf("step: %s", s)
		p.step(s)
		if t.Failed() {
			return
		}
	}
	if p.proc == nil || p.status == "" {
		t.Fatal("the steps never started the service nor looked at its status page")
	}
	p.serves()
	p.stop()
	if err := <-p.done; err != nil {
		t.Errorf("the service did not stop cleanly on SIGTERM: %v\n%s", err, p.log)
	}
	p.done <- nil
}

func (p *pi) step(s string) {
	t := p.t
	words := strings.Fields(s)
	sudo := words[0] == "sudo"
	if sudo {
		words = words[1:]
	}
	switch {
	case s == "git clone https://github.com/tether-iot/tether && cd tether":
		// Done: the fresh clone of this repository.
	case words[0] == "scripts/release" && len(words) == 3 && words[1] == "--only" && words[2] == "arm64":
		// The doc's arch is the Pi's; here, this machine's.
		run(t, p.src, "scripts/release", "--only", p.arch)
	case words[0] == "install":
		p.install(words[1:])
	case words[0] == "useradd":
		// Not made on the machine running the tests: the service runs
		// as this test's user. The command's form is checked.
		if !strings.Contains(s, "--system") || words[len(words)-1] != "tether" {
			t.Errorf("useradd: %s", s)
		}
	case words[0] == "tether" && words[1] == "version":
		out := run(t, "", p.path("/usr/local/bin/tether"), "version")
		if !strings.Contains(out, "revision "+p.head) {
			t.Errorf("tether version does not name the clone's commit %s:\n%s", p.head, out)
		}
	case s == "sudo systemctl daemon-reload":
		p.verifyUnit()
	case s == "sudo systemctl enable --now tether":
		p.start()
	case s == "systemctl status tether":
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("not running: %v\n%s", err, p.log)
		default:
		}
	case s == "journalctl -u tether":
		if err := p.log.wait(p.ctx, "gateway started"); err != nil {
			t.Fatalf("no start in its log: %v\n%s", err, p.log)
		}
		for line := range strings.SplitSeq(strings.TrimSpace(p.log.String()), "\n") {
			if strings.Contains(line, "time=") {
				t.Errorf("a second timestamp under the journal: %s", line)
			}
		}
	case strings.HasPrefix(s, "curl -s http://127.0.0.1:8080/"):
		url := "http://" + p.ports["TETHER_WEB"] + strings.TrimPrefix(words[len(words)-1], "http://127.0.0.1:8080")
		p.status = get(t, p.ctx, url)
	default:
		t.Errorf("TestPiInstall does not know how to follow %q: teach it (test/install/pi_test.go)", s)
	}
}

// install runs install(1) with the Pi's paths under p.root; the group
// tether is not there (see useradd).
func (p *pi) install(args []string) {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-g" || a == "-o":
			i++ // the user and group are not made here
		case strings.HasPrefix(a, "/"):
			out = append(out, p.path(a))
		case strings.Contains(a, "*"):
			a = strings.Replace(a, "linux-arm64", "linux-"+p.arch, 1)
			ms, _ := filepath.Glob(filepath.Join(p.src, a))
			if len(ms) != 1 {
				p.t.Fatalf("install: %s matches %v", a, ms)
			}
			out = append(out, ms[0])
		case !strings.HasPrefix(a, "-") && i > 0 && args[i-1] != "-m":
			out = append(out, filepath.Join(p.src, a))
		default:
			out = append(out, a)
		}
	}
	for _, a := range out {
		if strings.HasPrefix(a, p.root) && !strings.Contains(strings.Join(out, " "), "-d") {
			os.MkdirAll(filepath.Dir(a), 0o755)
		}
	}
	run(p.t, p.src, "install", out...)
}

func (p *pi) path(abs string) string { return filepath.Join(p.root, abs) }

// verifyUnit checks the installed unit with systemd-analyze verify,
// its ExecStart pointed at the installed binary (verify checks it is
// there); any warning fails. Without the tool the check is skipped, and
// said.
func (p *pi) verifyUnit() {
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		p.t.Log("systemd-analyze not found: the unit's syntax is NOT checked (install systemd to check it)")
		return
	}
	unit, err := os.ReadFile(p.path("/etc/systemd/system/tether.service"))
	if err != nil {
		p.t.Fatal(err)
	}
	dir := p.t.TempDir()
	text := strings.Replace(string(unit), "ExecStart=/usr/local/bin/tether", "ExecStart="+p.path("/usr/local/bin/tether"), 1)
	if err := os.WriteFile(filepath.Join(dir, "tether.service"), []byte(text), 0o644); err != nil {
		p.t.Fatal(err)
	}
	out, err := exec.Command(tool, "verify", filepath.Join(dir, "tether.service")).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		p.t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	p.t.Logf("systemd-analyze verify: the unit is clean")
}

// unit reads the installed unit's [Service] settings.
func (p *pi) unit() map[string][]string {
	f, err := os.Open(p.path("/etc/systemd/system/tether.service"))
	if err != nil {
		p.t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, _ := strings.Cut(line, "=")
			out[k] = append(out[k], v)
		}
	}
	return out
}

// start starts the installed binary as systemd would start the unit:
// its Environment= (%S the state directories' root), then its
// EnvironmentFile= (edited first, as the doc says one may, for free
// loopback ports), StateDirectory= made, ExecStart=, stdin /dev/null,
// stderr a stream named by JOURNAL_STREAM.
func (p *pi) start() {
	t := p.t
	u := p.unit()
	state := p.path("/var/lib")
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	for _, e := range u["Environment"] {
		env = append(env, strings.ReplaceAll(e, "%S", state))
	}
	envFile := p.path("/etc/tether/tether.env")
	p.ports = map[string]string{"TETHER_ADDR": freePort(t), "TETHER_MQTT_LISTEN": freePort(t), "TETHER_WEB": freePort(t)}
	text, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	var edited []string
	for line := range strings.SplitSeq(string(text), "\n") {
		k, _, _ := strings.Cut(line, "=")
		if v, ok := p.ports[k]; ok {
			line = k + "=" + v
		}
		edited = append(edited, line)
	}
	if err := os.WriteFile(envFile, []byte(strings.Join(edited, "\n")), 0o640); err != nil {
		t.Fatal(err)
	}
	for _, f := range u["EnvironmentFile"] {
		for line := range strings.SplitSeq(readFile(t, p.path(strings.TrimPrefix(f, "-"))), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				env = append(env, line)
			}
		}
	}
	for _, d := range u["StateDirectory"] {
		if err := os.MkdirAll(filepath.Join(state, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	argv := strings.Fields(u["ExecStart"][0])
	p.log = newLogPipe()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(w.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	env = append(env, fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino))
	p.proc = exec.Command(p.path(argv[0]), argv[1:]...)
	p.proc.Env = env
	p.proc.Dir = "/"
	p.proc.Stderr = w
	p.proc.Stdout = io.Discard
	if err := p.proc.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	go p.log.copy(r)
	p.done = make(chan error, 1)
	go func() { p.done <- p.proc.Wait() }()
}

// serves checks what the installed service does: a node's message on
// MQTT, the gateway's and Home Assistant's retained topics, and the
// status page's version.
func (p *pi) serves() {
	t := p.t
	var st struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal([]byte(p.status), &st); err != nil || !strings.Contains(st.Version, p.head[:12]) {
		t.Errorf("the status page's version %q (%v), want the clone's commit %s", st.Version, err, p.head[:12])
	}
	got := make(chan paho.Message, 100)
	o := paho.NewClientOptions().AddBroker("tcp://" + p.ports["TETHER_MQTT_LISTEN"]).SetClientID("pi-test").SetAutoReconnect(false).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { got <- m })
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("MQTT: %v", tok.Error())
	}
	defer c.Disconnect(50)
	if tok := c.SubscribeMultiple(map[string]byte{"tether/#": 1, "homeassistant/#": 1}, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	n, err := client.Dial(p.ctx, client.Config{ID: "kitchen", Server: p.ports["TETHER_ADDR"], Timeout: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	defer n.Close()
	if err := n.Write(p.ctx, `{"temp": 21.5}`); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"tether/kitchen/up": false, "homeassistant/sensor/tether_kitchen/message/config": false, "tether/kitchen/last": false}
	online := false
	for !online || !allTrue(want) {
		select {
		case m := <-got:
			if _, ok := want[m.Topic()]; ok {
				want[m.Topic()] = true
			}
			if strings.HasPrefix(m.Topic(), "tether/$gateway/") && string(m.Payload()) == "online" {
				online = true
			}
		case <-p.ctx.Done():
			t.Fatalf("MQTT: online %v, %v\n%s", online, want, p.log)
		}
	}
}

func (p *pi) stop() {
	if p.proc == nil || p.proc.Process == nil {
		return
	}
	p.proc.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(20 * time.Second): // the unit's TimeoutStopSec
		p.proc.Process.Kill()
	}
}

func allTrue(m map[string]bool) bool {
	for _, v := range m {
		if !v {
			return false
		}
	}
	return true
}

// releaseArch is this machine's scripts/release target.
func releaseArch() string {
	if runtime.GOARCH == "arm" {
		return "armv7"
	}
	return runtime.GOARCH
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(t *testing.T, ctx context.Context, url string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	http.DefaultClient.CloseIdleConnections()
	return string(b)
}

// logPipe keeps what the service logged and tells when a line came.
type logPipe struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLogPipe() *logPipe { return &logPipe{changed: make(chan struct{})} }

func (l *logPipe) copy(r io.ReadCloser) {
	defer r.Close()
	b := make([]byte, 4096)
	for {
		n, err := r.Read(b)
		l.mu.Lock()
		l.buf.Write(b[:n])
		close(l.changed)
		l.changed = make(chan struct{})
		l.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (l *logPipe) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logPipe) wait(ctx context.Context, s string) error {
	for {
		l.mu.Lock()
		ok := strings.Contains(l.buf.String(), s)
		ch := l.changed
		l.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
