package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// errNoMosquitto says that the mosquitto baseline cannot run: the broker
// is not installed.
var errNoMosquitto = errors.New("mosquitto is not installed (Debian: apt-get install mosquitto; scripts/test installs it)")

// mosquittoPath finds the mosquitto binary: bin if set, else on the
// PATH, or where the Debian package puts it (/usr/sbin, not on every
// user's PATH).
func mosquittoPath(bin string) (string, error) {
	if bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("%w: %v", errNoMosquitto, err)
		}
		return bin, nil
	}
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto", nil
	}
	return "", errNoMosquitto
}

// mosquitto is the second MQTT baseline: the C broker most users pick, as
// a child process listening on loopback. Its memory and CPU are read from
// /proc, as the process's own.
type mosquitto struct {
	cmd     *exec.Cmd
	addr    string
	dir     string
	version string
	logDone chan struct{}
	log     *tail
}

// startMosquitto starts mosquitto on a free loopback port, without
// persistence or authentication, and returns once it is listening. It
// returns errNoMosquitto if the broker is not installed.
func startMosquitto(ctx context.Context, bin string) (*mosquitto, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("mosquitto: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	dir, err := os.MkdirTemp("", "tether-bench-mosquitto")
	if err != nil {
		return nil, fmt.Errorf("mosquitto: %w", err)
	}
	conf := filepath.Join(dir, "mosquitto.conf")
	// "user root": mosquitto started as root would otherwise switch to
	// the mosquitto user, which may not exist.
	text := fmt.Sprintf("user root\nlistener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_connections -1\nconnection_messages false\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n", port)
	if os.Getuid() != 0 {
		text = strings.Replace(text, "user root\n", "", 1)
	}
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mosquitto: %w", err)
	}
	m := &mosquitto{addr: addr, dir: dir, logDone: make(chan struct{}), log: &tail{max: 4096}}
	m.cmd = exec.Command(bin, "-c", conf)
	stderr, err := m.cmd.StderrPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mosquitto: %w", err)
	}
	if err := m.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mosquitto: %w", err)
	}
	// Its notice "mosquitto version X running" says it listens.
	running := make(chan string, 1)
	go func() {
		defer close(m.logDone)
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			m.log.Write([]byte(line + "\n"))
			if !sent && strings.Contains(line, " running") {
				running <- line
				sent = true
			}
		}
		if !sent {
			close(running)
		}
	}()
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case line, ok := <-running:
		if ok {
			if _, v, found := strings.Cut(line, "mosquitto version "); found {
				m.version, _, _ = strings.Cut(v, " ")
			}
			return m, nil
		}
		m.close()
		return nil, fmt.Errorf("mosquitto exited at start%s", m.log.suffix())
	case <-t.C:
		m.close()
		return nil, fmt.Errorf("mosquitto: not running after 10 s%s", m.log.suffix())
	case <-ctx.Done():
		m.close()
		return nil, ctx.Err()
	}
}

// close stops mosquitto and waits for it.
func (m *mosquitto) close() {
	m.cmd.Process.Kill()
	<-m.logDone
	m.cmd.Wait()
	os.RemoveAll(m.dir)
}

// usage reads mosquitto's CPU time and resident set from /proc.
func (m *mosquitto) usage() (cpu time.Duration, rssBytes int64, err error) {
	return procUsage(m.cmd.Process.Pid)
}

// clockTick is the unit of /proc/PID/stat's CPU times (USER_HZ), 100 on
// every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// procUsage reads a process's user + system CPU time and its resident set
// from /proc.
func procUsage(pid int) (time.Duration, int64, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	statm, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0, 0, err
	}
	sf := bytes.Fields(statm)
	if len(sf) < 2 {
		return 0, 0, fmt.Errorf("/proc/%d/statm: %q", pid, statm)
	}
	pages, err := strconv.ParseInt(string(sf[1]), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/statm: %w", pid, err)
	}
	return time.Duration(ut+st) * clockTick, pages * int64(os.Getpagesize()), nil
}

// mqttConnect returns an MQTT 3.1.1 CONNECT packet: clean session, the
// client id, the keepalive in seconds.
func mqttConnect(clientID string, keepalive time.Duration) []byte {
	secs := max(int((keepalive+time.Second-1)/time.Second), 1)
	var vh []byte
	vh = append(vh, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, byte(secs>>8), byte(secs))
	vh = append(vh, byte(len(clientID)>>8), byte(len(clientID)))
	vh = append(vh, clientID...)
	p := []byte{0x10}
	for n := len(vh); ; {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		p = append(p, b)
		if n == 0 {
			break
		}
	}
	return append(p, vh...)
}

// mqttPingReq is an MQTT PINGREQ packet: an idle client's keepalive.
var mqttPingReq = []byte{0xc0, 0x00}

// mqttHandshake sends CONNECT on c and reads the broker's CONNACK, which
// must accept the connection.
func mqttHandshake(c net.Conn, clientID string, keepalive time.Duration) error {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(mqttConnect(clientID, keepalive)); err != nil {
		return fmt.Errorf("mqtt connect: %w", err)
	}
	var ack [4]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return fmt.Errorf("mqtt connack: %w", err)
	}
	if ack[0] != 0x20 || ack[1] != 2 || ack[3] != 0 {
		return fmt.Errorf("mqtt connack: refused: % x", ack)
	}
	return nil
}
