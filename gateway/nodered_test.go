package gateway_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/tether-iot/tether/gateway"
)

// TestNodeREDFlow: the example flow of docs/GATEWAY.md ("Node-RED and
// plain MQTT") is a valid Node-RED export (every wire goes to a node of
// the flow, the MQTT nodes use its broker node, QoS 1 out, auto-detect
// in), and its two function nodes, run by Node.js, escape and unescape
// node IDs exactly as the gateway does (EscapeID, UnescapeID).
func TestNodeREDFlow(t *testing.T) {
	doc, err := os.ReadFile("../docs/GATEWAY.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- BEGIN node-red flow[^>]*-->\\s*```json\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/GATEWAY.md: no node-red flow")
	}
	var flow []map[string]any
	if err := json.Unmarshal(m[1], &flow); err != nil {
		t.Fatalf("the flow is not JSON: %v", err)
	}
	byID := map[string]map[string]any{}
	for _, n := range flow {
		byID[n["id"].(string)] = n
	}
	funcs := map[string]string{}
	for _, n := range flow {
		for _, out := range asList(n["wires"]) {
			for _, to := range asList(out) {
				if byID[to.(string)] == nil {
					t.Errorf("node %s wires to %v, not in the flow", n["id"], to)
				}
			}
		}
		switch n["type"] {
		case "mqtt in":
			if n["broker"] != "tether_broker" || n["datatype"] != "auto-detect" || !strings.HasPrefix(n["topic"].(string), "tether/+/") {
				t.Errorf("mqtt in %v", n)
			}
		case "mqtt out":
			if n["broker"] != "tether_broker" || n["qos"] != "1" || n["retain"] != "false" {
				t.Errorf("mqtt out %v", n)
			}
		case "function":
			funcs[n["name"].(string)] = n["func"].(string)
		}
		if z, ok := n["z"]; ok && byID[z.(string)]["type"] != "tab" {
			t.Errorf("node %s is on %v, not the flow's tab", n["id"], z)
		}
	}
	unescape, escape := funcs["node ID from the topic"], funcs["topic of msg.node"]
	if unescape == "" || escape == "" {
		t.Fatalf("function nodes: %v", funcs)
	}

	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("Node.js not found: install nodejs (apt-get install nodejs; ./scripts/test does)")
	}
	ids := []string{"kitchen", "a/b+#$%", "%41", "sensor 1", "héllo/ü", "$x", "100%", "a%2F"}
	topics := gateway.Topics{Prefix: "tether"}
	// Each function node runs as Node-RED would: a function of msg.
	script := "const unescape = (msg) => {" + unescape + "};\nconst escape = (msg) => {" + escape + "};\n" +
		"const out = [];\nfor (const [up, id] of JSON.parse(process.argv[1])) {\n" +
		"  out.push([unescape({topic: up}).node, escape({node: id, payload: 'x'}).topic]);\n}\n" +
		"console.log(JSON.stringify(out));\n"
	var in [][2]string
	for _, id := range ids {
		in = append(in, [2]string{topics.Up(id), id})
	}
	arg, _ := json.Marshal(in)
	out, err := exec.Command(node, "-e", script, string(arg)).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var got [][2]string
	if err := json.Unmarshal(out, &got); err != nil || len(got) != len(ids) {
		t.Fatalf("node printed %s (%v)", out, err)
	}
	for i, id := range ids {
		if got[i][0] != id {
			t.Errorf("ID from %s: flow %q, want %q", topics.Up(id), got[i][0], id)
		}
		if got[i][1] != topics.Down(id) {
			t.Errorf("topic of %q: flow %q, gateway %q", id, got[i][1], topics.Down(id))
		}
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}
