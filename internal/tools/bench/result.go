package bench

import (
	"encoding/json"
	"time"
)

// Result is what a run measured. The top-level numbers are the ones
// scripts compare between runs; the sections hold every figure.
type Result struct {
	RawEchoP50Us         float64 `json:"raw_echo_p50_us"`
	QosRTTP50Us          float64 `json:"qos_rtt_p50_us"`
	QosRTTP99Us          float64 `json:"qos_rtt_p99_us"`
	MQTTQoS1P50Us        float64 `json:"mqtt_qos1_p50_us"`
	IdleNodes            int     `json:"idle_nodes"`
	IdleBytesPerNode     float64 `json:"idle_bytes_per_node"` // server heap + stacks
	IdleCPUPercent       float64 `json:"idle_cpu_percent"`    // of one core
	StormNodes           int     `json:"storm_nodes"`
	StormSeconds         float64 `json:"storm_seconds"`
	AggregateQosMsgsPerS float64 `json:"aggregate_qos_msgs_per_s"`

	// The second MQTT baseline, mosquitto (empty when it is not
	// installed): its publish→PUBACK p50, and its QoS 1 lock-step
	// throughput (one publish awaiting its PUBACK at a time).
	MosquittoQoS1P50Us    float64 `json:"mosquitto_qos1_p50_us,omitempty"`
	MosquittoQoS1MsgsPerS float64 `json:"mosquitto_qos1_msgs_per_s,omitempty"`
	// Mosquitto is mosquitto's version, or why its baseline was skipped.
	Mosquitto        string `json:"mosquitto"`
	MosquittoSkipped bool   `json:"mosquitto_skipped,omitempty"`

	// Each figure above as a ratio to its raw TCP baseline of the same
	// run (raw echo p50 and p99; raw lock-step echo; the raw idle
	// connection with its goroutine; the raw keepalive echo; the raw
	// reconnect storm): these compare across machines.
	QosRTTP50Ratio             float64 `json:"qos_rtt_p50_us_ratio"`
	QosRTTP99Ratio             float64 `json:"qos_rtt_p99_us_ratio"`
	MQTTQoS1P50Ratio           float64 `json:"mqtt_qos1_p50_us_ratio"`
	MosquittoQoS1P50Ratio      float64 `json:"mosquitto_qos1_p50_us_ratio,omitempty"`
	MosquittoQoS1MsgsPerSRatio float64 `json:"mosquitto_qos1_msgs_per_s_ratio,omitempty"`
	IdleBytesPerNodeRatio      float64 `json:"idle_bytes_per_node_ratio"`
	IdleCPUPercentRatio        float64 `json:"idle_cpu_percent_ratio"`
	StormSecondsRatio          float64 `json:"storm_seconds_ratio"`
	AggregateQosMsgsPerSRatio  float64 `json:"aggregate_qos_msgs_per_s_ratio"`

	Nodes      string    `json:"nodes_mode"` // where the nodes ran: in-process or subprocess
	ServerOnly bool      `json:"server_only"`
	Quick      bool      `json:"quick"`
	Command    string    `json:"command,omitempty"`
	Started    time.Time `json:"started"`
	Seconds    float64   `json:"seconds"` // the whole run
	Machine    Machine   `json:"machine"`
	TimeoutMs  int64     `json:"timeout_ms"`
	Size       int       `json:"payload_bytes"`
	Writers    int       `json:"writers"`

	Latency    Latency      `json:"latency"`
	Throughput []Rate       `json:"throughput"`
	Scale      []ScalePoint `json:"scale"`

	// samples are the latency samples (ns) by series, for the histogram.
	samples map[string][]int64
}

// Machine describes where the run took place.
type Machine struct {
	OS, Arch  string
	CPUs      int
	Go        string
	Model     string `json:",omitempty"`
	FileLimit uint64
}

// Latency holds the latency distributions of scenario 1.
type Latency struct {
	RawEcho   Dist `json:"raw_echo_rtt"`       // TCP line echo, client-side round trip
	RawOneWay Dist `json:"raw_one_way"`        // TCP line, write to server read
	QosRTT    Dist `json:"qos_rtt"`            // Tether qos Write until its ACK
	QosOneWay Dist `json:"qos_one_way"`        // Tether Write to the server's delivery
	MQTTQoS1  Dist `json:"mqtt_qos1_rtt"`      // Paho publish QoS 1 until PUBACK (mochi-mqtt)
	Mosquitto Dist `json:"mosquitto_qos1_rtt"` // the same against mosquitto
}

// Rate is one throughput figure and its baselines, in messages per
// second.
type Rate struct {
	Name      string     `json:"name"`
	Key       string     `json:"key"`
	Conns     int        `json:"conns"`
	Tether    float64    `json:"msgs_per_s"`
	Ratio     float64    `json:"msgs_per_s_ratio"` // Tether / the raw TCP baseline
	Costs     Costs      `json:"server_costs_per_msg"`
	NodeCosts Costs      `json:"node_costs_per_msg"` // the nodes' process (the farm), when apart
	Baselines []Baseline `json:"baselines"`          // the raw TCP one first
}

