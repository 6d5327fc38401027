// Package demo holds what the demos of "tether demo" share: a Printer
// that narrates what happens, Sim, which runs a server and simulated
// nodes in one process with a fault proxy in front of each node, and
// Injector, which strikes the nodes with outages of every kind. The demo
// applications themselves live in the packages below (mainapp, remote,
// qos), each with a server half and a node half that also run in
// separate processes.
package demo
