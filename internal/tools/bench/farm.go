package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// A Farm runs the simulated nodes and the baseline clients. Do runs one
// request at a time; Close stops everything the farm runs.
type Farm interface {
	// Mode says where the nodes run, for the report.
	Mode() string
	Do(ctx context.Context, req Request) (Response, error)
	Close() error
}

// Request is one command to a farm. Op selects it; the other fields are
// its arguments.
//
//	nodes.start   connect Nodes.N Tether nodes and wait until all are up
//	nodes.write   nodes write messages (Load)
//	nodes.queue   every node writes Queue qos messages in the background;
//	              returns once each has been given its id
//	nodes.events  count the nodes' Up and Down events so far
//	nodes.stop    close every node
//	raw.run       raw TCP line clients (Load)
//	raw.hold      hold Hold.N raw connections, sending keepalives and
//	              reconnecting as told
//	raw.release   close the held connections
//	mqtt.run      Paho MQTT clients publishing QoS 1 (Load)
//	usage         the farm process's resource use
type Request struct {
	Op    string     `json:"op"`
	Nodes *NodesSpec `json:"nodes,omitempty"`
	Load  *LoadSpec  `json:"load,omitempty"`
	Hold  *HoldSpec  `json:"hold,omitempty"`
	Queue int        `json:"queue,omitempty"`
}

// NodesSpec says which Tether nodes to start.
type NodesSpec struct {
	Addr           string        `json:"addr"`
	N              int           `json:"n"`
	Timeout        time.Duration `json:"timeout"`
	ReconnectDelay time.Duration `json:"reconnect_delay"` // 0: 2T; fixed, no jitter nor backoff
	PerIP          int           `json:"per_ip"`          // nodes per 127.x.y.z source address
}

// LoadSpec is a load of messages from a farm's clients. Each of Conns
// connections (or nodes: the first Conns started) runs Workers writers;
// each writes Count messages, or as many as it can in Duration.
type LoadSpec struct {
	Addr     string        `json:"addr,omitempty"` // raw and mqtt: the server
	Conns    int           `json:"conns"`
	Workers  int           `json:"workers"`
	Count    int           `json:"count,omitempty"`
	Duration time.Duration `json:"duration,omitempty"`
	Size     int           `json:"size"`            // payload bytes
	Mode     string        `json:"mode,omitempty"`  // nodes: off, wait, nowait; raw: stream, window
	Stamp    bool          `json:"stamp,omitempty"` // carry the send time, for one-way times
	Samples  bool          `json:"samples,omitempty"`
	PerIP    int           `json:"per_ip,omitempty"`
}

// HoldSpec is a set of idle raw connections.
type HoldSpec struct {
	Addr      string        `json:"addr"`
	N         int           `json:"n"`
	Keepalive time.Duration `json:"keepalive"` // send "\n" this often; 0 never
	Reconnect time.Duration `json:"reconnect"` // after EOF, wait this and connect again; 0 never
	PerIP     int           `json:"per_ip"`
	// MQTT makes them idle MQTT 3.1.1 clients: each sends CONNECT (the
	// keepalive rounded up to whole seconds) and waits for its CONNACK,
	// and its keepalive is a PINGREQ, not "\n".
	MQTT bool `json:"mqtt,omitempty"`
}

// Response is a farm's answer.
type Response struct {
	Err     string  `json:"err,omitempty"`
	Count   int64   `json:"count,omitempty"`   // messages written or echoed
	Elapsed int64   `json:"elapsed,omitempty"` // ns the load ran
	Samples []int64 `json:"samples,omitempty"` // round trips, ns
	Ups     int64   `json:"ups,omitempty"`
	Downs   int64   `json:"downs,omitempty"`
	Usage   *Usage  `json:"usage,omitempty"`
}

// LocalFarm runs nodes and clients in this process.
type LocalFarm struct {
	mu    sync.Mutex // one request at a time
	nodes *nodeSet
	held  *rawHold
}

// NewLocalFarm returns a farm that runs in this process.
func NewLocalFarm() *LocalFarm { return &LocalFarm{} }

// Mode implements Farm.
func (f *LocalFarm) Mode() string { return "in-process" }

// Do implements Farm.
func (f *LocalFarm) Do(ctx context.Context, req Request) (Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch req.Op {
	case "nodes.start":
		if f.nodes != nil {
			return Response{}, errors.New("farm: nodes already started")
		}
		if req.Nodes == nil {
			break
		}
		ns, err := startNodes(ctx, *req.Nodes)
		if err != nil {
			return Response{}, err
		}
		f.nodes = ns
		return Response{}, nil
	case "nodes.write", "nodes.queue", "nodes.events", "nodes.stop":
		if f.nodes == nil {
			return Response{}, errors.New("farm: no nodes started")
		}
		switch req.Op {
		case "nodes.write":
			if req.Load == nil {
				break
			}
			return f.nodes.write(ctx, *req.Load)
		case "nodes.queue":
			return Response{}, f.nodes.queue(ctx, req.Queue)
		case "nodes.events":
			return Response{Ups: f.nodes.ups.Load(), Downs: f.nodes.downs.Load()}, nil
		case "nodes.stop":
			ns := f.nodes
			f.nodes = nil
			ns.stop()
			return Response{Ups: ns.ups.Load(), Downs: ns.downs.Load()}, nil
		}
	case "raw.run":
		if req.Load == nil {
			break
		}
		return rawRun(ctx, *req.Load)
	case "raw.hold":
		if f.held != nil {
			return Response{}, errors.New("farm: raw connections already held")
		}
		if req.Hold == nil {
			break
		}
		h, err := holdRaw(ctx, *req.Hold)
		if err != nil {
			return Response{}, err
		}
		f.held = h
		return Response{}, nil
	case "raw.release":
		if f.held != nil {
			f.held.release()
			f.held = nil
		}
		return Response{}, nil
	case "mqtt.run":
		if req.Load == nil {
			break
		}
		return mqttRun(ctx, *req.Load)
	case "usage":
		u := readUsage(false)
		return Response{Usage: &u}, nil
	default:
		return Response{}, fmt.Errorf("farm: unknown op %q", req.Op)
	}
	return Response{}, fmt.Errorf("farm: %s: missing arguments", req.Op)
}

// Close implements Farm: it stops the nodes and held connections.
func (f *LocalFarm) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nodes != nil {
		f.nodes.stop()
		f.nodes = nil
	}
	if f.held != nil {
		f.held.release()
		f.held = nil
	}
	return nil
}