// Baseline is a figure measured the same way on another stack.
type Baseline struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Ratio float64 `json:"ratio"` // Value / the raw TCP baseline
	// The server's (echo server's, broker's) costs per message, and the
	// clients' process's.
	Costs     Costs `json:"server_costs_per_msg"`
	NodeCosts Costs `json:"node_costs_per_msg"`
}

// ScalePoint holds scenarios 3 and 4 at one number of nodes.
type ScalePoint struct {
	N int `json:"n"`

	// Server memory per idle node: live heap, stacks, RSS (bytes), and
	// goroutines.
	HeapPerNode       float64 `json:"heap_bytes_per_node"`
	StackPerNode      float64 `json:"stack_bytes_per_node"`
	BytesPerNode      float64 `json:"bytes_per_node"` // heap + stacks
	RSSPerNode        float64 `json:"rss_bytes_per_node"`
	GoroutinesPerNode float64 `json:"goroutines_per_node"`
	ConnectSeconds    float64 `json:"connect_seconds"` // all N up from a cold start

	IdleSeconds    float64 `json:"idle_seconds"`
	IdleCPUPercent float64 `json:"idle_cpu_percent"` // server process, of one core
	IdleSysPercent float64 `json:"idle_sys_percent"` // the kernel's part of it
	FarmCPUPercent float64 `json:"farm_cpu_percent,omitempty"`
	// The server process's system calls and thread wakeups per
	// keepalive a node sends, over the idle window (Tether, raw TCP,
	// mosquitto: per PINGREQ).
	IdleCosts          Costs `json:"idle_costs_per_keepalive"`
	RawIdleCosts       Costs `json:"raw_idle_costs_per_keepalive"`
	MosquittoIdleCosts Costs `json:"mosquitto_idle_costs_per_keepalive"`
	ServerDowns        int64 `json:"server_downs"` // outages during the idle window
	NodeDowns          int64 `json:"node_downs"`

	// The floor: idle raw TCP connections on a goroutine each, echoing
	// keepalives at the same rate.
	RawBytesPerNode float64 `json:"raw_bytes_per_node"`
	RawRSSPerNode   float64 `json:"raw_rss_bytes_per_node"`
	RawCPUPercent   float64 `json:"raw_cpu_percent"`
	RawSysPercent   float64 `json:"raw_sys_percent"`

	// Scenario 4: server restarted; from its first accept until every
	// node is up and its queued qos message delivered.
	StormSeconds    float64 `json:"storm_seconds"`
	StormUp         int64   `json:"storm_up"`
	StormDelivered  int64   `json:"storm_delivered"`
	StormComplete   bool    `json:"storm_complete"`
	RawStormSeconds float64 `json:"raw_storm_seconds"` // raw TCP reconnect + one line each
	// Connections the kernel dropped at a full listen queue during each
	// storm (machine-wide TcpExt ListenDrops): each costs its node a SYN
	// retransmission, 1 s or more.
	StormListenDrops    int64 `json:"storm_listen_drops"`
	RawStormListenDrops int64 `json:"raw_storm_listen_drops"`
	// Where a storm's time goes: how long the old server took to close
	// (its nodes see their outages over that time, and come back spread
	// over as much), how many connections the new one accepted (more
	// than N: nodes that had to try again) and from its first accept to
	// its last.
	StormCloseSeconds     float64 `json:"storm_close_seconds"`
	StormAccepts          int64   `json:"storm_accepts"`
	StormAcceptSeconds    float64 `json:"storm_accept_span_seconds"`
	RawStormCloseSeconds  float64 `json:"raw_storm_close_seconds"`
	RawStormAccepts       int64   `json:"raw_storm_accepts"`
	RawStormAcceptSeconds float64 `json:"raw_storm_accept_span_seconds"`

	// The same N idle MQTT clients on mosquitto, each sending a PINGREQ
	// every MosquittoKeepaliveMs (their keepalive, T rounded up to whole
	// seconds): mosquitto's RSS per client and CPU, from /proc.
	MosquittoKeepaliveMs   int64   `json:"mosquitto_keepalive_ms,omitempty"`
	MosquittoRSSPerNode    float64 `json:"mosquitto_rss_bytes_per_node,omitempty"`
	MosquittoCPUPercent    float64 `json:"mosquitto_cpu_percent,omitempty"`
	MosquittoCPUSeconds    float64 `json:"mosquitto_cpu_window_seconds,omitempty"`
	MosquittoIdleConnected int     `json:"mosquitto_clients,omitempty"`

	// Ratios to the raw TCP baseline at the same N.
	BytesPerNodeRatio        float64 `json:"bytes_per_node_ratio"`
	RSSPerNodeRatio          float64 `json:"rss_bytes_per_node_ratio"`
	IdleCPURatio             float64 `json:"idle_cpu_percent_ratio"`
	StormRatio               float64 `json:"storm_seconds_ratio"`
	MosquittoRSSPerNodeRatio float64 `json:"mosquitto_rss_bytes_per_node_ratio,omitempty"`
	MosquittoCPURatio        float64 `json:"mosquitto_cpu_percent_ratio,omitempty"`
}

// div is a / b, or 0 when either is not positive (a figure below noise,
// or not measured).
func div(a, b float64) float64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	return a / b
}

// JSON returns the result as indented JSON.
func (r *Result) JSON() ([]byte, error) { return json.MarshalIndent(r, "", "  ") }
