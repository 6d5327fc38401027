package web

import (
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// Header is the page's summary of the server.
type Header struct {
	Title string `json:"title"`
	// Name is the gateway's name (Config.Name), shown beside the title.
	Name      string    `json:"name,omitempty"`
	Time      time.Time `json:"time"`       // the server's clock, for relative times
	TimeoutMs float64   `json:"timeout_ms"` // the server's T
	// The table's rows by state: NodesTotal counts them all (the nodes
	// that have connected since the start, and the offline ones: the
	// rows of the table, Page.Total), NodesUp, NodesDown and NodesOffline
	// those in each state.
	NodesUp      int        `json:"nodes_up"`
	NodesDown    int        `json:"nodes_down"`
	NodesOffline int        `json:"nodes_offline"`
	NodesTotal   int        `json:"nodes_total"`
	Handshakes   Handshakes `json:"handshakes"`
	// MQTT is the gateway's broker connection (Config.Broker), if any.
	MQTT *Broker `json:"mqtt,omitempty"`
	// Version is the running build's version (Config.Version).
	Version string `json:"version,omitempty"`
	// Auth tells whether requests need credentials; actions are refused
	// without them.
	Auth bool `json:"auth"`
	// Actions lists the actions offered: "send" and "forget" (POST
	// /api/nodes/{id}/<action>), "approve" and "deny" (POST
	// /api/pending/{id}/<action>).
	Actions []string `json:"actions"`
	// Pending is the approval list (Config.Pending), its first
	// MaxPendingShown IDs; absent without approval mode.
	Pending *Pending `json:"pending,omitempty"`
}

// Broker is the state of the gateway's connection to its MQTT broker.
type Broker struct {
	Name      string    `json:"name"` // its URL, or "embedded ..."
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since,omitzero"` // when it came up or went down
	// Error is why it is not connected (the last attempt's error).
	Error string `json:"error,omitempty"`
}

// Handshakes counts the server's connections, and those it turned away by
// reason (see server.Stats).
type Handshakes struct {
	Accepted uint64            `json:"accepted"`
	OK       uint64            `json:"ok"`
	Rejected uint64            `json:"rejected"`  // the sum of ByReason
	ByReason map[string]uint64 `json:"by_reason"` // only reasons seen
	// UnknownID counts IDs not in server.Config.Expected: rejected by a
	// strict server, accepted (and not in Rejected) otherwise.
	UnknownID uint64 `json:"unknown_id"`
}

// Status is the page: GET /api/status, and the first message of the
// event stream. Nodes holds one page of the table (see Query).
type Status struct {
	Header
	Page
	Events []Event `json:"events"` // the most recent, oldest first
}

// Update is what changed on a browser's page since the last message of
// its event stream: the header, the page's counts, the rows that changed
// and the new events. IDs, when the page's rows are no longer the same
// or in the same order, lists them all: rows not listed leave the page.
type Update struct {
	Header
	Total   int      `json:"total"`
	Matched int      `json:"matched"`
	IDs     []string `json:"ids,omitempty"`
	Nodes   []Node   `json:"nodes"`
	Events  []Event  `json:"events"`
}

// Node is one row of the page: a node's state and counters, read from its
// link's Stats. Durations are in milliseconds; a null time or duration is
// not known yet.
type Node struct {
	ID string `json:"id"`
	Up bool   `json:"up"`
	// State is "up", "down", or "offline": not connected since the
	// server started (Config.Offline), when the counters are all zero
	// and Since is absent.
	State      string     `json:"state"`
	Since      time.Time  `json:"since,omitzero"` // last up/down change
	Remote     string     `json:"remote,omitempty"`
	Connects   int        `json:"connects"`
	Reconnects int        `json:"reconnects"`
	LastRecv   *time.Time `json:"last_received"` // last new message from the node

	MessagesIn  uint64 `json:"messages_in"`  // new messages from the node
	MessagesOut uint64 `json:"messages_out"` // first transmissions to it, qos or not
	Acked       uint64 `json:"qos_acked"`    // qos messages it acknowledged
	Repeats     uint64 `json:"qos_repeats"`  // qos retransmissions to it
	Duplicates  uint64 `json:"duplicates"`   // repeats from it, dropped
	Refused     uint64 `json:"refused"`      // its messages not acknowledged
	Pending     int    `json:"pending"`      // qos messages awaiting the node's ACK
	Queued      int    `json:"queued"`       // messages in memory, waiting to be sent or ACKed
	Restarts    uint64 `json:"restarts"`     // restarts of the node (a new message 00)

	// The node's durable queue (Config.Queue; null without it).
	Stored      *int    `json:"stored"`       // messages in the durable store
	StoredBytes *int64  `json:"stored_bytes"` // their payload bytes
	Dropped     *uint64 `json:"dropped"`      // messages for the node that the gateway dropped
	QueueFull   bool    `json:"queue_full"`   // new messages for the node are being dropped

	// The node's up spool (Config.Queue; null without it): its messages
	// acknowledged while the broker could not take them.
	Spooled      *int    `json:"spooled"`       // messages waiting to be published
	SpooledBytes *int64  `json:"spooled_bytes"` // their payload bytes
	SpoolRefused *uint64 `json:"spool_refused"` // its messages refused: the spool was full
	SpoolFull    bool    `json:"spool_full"`    // its messages are being refused

	AckRTTMs        *float64 `json:"ack_rtt_ms"`      // the last qos message's round trip
	PeerTimeoutMs   *float64 `json:"peer_timeout_ms"` // the node's T, from its keepalives
	TimeoutMismatch bool     `json:"timeout_mismatch"`

	BadLines BadLines `json:"bad_lines"`
	// Warnings counts what the gateway could not tell for sure about the
	// node (a mark on its row).
	Warnings Warnings `json:"warnings"`

	// LastMessage is the node's last message (Config.LastMessage): null
	// when none came since the gateway started.
	LastMessage *Message `json:"last_message"`
	// Topics are the node's MQTT topics (Config.Topics), if any.
	Topics *Topics        `json:"topics,omitempty"`
	Extra  map[string]any `json:"extra,omitempty"` // Config.Extra
}

// MaxMessageShown is how many bytes of a node's last message the page
// shows (Message.Text): the whole message is on its MQTT up topic.
const MaxMessageShown = 1024

// Message is a node's last message.
type Message struct {
	// Text is its first MaxMessageShown bytes (cut at a character), or
	// all of it.
	Text  string    `json:"text"`
	Bytes int       `json:"bytes"` // the whole message's length
	Time  time.Time `json:"time"`  // when the gateway took it
}

// ShownMessage returns the Message of payload taken at t: its Text is
// payload's first MaxMessageShown bytes, cut at a character, copied so
// that it does not hold payload's memory.
func ShownMessage(payload string, t time.Time) Message {
	text := payload
	if len(text) > MaxMessageShown {
		cut := MaxMessageShown
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = strings.Clone(text[:cut])
	}
	return Message{Text: text, Bytes: len(payload), Time: t}
}

// Topics are a node's MQTT topics: where its messages are published
// (Up), where messages for it are taken (Down), and its retained state
// (State).
type Topics struct {
	Up    string `json:"up"`
	Down  string `json:"down"`
	State string `json:"state"`
}

// Warnings counts the decisions the gateway could not make for sure about
// a node (docs/GATEWAY.md, "What is guaranteed").
type Warnings struct {
	// An original node's identical first message (id 00) on a new
	// connection, with no evidence of whether it was a repeat: taken for
	// a repeat within the repeat horizon (lost if the node had
	// restarted), or for a restart past it (a duplicate if not).
	AmbiguousRepeats  uint64 `json:"ambiguous_repeats"`
	AmbiguousRestarts uint64 `json:"ambiguous_restarts"`
	// The node's ID connected from another address than its last socket's
	// (since the server started): moves (a DHCP renewal, a reboot on
	// another network, or another device), returns to an address it had
	// left, claims from another address while it was up.
	AddrMoves      uint64 `json:"addr_moves"`
	AddrReturns    uint64 `json:"addr_returns"`
	AddrConcurrent uint64 `json:"addr_concurrent"`
	// TwoDevices: within server.Config.AddrMemory, the ID came back to an
	// address it had left, or was claimed from two at once, or a returning
	// node resumed its own sequence while another address had gone on
	// with the ID's: two devices may share it.
	TwoDevices bool `json:"two_devices"`
	// Messages acknowledged from another address while the node was away
	// (it may never have had them; sent again to it when two devices were
	// proven), and messages sent again under a new id after an address
	// change (duplicates if it was the same device and had them).
	ForeignAcked uint64 `json:"foreign_acked"`
	Redelivered  uint64 `json:"redelivered"`
	Renumbered   uint64 `json:"renumbered"`
	// ProbableLosses: the node closed its link right after acknowledging
	// a message, as an original client whose 20-line queue is full does
	// (the message is lost): pace it (docs/GATEWAY.md).
	ProbableLosses uint64 `json:"probable_losses"`
}

// Total is the number of warnings.
func (w Warnings) Total() uint64 {
	return w.AmbiguousRepeats + w.AmbiguousRestarts + w.AddrMoves + w.AddrReturns + w.AddrConcurrent + w.ForeignAcked + w.Renumbered + w.ProbableLosses
}

// Pending is the list of node IDs waiting for approval (Config.Pending).
type Pending struct {
	Total   int           `json:"total"`   // IDs waiting
	Dropped uint64        `json:"dropped"` // IDs dropped from the list because it was full
	Nodes   []PendingNode `json:"nodes"`   // oldest first
}

// PendingNode is a node ID waiting for approval.
type PendingNode struct {
	ID       string    `json:"id"`
	Remote   string    `json:"remote"` // the address of its last claim
	TLS      bool      `json:"tls"`
	First    time.Time `json:"first"` // its first claim
	Last     time.Time `json:"last"`  // its last claim
	Attempts int       `json:"attempts"`
}

// pending reads Config.Pending, its first max IDs (max < 0: all).
func (s *Server) pending(max int) *Pending {
	if s.cfg.Pending == nil {
		return nil
	}
	p := s.cfg.Pending()
	p.Total = len(p.Nodes)
	if p.Nodes == nil {
		p.Nodes = []PendingNode{}
	}
	if max >= 0 && len(p.Nodes) > max {
		p.Nodes = p.Nodes[:max]
	}
	return &p
}

// Queue is a node's durable queue in the gateway's store (Config.Queue).
type Queue struct {
	Stored  int    // messages waiting
	Bytes   int64  // their payload bytes
	Dropped uint64 // messages for the node dropped since the gateway started
	Full    bool   // the queue is full: new messages for the node are dropped

	// The node's up spool: messages from the node waiting for the broker.
	Spooled      int    // messages waiting
	SpooledBytes int64  // their payload bytes
	SpoolRefused uint64 // the node's messages refused (not acknowledged) because it was full
	SpoolFull    bool   // the node's messages are being refused
}

// BadLines counts a node's bad lines by reason.
type BadLines struct {
	TooLong   uint64 `json:"too_long"`
	Malformed uint64 `json:"malformed"`
	NotUTF8   uint64 `json:"not_utf8"`
}

// Event is an up, down or restart of a node.
type Event struct {
	Seq        uint64    `json:"seq"`  // increasing: tells events already seen
	Kind       string    `json:"kind"` // link.EventKind's String: "up", "down", "restart", "ambiguous-repeat", ...
	ID         string    `json:"id"`
	Time       time.Time `json:"time"`
	Reconnects int       `json:"reconnects"`
	Remote     string    `json:"remote,omitempty"` // up: the node's address
	Reason     string    `json:"reason,omitempty"` // down: why
	Detail     string    `json:"detail,omitempty"` // ambiguous-repeat, ambiguous-restart: id, evidence, age
}

func eventOf(ev link.Event) Event {
	e := Event{Kind: ev.Kind.String(), ID: ev.ID, Time: ev.Time, Reconnects: max(ev.Connects-1, 0), Remote: ev.Remote, Detail: ev.Detail}
	if ev.Err != nil {
		e.Reason = ev.Err.Error()
	}
	return e
}

func ms(d time.Duration) *float64 {
	v := float64(d) / float64(time.Millisecond)
	return &v
}

// node reads one row from l.
func (s *Server) node(l *link.Link, T time.Duration) Node { return s.nodeOf(l.Stats(), T) }

// nodeOf is the row of a link whose stats are st.
func (s *Server) nodeOf(st link.Stats, T time.Duration) Node {
	n := Node{
		ID:          st.ID,
		Up:          st.Up,
		State:       "down",
		Since:       st.Since,
		Remote:      st.Remote,
		Connects:    st.Connects,
		Reconnects:  max(st.Connects-1, 0),
		MessagesIn:  st.Received,
		MessagesOut: st.Sent,
		Acked:       st.Acked,
		Repeats:     st.Repeats,
		Duplicates:  st.Duplicates,
		Refused:     st.Refused,
		Pending:     st.Pending,
		Queued:      st.Queued,
		Restarts:    st.PeerRestarts,
		BadLines:    BadLines{TooLong: st.TooLong, Malformed: st.Malformed, NotUTF8: st.NotUTF8},
		Warnings: Warnings{AmbiguousRepeats: st.AmbiguousRepeats, AmbiguousRestarts: st.AmbiguousRestarts,
			ForeignAcked: st.ForeignAcked, Redelivered: st.Redelivered, Renumbered: st.Renumbered, TwoDevices: st.TwoDevices > 0,
			ProbableLosses: st.ProbableLosses},
	}
	if st.Up {
		n.State = "up"
	}
	if !st.LastReceived.IsZero() {
		t := st.LastReceived
		n.LastRecv = &t
	}
	if st.LastAckRTT > 0 {
		n.AckRTTMs = ms(st.LastAckRTT)
	}
	if pt := st.PeerTimeout(); pt > 0 {
		n.PeerTimeoutMs = ms(pt)
		n.TimeoutMismatch = Mismatch(pt, T, s.cfg.MismatchTolerance)
	}
	if srv := s.srv.Load(); srv != nil {
		if a, ok := srv.Addresses(st.ID); ok {
			n.Warnings.AddrMoves, n.Warnings.AddrReturns, n.Warnings.AddrConcurrent = a.Moves, a.Returns, a.Concurrent
			n.Warnings.TwoDevices = n.Warnings.TwoDevices || a.Alternating
		}
	}
	s.gatewayFields(&n)
	return n
}

// offlineNode is the row of node id, which has not connected since the
// server started.
func (s *Server) offlineNode(id string) Node {
	n := Node{ID: id, State: "offline"}
	s.gatewayFields(&n)
	return n
}

// gatewayFields fills n's durable queue and extra fields.
func (s *Server) gatewayFields(n *Node) {
	if s.cfg.Queue != nil {
		q := s.cfg.Queue(n.ID)
		n.Stored, n.StoredBytes, n.Dropped, n.QueueFull = &q.Stored, &q.Bytes, &q.Dropped, q.Full
		n.Spooled, n.SpooledBytes, n.SpoolRefused, n.SpoolFull = &q.Spooled, &q.SpooledBytes, &q.SpoolRefused, q.SpoolFull
	}
	if s.cfg.LastMessage != nil {
		if m, ok := s.cfg.LastMessage(n.ID); ok {
			n.LastMessage = &m
		}
	}
	if s.cfg.Topics != nil {
		n.Topics = s.cfg.Topics(n.ID)
	}
	if s.cfg.Extra != nil {
		n.Extra = s.cfg.Extra(n.ID)
	}
}

// offline returns the IDs of Config.Offline that have not connected to
// srv, sorted.
func (s *Server) offline(srv *server.Server) []string {
	if s.cfg.Offline == nil {
		return nil
	}
	var ids []string
	for _, id := range s.cfg.Offline() {
		if srv != nil {
			if _, err := srv.Lookup(id); err == nil {
				continue
			}
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// Mismatch reports whether a node's inferred T differs from the server's
// T by more than tolerance, a fraction of T: the classic cause of a
// flapping link (a node whose T is shorter declares outages the server
// never sees; one whose T is longer keeps sending keepalives too rarely).
// An unknown peer T (0) is no mismatch.
func Mismatch(peer, T time.Duration, tolerance float64) bool {
	if peer <= 0 || T <= 0 {
		return false
	}
	return math.Abs(float64(peer-T)) > tolerance*float64(T)
}

// header reads the page's header from tb.
func (s *Server) header(tb *table) Header {
	h := Header{Title: s.cfg.Title, Name: s.cfg.Name, Time: time.Now(), Handshakes: Handshakes{ByReason: map[string]uint64{}}, Actions: []string{}}
	if s.cfg.Broker != nil {
		h.MQTT = s.cfg.Broker()
	}
	h.Version = s.cfg.Version
	h.Auth = s.access.credentials()
	for _, a := range []struct {
		name string
		on   bool
	}{{"send", s.cfg.Send != nil}, {"forget", s.cfg.Forget != nil}, {"approve", s.cfg.Approve != nil}, {"deny", s.cfg.Deny != nil}} {
		if a.on {
			h.Actions = append(h.Actions, a.name)
		}
	}
	h.Pending = s.pending(MaxPendingShown)
	srv := tb.srv
	if srv == nil {
		return h
	}
	h.TimeoutMs = *ms(tb.T)
	h.NodesTotal = len(tb.entries)
	h.NodesUp = tb.up
	h.NodesDown = tb.links - tb.up
	h.NodesOffline = len(tb.entries) - tb.links
	st := srv.Stats()
	h.Handshakes.Accepted = st.Accepted
	h.Handshakes.OK = st.Handshakes
	for reason, n := range map[string]uint64{
		"timeout":      st.HandshakeTimeout,
		"closed":       st.HandshakeClosed,
		"bad_id":       st.BadID,
		"duplicate_id": st.DuplicateID,
		"per_ip_limit": st.PerIPLimit,
		"node_limit":   st.NodeLimit,
		"refused":      st.Refused,
		// Access control (docs/GATEWAY.md, "Access control").
		"tls_handshake": st.TLSFailed,
		"cert_invalid":  st.CertInvalid,
		"cert_revoked":  st.CertRevoked,
		"no_cert":       st.NoCert,
		"cert_mismatch": st.CertMismatch,
		"plain_refused": st.PlainRefused,
		"pin_refused":   st.PinRefused,
		"pending":       st.Pending,
	} {
		if n > 0 {
			h.Handshakes.ByReason[reason] = n
			h.Handshakes.Rejected += n
		}
	}
	h.Handshakes.UnknownID = st.UnknownID
	return h
}

// status reads q's page.
func (s *Server) status(q Query) Status {
	tb := s.readTable(s.srv.Load())
	return Status{Header: s.header(tb), Page: s.page(tb, q), Events: s.hub.recent()}
}
