// Package bench runs Tether's performance scenarios for "tether bench":
// latency and throughput of one node against a raw TCP line echo and an
// MQTT QoS 1 broker, idle cost of many nodes, and a reconnect storm after
// a server restart, at several numbers of nodes.
//
// The server side (a Tether server, a raw echo server and an embedded
// mochi-mqtt broker) always runs in the calling process. The simulated
// nodes run in a Farm: in the same process (NewLocalFarm) or in a child
// process (StartProcFarm, served by ServeFarm), so that the server's
// memory and CPU figures are its own. Run is the entry point; it returns
// a Result that renders as Markdown and JSON.
package bench
