// Package faultnet is a fault-injecting TCP proxy for end-to-end tests of
// the link. It sits between a node and the server on loopback and injects
// the outages that WiFi boards suffer: closes with FIN ([Proxy.Cut]) or RST
// ([Proxy.Reset]), silent loss in both directions ([Proxy.Blackhole]),
// refused connects ([Proxy.Refuse]), latency ([Proxy.SetDelay]),
// byte-at-a-time delivery ([Proxy.SetTrickle]) and per-chunk targeted faults
// ([Config.Filter]). [Proxy.Random] injects random faults for soak tests.
//
// Start a proxy with [Start] and give [Proxy.Addr] to the node. Every
// goroutine the proxy starts is owned by it, and [Proxy.Close] waits for all
// of them. Only loopback addresses are accepted.
//
// With [Config.Record] set, the proxy writes a JSONL transcript in the
// format of the legacy recordings (testdata/transcripts/README.md): one
// object per line, with "open", "close" and "eof" events and a "data" object
// per chunk (the bytes of one socket read), "t" in seconds since [Start].
package faultnet
