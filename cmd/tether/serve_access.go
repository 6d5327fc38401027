package main

import (
	"flag"
	"strings"

	"github.com/tether-iot/tether/gateway"
)

// accessFlags are tether serve's access-control flags (docs/GATEWAY.md,
// "Access control"); they override the config file's tls: and nodes:
// settings.
type accessFlags struct {
	tls, tlsRequired          bool
	tlsCert, tlsKey, tlsCA    string
	tlsRequiredFor, revokeIDs string
	revokeSerials             string
	allowFrom                 string
	approval                  bool
}

func addAccessFlags(fs *flag.FlagSet) *accessFlags {
	a := &accessFlags{}
	fs.BoolVar(&a.tls, "tls", false, "serve nodes that run Go over TLS too, on the same port (tls.enabled); the gateway's CA in <data>/ca signs their certificates (tether ca issue)")
	fs.BoolVar(&a.tlsRequired, "tls-required", false, "refuse every plain-TCP node: only TLS nodes with a certificate (tls.required)")
	fs.StringVar(&a.tlsRequiredFor, "tls-required-for", "", "node `IDs` (comma-separated) that must connect over TLS (tls.required_for); IDs the CA issued a certificate for are TLS-only anyway")
	fs.StringVar(&a.tlsCert, "tls-cert", "", "the gateway's certificate `file` (PEM) for TLS nodes; default <data>/ca/gateway.pem, issued by its own CA")
	fs.StringVar(&a.tlsKey, "tls-key", "", "its key `file` (PEM)")
	fs.StringVar(&a.tlsCA, "tls-ca", "", "CA certificate `file` that signs the nodes' certificates; default the gateway's own, <data>/ca/ca.pem")
	fs.StringVar(&a.revokeSerials, "tls-revoke", "", "revoked node certificates, by `serial`s (hex, comma-separated: tether ca list)")
	fs.StringVar(&a.revokeIDs, "revoke-ids", "", "node `IDs` refused whatever they present (comma-separated)")
	fs.StringVar(&a.allowFrom, "allow-from", "", "`networks` (CIDR) or addresses that may claim a node ID, comma-separated (nodes.allow_from); per-ID pins in the config file (nodes.pin)")
	fs.BoolVar(&a.approval, "approval", false, "hold node IDs never seen before until approved: tether nodes pending / approve ID (nodes.approval)")
	return a
}

// apply sets the flags given on the command line in cfg.
func (a *accessFlags) apply(fs *flag.FlagSet, cfg *gateway.Config) {
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "tls":
			cfg.TLS.Enabled = a.tls
		case "tls-required":
			cfg.TLS.Required = a.tlsRequired
			cfg.TLS.Enabled = cfg.TLS.Enabled || a.tlsRequired
		case "tls-required-for":
			cfg.TLS.RequiredFor = splitList(a.tlsRequiredFor)
			cfg.TLS.Enabled = cfg.TLS.Enabled || len(cfg.TLS.RequiredFor) > 0
		case "tls-cert":
			cfg.TLS.Cert = a.tlsCert
		case "tls-key":
			cfg.TLS.Key = a.tlsKey
		case "tls-ca":
			cfg.TLS.CA = a.tlsCA
		case "tls-revoke":
			cfg.TLS.RevokedSerials = splitList(a.revokeSerials)
		case "revoke-ids":
			cfg.TLS.RevokedIDs = splitList(a.revokeIDs)
		case "allow-from":
			cfg.Nodes.AllowFrom = splitList(a.allowFrom)
		case "approval":
			cfg.Nodes.Approval = a.approval
		}
	})
}

// splitList splits a comma-separated flag, dropping empty items.
func splitList(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
