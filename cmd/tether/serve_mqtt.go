package main

import (
	"context"
	"flag"

	"github.com/tether-iot/tether/gateway"
)

// mqttFlags are serve's flags for the embedded broker.
type mqttFlags struct {
	passwordFile string
	insecure     bool
	maxPacket    int
}

func (m *mqttFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.passwordFile, "mqtt-password-file", "", "the embedded broker's users: a mosquitto_passwd `file` (tether mqtt passwd FILE USER makes one); required when --mqtt-listen is not loopback (mqtt.embedded.password_file)")
	fs.BoolVar(&m.insecure, "mqtt-insecure", false, "let the embedded broker accept clients without a password on a listener beyond loopback: anyone on the network may command the nodes (mqtt.embedded.insecure)")
	fs.IntVar(&m.maxPacket, "mqtt-max-packet", 0, "largest MQTT packet a client may send the embedded broker, in `bytes`; 0: 16 x --max-line (mqtt.embedded.max_packet)")
}

// apply sets what flag name gave.
func (m *mqttFlags) apply(name string, cfg *gateway.Config) {
	switch name {
	case "mqtt-password-file":
		cfg.MQTT.Embedded.PasswordFile = m.passwordFile
	case "mqtt-insecure":
		cfg.MQTT.Embedded.Insecure = m.insecure
	case "mqtt-max-packet":
		cfg.MQTT.Embedded.MaxPacket = m.maxPacket
	}
}

const mqttUsage = `usage: tether mqtt passwd FILE USER

Adds USER to the embedded broker's password file FILE (made if missing),
or changes its password: the password is read from the first line of
standard input, or asked twice on a terminal (not echoed). The hash is mosquitto 2's
($7$, PBKDF2-SHA512), so the file also works with mosquitto, and
mosquitto_passwd can make it. Give the file to tether serve with
--mqtt-password-file or mqtt.embedded.password_file, and each user's
rights with mqtt.embedded.acl (docs/GATEWAY.md). The status page reads it
too (--web-users, web.users_file): one file for both.
`

func runMQTT(_ context.Context, e *env, args []string) error {
	return runPasswd(e, args, "mqtt passwd", mqttUsage, gateway.SetMQTTPassword)
}
