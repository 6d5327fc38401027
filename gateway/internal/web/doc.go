// Package web serves a Tether server's status page: a live table of the
// nodes (up or down and since when, their address, last message
// (Config.LastMessage) and MQTT topics (Config.Topics), reconnects,
// messages in and out, qos
// repeats, duplicates, queued messages, with the gateway's durable queue
// and the messages it dropped when it was full, and its up spool
// (Config.Queue), ACK round
// trip, restarts, and the
// node's T as inferred from its keepalive rhythm, flagged when it differs
// from the server's), the state of the gateway's MQTT broker connection
// in the header (Config.Broker), a JSON API for the same data, the Prometheus
// metrics of package metrics, and a server-sent event stream that pushes
// every up/down change to the browsers as it happens.
//
// The page is one embedded HTML file with its script and style: no build
// step, no network access needed. It fits a 1280-pixel window and turns
// each row into a card under 700 pixels (a phone); its times are in UTC;
// text from the network goes in as text, with invisible and control
// characters escaped. Routes, relative to where Handler is
// mounted:
//
//	GET /                the page
//	GET /api/status      Status: the header and one page of nodes
//	GET /api/nodes       Page: one page of nodes
//	GET /api/nodes/{id}  Node, or 404
//	GET /events          text/event-stream: "status" (a Status, first),
//	                     then "update" (an Update) on every change
//	GET /metrics         Prometheus metrics
//	POST /api/nodes/{id}/send    an action (Config.Send): {"payload": "..."}
//	POST /api/nodes/{id}/forget  an action (Config.Forget): {}
//	GET /api/pending             Pending (Config.Pending: approval mode)
//	POST /api/pending/{id}/approve, /deny  actions (Config.Approve, Deny): {}
//
// The table is paged on the server: /api/status, /api/nodes and /events
// take the parameters of Query (q, state, offset, limit), and each event
// stream carries the changes of its own page only, so that a fleet of
// 10,000 nodes costs a browser a page of rows, not the whole table.
//
// Access (see access.go): requests that reach a loopback address must
// name localhost or a loopback address in their Host header (or one of
// Config.Hosts); with Config.Token or Config.Users every request needs
// them; Serve refuses a listener beyond loopback without them unless
// Config.Insecure; actions need credentials and come from the page's own
// origin (or from a client that is not a browser), with a JSON body.
//
// The server's up/down events reach the page through Event, which the
// gateway wires into server.Config.OnEvent (Hook does it, together with the
// metrics' round-trip hook):
//
//	ws, _ := web.New(web.Config{Addr: "127.0.0.1:8080"})
//	defer ws.Close()
//	scfg := server.Config{Timeout: 2 * time.Second}
//	ws.Hook(&scfg)
//	srv, _ := server.New(scfg)
//	ws.SetServer(srv)
//	go ws.ListenAndServe(ctx)
//
// Counters that change without an event (messages, repeats, ...) are
// refreshed every Config.Refresh (1 s) while a browser watches, and only
// the rows that changed are sent.
package web
