package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"time"
)

// ProcFarm is a farm in a child process, driven over its stdin and
// stdout with one JSON request and one JSON response per line. The
// child runs ServeFarm.
type ProcFarm struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	stderr *tail

	mu   sync.Mutex // one request at a time
	dead error
}

// StartProcFarm starts cmd, which must run ServeFarm on its standard
// input and output (see "tether bench --node-farm").
func StartProcFarm(cmd *exec.Cmd) (*ProcFarm, error) {
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	f := &ProcFarm{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 64<<10), stderr: &tail{max: 4096}}
	cmd.Stderr = f.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("node farm: %w", err)
	}
	return f, nil
}

// Mode implements Farm.
func (f *ProcFarm) Mode() string { return "subprocess" }

// Do implements Farm. If ctx ends first, the child is killed: a farm
// cannot be left half-way through a request.
func (f *ProcFarm) Do(ctx context.Context, req Request) (Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead != nil {
		return Response{}, f.dead
	}
	stop := context.AfterFunc(ctx, func() { f.cmd.Process.Kill() })
	defer stop()
	resp, err := f.roundTrip(req)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		f.dead = fmt.Errorf("node farm: %s: %w%s", req.Op, err, f.stderr.suffix())
		return Response{}, f.dead
	}
	if resp.Err != "" {
		return resp, fmt.Errorf("node farm: %s: %s", req.Op, resp.Err)
	}
	return resp, nil
}

func (f *ProcFarm) roundTrip(req Request) (Response, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return Response{}, err
	}
	if _, err := f.in.Write(append(b, '\n')); err != nil {
		return Response{}, err
	}
	line, err := f.out.ReadBytes('\n')
	if err != nil {
		return Response{}, err
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return Response{}, fmt.Errorf("bad response %.80q: %w", line, err)
	}
	return resp, nil
}

// Close implements Farm: it closes the child's input, which makes it
// stop its nodes and exit, and waits for it (killing it after 30 s).
func (f *ProcFarm) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.in.Close()
	t := time.AfterFunc(30*time.Second, func() { f.cmd.Process.Kill() })
	defer t.Stop()
	err := f.cmd.Wait()
	if f.dead != nil {
		return nil // already reported
	}
	if err != nil {
		return fmt.Errorf("node farm: %w%s", err, f.stderr.suffix())
	}
	return nil
}

// ServeFarm runs a local farm for a parent's ProcFarm: it reads requests
// from r and writes responses to w until r ends or ctx is done, then
// stops everything.
func ServeFarm(ctx context.Context, r io.Reader, w io.Writer) error {
	RaiseFileLimit(0)
	f := NewLocalFarm()
	defer f.Close()
	in := bufio.NewReaderSize(r, 64<<10)
	out := bufio.NewWriterSize(w, 64<<10)
	for {
		line, err := in.ReadBytes('\n')
		if errors.Is(err, io.EOF) && len(bytes.TrimSpace(line)) == 0 {
			return nil
		}
		if err != nil {
			return err
		}
		var req Request
		var resp Response
		if err := json.Unmarshal(line, &req); err != nil {
			resp.Err = fmt.Sprintf("bad request: %v", err)
		} else if resp, err = f.Do(ctx, req); err != nil {
			resp.Err = err.Error()
		}
		b, err := json.Marshal(resp)
		if err != nil {
			return err
		}
		if _, err := out.Write(append(b, '\n')); err != nil {
			return err
		}
		if err := out.Flush(); err != nil {
			return err
		}
	}
}

// tail keeps the last bytes written to it: a child's stderr, for errors.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tail) suffix() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := bytes.TrimSpace(t.b)
	if len(s) == 0 {
		return ""
	}
	return "; its stderr: " + string(s)
}
