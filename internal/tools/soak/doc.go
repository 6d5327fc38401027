// Package soak is the engine of "tether soak": simulated nodes exchange
// qos messages with a server, both ways, with and without wait, while a
// fault proxy per node injects outages of every kind (FIN, RST, silent
// loss, refused reconnects). At the end each side tells the other how many
// messages it sent, and the Report counts what was lost, duplicated or out
// of order, the outages survived and the time each took to recover.
//
// Run is the entry point; Start and Soak.Stop let a caller make its own
// outages (network namespaces, say), and Serve runs the server side for
// nodes on another host.
package soak
