package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/tether-iot/tether/gateway"
	"github.com/tether-iot/tether/internal/pki"
)

const caUsage = `Usage: tether ca <init|issue|list> [flags]

The gateway's small certificate authority, kept in <data>/ca (the key
file 0600). It binds each Go node to its ID: a node's certificate names
its ID, and the gateway (tether serve --tls) refuses a claim of that ID
without it. Original MicroPython nodes keep plain TCP.

  tether ca init  [--host gw.lan,192.168.1.10]
      make the CA and the gateway's certificate (issue and serve --tls
      do it on first use too)
  tether ca issue --id pump1 [--out pump1/] [--days 825]
      issue node pump1's credentials: pump1/node.pem, pump1/node-key.pem,
      pump1/ca.pem, for tether node --cert --key --ca (or client.LoadTLS);
      from then on a gateway run with --tls refuses pump1 over plain TCP
  tether ca list
      the node certificates issued: serial, ID, expiry

Revoke a certificate by its serial in the gateway's config
(tls.revoked_serials, or serve --tls-revoke), then restart the gateway.

Flags:
`

func runCA(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("ca", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), caUsage)
		fs.PrintDefaults()
	}
	data := fs.String("data", "", "the gateway's data `dir`ectory; default "+gateway.DefaultDataDir())
	id := fs.String("id", "", "issue: the node's `ID`")
	out := fs.String("out", "", "issue: `dir`ectory for the node's files; default ./<ID>")
	days := fs.Int("days", int(pki.NodeValidity/(24*time.Hour)), "issue: the certificate's validity in `days`")
	hosts := fs.String("host", "", "init: extra DNS `names` or addresses in the gateway's certificate, comma-separated (nodes check the name tether-gateway)")
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if err := parseFlags(e, fs, args); err != nil {
			return err
		}
		return errors.New("tether ca: say init, issue or list (tether help ca)")
	}
	verb := args[0]
	if err := parseFlags(e, fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("tether ca %s takes no arguments (got %q)", verb, fs.Arg(0))
	}
	if *data == "" {
		*data = gateway.DefaultDataDir()
	}
	dir := pki.Dir(*data)
	switch verb {
	case "init":
		ca, created, err := pki.Ensure(dir)
		if err != nil {
			return err
		}
		cert, _, err := ca.GatewayCredentials(splitList(*hosts))
		if err != nil {
			return err
		}
		if created {
			fmt.Fprintf(e.stdout, "CA made in %s\n", dir)
		} else {
			fmt.Fprintf(e.stdout, "CA already in %s\n", dir)
		}
		fmt.Fprintf(e.stdout, "gateway certificate %s\nnext: tether serve --tls, and tether ca issue --id ID for each Go node\n", cert)
		return nil
	case "issue":
		if *id == "" {
			return errors.New("tether ca issue: give the node's ID, e.g. --id pump1")
		}
		if *days <= 0 {
			return fmt.Errorf("--days %d: give a positive number of days", *days)
		}
		ca, created, err := pki.Ensure(dir)
		if err != nil {
			return err
		}
		if created {
			fmt.Fprintf(e.stdout, "CA made in %s\n", dir)
		}
		is, err := ca.IssueNode(*id, time.Duration(*days)*24*time.Hour)
		if err != nil {
			return err
		}
		if *out == "" {
			*out = filepath.Clean(*id)
		}
		cert, key, caFile, err := ca.WriteNode(*out, is)
		if err != nil {
			return fmt.Errorf("%w (issued serial %s was kept in %s: revoke it if you issue again)", err, is.Serial, filepath.Join(dir, pki.IssuedDir))
		}
		fmt.Fprintf(e.stdout, "node %q: serial %s, expires %s\n  cert %s\n  key  %s\n  ca   %s\n",
			*id, is.Serial, is.NotAfter.UTC().Format(time.DateOnly), cert, key, caFile)
		fmt.Fprintf(e.stdout, "run it: tether node --id %s --server GATEWAY:8123 --cert %s --key %s --ca %s\n", *id, cert, key, caFile)
		return nil
	case "list":
		ca, err := pki.Open(dir)
		if err != nil {
			return err
		}
		certs, err := ca.List()
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%-34s %-20s %s\n", "SERIAL", "NODE", "EXPIRES")
		now := time.Now()
		for _, c := range certs {
			exp := c.NotAfter.UTC().Format(time.DateOnly)
			if now.After(c.NotAfter) {
				exp += " (expired)"
			}
			fmt.Fprintf(e.stdout, "%-34s %-20s %s\n", pki.Serial(c), pki.NodeID(c), exp)
		}
		return nil
	}
	return fmt.Errorf("tether ca: unknown %q: say init, issue or list (tether help ca)", verb)
}
