package bench

import (
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// Usage is a process's resource use at one instant.
type Usage struct {
	CPU        time.Duration `json:"cpu_ns"`      // user + system time since start
	RSS        int64         `json:"rss_bytes"`   // resident set
	HeapAlloc  int64         `json:"heap_bytes"`  // live heap (after a GC when asked)
	StackInuse int64         `json:"stack_bytes"` // goroutine stacks
	Goroutines int           `json:"goroutines"`
	Counters   counters      `json:"counters"` // system calls, thread wakeups
}

// readUsage reads this process's usage. With settle, it first collects
// garbage and returns freed memory to the OS, so that two readings compare
// live memory.
func readUsage(settle bool) Usage {
	if settle {
		// Two collections empty the sync.Pools (and their victim
		// caches) of earlier work; then return freed memory to the OS.
		runtime.GC()
		runtime.GC()
		debug.FreeOSMemory()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Usage{
		CPU:        cpuTime(),
		RSS:        rss(),
		HeapAlloc:  int64(ms.HeapAlloc),
		StackInuse: int64(ms.StackInuse),
		Goroutines: runtime.NumGoroutine(),
		Counters:   readCounters("self"),
	}
}

// cpuTime returns the user and system CPU time of this process.
func cpuTime() time.Duration {
	u, s := cpuSplit()
	return u + s
}

// cpuSplit returns the user and the system CPU time of this process.
func cpuSplit() (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// rss returns the resident set size of this process, from /proc.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

// Dist summarises latency samples, in microseconds.
type Dist struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_us"`
	P99  float64 `json:"p99_us"`
	Max  float64 `json:"max_us"`
	Mean float64 `json:"mean_us"`
	// P50Ratio and P99Ratio are P50 and P99 over those of the raw TCP
	// baseline (the echo for round trips, the raw one-way for one-way).
	P50Ratio float64 `json:"p50_us_ratio,omitempty"`
	P99Ratio float64 `json:"p99_us_ratio,omitempty"`
}

// against sets d's ratios to the raw baseline.
func (d *Dist) against(raw Dist) {
	d.P50Ratio = div(d.P50, raw.P50)
	d.P99Ratio = div(d.P99, raw.P99)
}

// distOf summarises samples in nanoseconds; it sorts them.
func distOf(ns []int64) Dist {
	if len(ns) == 0 {
		return Dist{}
	}
	slices.Sort(ns)
	var sum float64
	for _, v := range ns {
		sum += float64(v)
	}
	at := func(p int) float64 {
		i := min(len(ns)*p/100, len(ns)-1)
		return float64(ns[i]) / 1e3
	}
	return Dist{
		N:    len(ns),
		P50:  at(50),
		P99:  at(99),
		Max:  float64(ns[len(ns)-1]) / 1e3,
		Mean: sum / float64(len(ns)) / 1e3,
	}
}

// listenDrops returns the kernel's count of connections dropped or
// refused at a full listen queue (TcpExt ListenDrops, which includes
// ListenOverflows), machine-wide; -1 if unknown.
func listenDrops() int64 {
	b, err := os.ReadFile("/proc/net/netstat")
	if err != nil {
		return -1
	}
	lines := bytes.Split(b, []byte("\n"))
	for i := 0; i+1 < len(lines); i += 2 {
		keys, vals := bytes.Fields(lines[i]), bytes.Fields(lines[i+1])
		if len(keys) == 0 || string(keys[0]) != "TcpExt:" || len(keys) != len(vals) {
			continue
		}
		for j, k := range keys {
			if string(k) == "ListenDrops" {
				v, err := strconv.ParseInt(string(vals[j]), 10, 64)
				if err != nil {
					return -1
				}
				return v
			}
		}
	}
	return -1
}

// counters is a process's cumulative count of read and write system
// calls (/proc/PID/io syscr, syscw: read and write, not recv and send)
// and of its threads' voluntary context switches, each a thread that
// blocked (in epoll, on a futex) and so had to be woken again
// (/proc/PID/task/*/status; the involuntary ones, preemptions, count how
// busy the machine is and are left out). Differences of two readings
// divided by the messages or keepalives in between give system calls and
// thread wakeups per message.
type counters struct {
	Reads, Writes, Switches int64
}

// readCounters reads the counters of process pid ("self" for this one);
// zero if /proc cannot tell.
func readCounters(pid string) counters {
	var c counters
	if b, err := os.ReadFile("/proc/" + pid + "/io"); err == nil {
		for line := range bytes.SplitSeq(b, []byte("\n")) {
			k, v, ok := bytes.Cut(line, []byte(":"))
			if !ok {
				continue
			}
			n, _ := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			switch string(k) {
			case "syscr":
				c.Reads = n
			case "syscw":
				c.Writes = n
			}
		}
	}
	tasks, _ := os.ReadDir("/proc/" + pid + "/task")
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/" + pid + "/task/" + t.Name() + "/status")
		if err != nil {
			continue
		}
		for line := range bytes.SplitSeq(b, []byte("\n")) {
			k, v, ok := bytes.Cut(line, []byte(":"))
			if ok && string(k) == "voluntary_ctxt_switches" {
				n, _ := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
				c.Switches += n
			}
		}
	}
	return c
}

// per returns the counts from c0 to c1 per event, in a Costs.
func per(c0, c1 counters, events float64) Costs {
	if events <= 0 {
		return Costs{}
	}
	return Costs{
		Reads:    float64(c1.Reads-c0.Reads) / events,
		Writes:   float64(c1.Writes-c0.Writes) / events,
		Switches: float64(c1.Switches-c0.Switches) / events,
	}
}

// Costs are a server process's system calls and thread wakeups
// (voluntary context switches) per message or per keepalive.
type Costs struct {
	Reads    float64 `json:"reads"`
	Writes   float64 `json:"writes"`
	Switches float64 `json:"wakeups"`
}
