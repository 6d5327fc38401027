// Package netns holds Tether's end-to-end test over real outages: the
// server and its nodes live in network namespaces of their own, joined by
// a veth pair, and the test takes the link down the way WiFi fails. It
// needs root and iproute2; see the test's doc.
package netns
