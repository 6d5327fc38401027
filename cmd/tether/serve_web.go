package main

import (
	"flag"
	"strings"

	"github.com/tether-iot/tether/gateway"
)

// webFlags are serve's flags of the status page's access control (see
// gateway.WebConfig and docs/GATEWAY.md, "Access control").
type webFlags struct {
	tokenFile string
	usersFile string
	insecure  bool
	hosts     string
}

func (w *webFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&w.tokenFile, "web-token-file", "", "`file` whose first line is the token every request to the status page, API and metrics must carry (bearer, or as the Basic password) (web.token_file)")
	fs.StringVar(&w.usersFile, "web-users", "", "password `file` of the status page's users, user:hash lines from tether web passwd FILE USER (bcrypt) or tether mqtt passwd (mosquitto's) (web.users_file)")
	fs.BoolVar(&w.insecure, "web-insecure", false, "let --web listen beyond loopback without credentials: anyone who reaches it reads the page (web.insecure)")
	fs.StringVar(&w.hosts, "web-hosts", "", "host `names`, comma-separated, besides localhost, that may reach a loopback --web (a reverse proxy's) (web.hosts)")
}

// apply sets the flag called name, if it is one of these, in cfg.
func (w *webFlags) apply(name string, cfg *gateway.Config) {
	switch name {
	case "web-token-file":
		cfg.Web.TokenFile = w.tokenFile
	case "web-users":
		cfg.Web.UsersFile = w.usersFile
	case "web-insecure":
		cfg.Web.Insecure = w.insecure
	case "web-hosts":
		cfg.Web.Hosts = nil
		for h := range strings.SplitSeq(w.hosts, ",") {
			if h = strings.TrimSpace(h); h != "" {
				cfg.Web.Hosts = append(cfg.Web.Hosts, h)
			}
		}
	}
}
