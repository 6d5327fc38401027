package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/tether-iot/tether/gateway"
)

// pageFacts is what TestStatusPage reads of the page in one evaluation:
// the table's column headers, and each row's cells by column header.
type pageFacts struct {
	ScrollWidth int                          `json:"scrollWidth"`
	ClientWidth int                          `json:"clientWidth"`
	Heads       []string                     `json:"heads"`
	HeadTitles  []string                     `json:"headTitles"`
	Rows        map[string]map[string]string `json:"rows"`   // ID -> header -> the cell's text
	Titles      map[string]map[string]string `json:"titles"` // ID -> header -> the titles within the cell
	Topics      map[string][]string          `json:"topics"` // ID -> the topic names its row offers to copy
	Imgs        int                          `json:"imgs"`   // img elements in the table: none (payloads are text)
	Pwned       bool                         `json:"pwned"`  // a payload's script ran
	NodesUp     string                       `json:"nodesUp"`
	Title       string                       `json:"title"`
	Name        string                       `json:"name"`
	Version     string                       `json:"version"`
	Updated     string                       `json:"updated"`
	Events      []string                     `json:"events"`
	// Cut lists the elements of the page that stick out of the window or
	// whose text does not fit in their box (the message previews, cut
	// on purpose with an ellipsis, excepted).
	Cut []string `json:"cut"`
}

const pageFactsJS = `(() => {
  const heads = Array.from(document.querySelectorAll("#nodes thead th")).map((th) => th.textContent.trim());
  const f = {
    scrollWidth: document.scrollingElement.scrollWidth,
    clientWidth: document.scrollingElement.clientWidth,
    heads,
    headTitles: Array.from(document.querySelectorAll("#nodes thead th")).map((th) => th.title),
    rows: {}, titles: {}, topics: {},
    imgs: document.querySelectorAll("#nodes img").length,
    pwned: window.pwned === 1,
    nodesUp: (document.getElementById("nodes-up") || {}).textContent || "",
    title: (document.getElementById("title") || {}).textContent || "",
    name: (document.getElementById("gw-name") || {}).textContent || "",
    version: (document.getElementById("version") || {}).textContent || "",
    updated: (document.getElementById("updated") || {}).textContent || "",
    events: Array.from(document.querySelectorAll("#events li")).map((li) => li.textContent),
    cut: [],
  };
  for (const tr of document.querySelectorAll("#nodes tbody tr")) {
    const id = tr.dataset.node;
    const row = {}, titles = {};
    Array.from(tr.cells).forEach((td, i) => {
      const h = heads[i] || ("#" + i);
      row[h] = td.textContent;
      titles[h] = [td, ...td.querySelectorAll("[title]")].map((e) => e.title || "").join("\n");
    });
    f.rows[id] = row;
    f.titles[id] = titles;
    f.topics[id] = Array.from(tr.querySelectorAll("[data-topic]")).map((e) => e.dataset.topic);
  }
  const W = document.documentElement.clientWidth;
  for (const e of document.querySelectorAll("header *, main *, footer *")) {
    if (e.closest("dialog") || e.offsetParent === null) continue;
    const r = e.getBoundingClientRect();
    if (r.width === 0) continue;
    const what = e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className ? "." + String(e.className).split(" ").join(".") : "") +
      " " + JSON.stringify((e.textContent || "").slice(0, 40));
    if (r.left < -0.5 || r.right > W + 0.5) f.cut.push(what + " spans " + Math.round(r.left) + ".." + Math.round(r.right) + " of " + W);
    const style = getComputedStyle(e);
    if (style.overflowX !== "visible" && e.scrollWidth > e.clientWidth + 1 && !e.classList.contains("preview") && e.tagName !== "INPUT" && e.tagName !== "SELECT")
      f.cut.push(what + " text " + e.scrollWidth + " px in " + e.clientWidth + " px");
  }
  return f;
})()`

// cdpDo runs a DevTools command.
func cdpDo[P any](cmd cdp.Command[P, cdp.Empty], p P) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, cmd, p)
		return chromedp.Void{}, err
	}
}

// TestStatusPage (issue 12, the status page) loads a real gateway's page
// as a new user would, in a browser whose clock is not UTC: at 1280x900
// no horizontal scroll and nothing cut; a column each for the node's
// address, its last message (escaped, shortened, whole on hover) and its
// topics (copyable); the nodes counted as the rows listed; "QoS";
// queued messages said plainly; the gateway's name apart from the title;
// its version; times in 24-hour UTC as in the logs; an ID with a
// look-alike letter shown unambiguously. Then at 390x844 (a phone):
// nothing cut. It saves a screenshot at each size in the test's
// artifact directory (go test -artifacts keeps it), and in
// $TETHER_SCREENSHOT_DIR if set.
func TestStatusPage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const lookalike = "n\u043ede" // Cyrillic о
	msgs := make(chan string, 16)
	cfg := webOn(gwConfig(t, ""), "127.0.0.1:0")
	cfg.Name = "greenhouse-gw"
	cfg.Web.TokenFile = tokenFile(t) // actions: send, forget: their column too
	cfg.Nodes.Expect = []string{"greenhouse-1", "n1", "sensor-kitchen-0042", lookalike, "offline-7", "full-9"}
	cfg.Queue.MaxMessages = 40
	cfg.OnMessage = func(node, payload string) { msgs <- node }
	g := startGateway(t, cfg)
	if err := g.Send(ctx, "offline-7", "for later"); err != nil {
		t.Fatal(err)
	}
	for i := range 43 { // a full queue: a wide Queued cell
		if err := g.Send(ctx, "full-9", fmt.Sprint("message ", i)); err != nil && i < 40 {
			t.Fatal(err)
		}
	}
	addr := g.Addr().String()
	gh := dialNode(t, ctx, addr, "greenhouse-1")
	n1 := dialNode(t, ctx, addr, "n1")
	dialNode(t, ctx, addr, "sensor-kitchen-0042")
	dialNode(t, ctx, addr, lookalike)
	long := `<img src=x onerror="window.pwned=1"> ` + "\u202e" + ` reversed? ` + strings.Repeat("0123456789", 30) + " THE END"
	if err := n1.Write(ctx, long); err != nil {
		t.Fatal(err)
	}
	if err := gh.Write(ctx, `{"temp": 21.5, "hum": 40}`); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case <-msgs:
		case <-ctx.Done():
			t.Fatal("the messages were not taken")
		}
	}
	for _, id := range []string{"greenhouse-1", "n1", "sensor-kitchen-0042", lookalike} {
		if err := g.Server().Wait(ctx, id); err != nil {
			t.Fatal(err)
		}
	}

	bctx := browser(t)
	wctx, wcancel := context.WithDeadline(bctx, time.Now().Add(80*time.Second))
	defer wcancel()
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(wctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	facts := func() pageFacts {
		t.Helper()
		s, err := chromedp.Run(wctx, chromedp.Evaluate[string](`JSON.stringify(`+pageFactsJS+`)`))
		if err != nil {
			t.Fatal(err)
		}
		var f pageFacts
		if err := json.Unmarshal([]byte(s), &f); err != nil {
			t.Fatal(err)
		}
		return f
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(wctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		for _, dir := range []string{t.ArtifactDir(), os.Getenv("TETHER_SCREENSHOT_DIR")} {
			if dir == "" {
				continue
			}
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot: %s (%d bytes)", path, len(png))
		}
	}

	run("load the page at 1280x900 in Auckland's time zone",
		chromedp.EmulateViewport(1280, 900),
		cdpDo(emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Pacific/Auckland"}),
		cdpDo(network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": "Bearer " + webToken}}),
		chromedp.Navigate("http://"+g.WebAddr().String()+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#live[data-state="live"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-node="n1"][data-state="up"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-node="offline-7"]`)),
	)
	// Let the relative times and the first refresh settle.
	if _, err := chromedp.Run(wctx, chromedp.Poll[bool](`document.querySelectorAll("#nodes tbody tr").length === 6`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("6 rows: %v", err)
	}
	f := facts()
	shot("status-page-1280.png")

	if f.ScrollWidth > f.ClientWidth {
		t.Errorf("1280x900: the page scrolls sideways: %d px wide in a %d px window", f.ScrollWidth, f.ClientWidth)
	}
	reportCut(t, "1280x900", f.Cut)
	for _, h := range []string{"Address", "Last message", "Topics", "QoS repeats"} {
		if !slices.Contains(f.Heads, h) {
			t.Errorf("no column %q: columns %q", h, f.Heads)
		}
	}
	for i, h := range f.Heads {
		if strings.Contains(h, "Qos") || strings.Contains(f.HeadTitles[i], "Qos") {
			t.Errorf("column %q says Qos: write QoS", h)
		}
	}
	n1row := f.Rows["n1"]
	if a := n1row["Address"]; !strings.Contains(a, "127.0.0.1:") {
		t.Errorf("n1's address shows %q, want its address 127.0.0.1:port", a)
	}
	msg := n1row["Last message"]
	if !strings.Contains(msg, `<img src=x onerror="window.pwned=1">`) {
		t.Errorf("n1's last message shows %q, want its text as written", msg)
	}
	if strings.Contains(msg, "\u202e") || !strings.Contains(msg, `\u202e`) {
		t.Errorf("n1's last message shows %q: want the bidi override escaped (\\u202e)", msg)
	}
	if !strings.Contains(f.Titles["n1"]["Last message"], "0123456789 THE END") {
		t.Errorf("n1's last message: the whole of it is not on hover: titles %q", f.Titles["n1"]["Last message"])
	}
	if got := f.Rows["greenhouse-1"]["Last message"]; !strings.Contains(got, `{"temp": 21.5, "hum": 40}`) {
		t.Errorf("greenhouse-1's last message shows %q", got)
	}
	if f.Imgs != 0 || f.Pwned {
		t.Errorf("a payload became HTML: %d img elements, script ran %v", f.Imgs, f.Pwned)
	}
	for _, topic := range []string{"tether/n1/up", "tether/n1/down", "tether/n1/state"} {
		if !slices.Contains(f.Topics["n1"], topic) {
			t.Errorf("n1's topics offer %q to copy, want %s among them", f.Topics["n1"], topic)
		}
	}
	if id := f.Rows[lookalike]["Node"]; !strings.Contains(id, `n\u043ede`) {
		t.Errorf("the look-alike ID %q shows as %q: want its escaped form n\\u043ede beside it", lookalike, id)
	}
	if f.NodesUp != "4 of 6" {
		t.Errorf("nodes up shows %q with 6 rows (4 up, 2 offline), want 4 of 6", f.NodesUp)
	}
	if q := f.Rows["offline-7"]["Queued"]; q != "1 stored" {
		t.Errorf("offline-7's queue shows %q, want 1 stored", q)
	}
	if q := f.Rows["full-9"]["Queued"]; q != "40 stored full" {
		t.Errorf("full-9's queue shows %q, want 40 stored full", q)
	}
	if f.Name != "greenhouse-gw" || strings.Contains(f.Title, "greenhouse-gw") {
		t.Errorf("title %q, gateway name %q: want the name (greenhouse-gw) apart from the title", f.Title, f.Name)
	}
	if v := gateway.Version(); !strings.Contains(f.Version, v) {
		t.Errorf("the page shows the version %q, want the gateway's, %q", f.Version, v)
	}
	checkUTC(t, "updated", f.Updated, `^(\d\d):(\d\d):(\d\d) UTC$`)
	if len(f.Events) == 0 {
		t.Error("no event listed")
	} else {
		checkUTC(t, "event", f.Events[0], `^(\d\d):(\d\d):(\d\d) `)
	}
	since := f.Titles["n1"]["State"] + f.Titles["n1"]["Since"]
	if !regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC`).MatchString(since) {
		t.Errorf("n1's since: titles %q, want a 24-hour UTC time (2006-01-02 15:04:05 UTC)", since)
	}

	run("a phone: 390x844", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	if _, err := chromedp.Run(wctx, chromedp.Poll[bool](`document.documentElement.clientWidth === 390`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("viewport: %v", err)
	}
	f = facts()
	shot("status-page-390.png")
	if f.ScrollWidth > f.ClientWidth {
		t.Errorf("390x844: the page scrolls sideways: %d px wide in a %d px window", f.ScrollWidth, f.ClientWidth)
	}
	reportCut(t, "390x844", f.Cut)
}

// reportCut fails the test with the first elements cut, and their count.
func reportCut(t *testing.T, size string, cut []string) {
	t.Helper()
	for i, c := range cut {
		if i == 8 {
			t.Errorf("%s: ... %d elements cut in all", size, len(cut))
			break
		}
		t.Errorf("%s: cut: %s", size, c)
	}
}

// checkUTC checks that text starts with a 24-hour time (re's first three
// groups) within 10 minutes of the UTC clock.
func checkUTC(t *testing.T, what, text, re string) {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(text)
	if m == nil {
		t.Errorf("%s time %q: want a 24-hour UTC time (%s)", what, text, re)
		return
	}
	var h, mi, s int
	fmt.Sscan(m[1], &h)
	fmt.Sscan(m[2], &mi)
	fmt.Sscan(m[3], &s)
	now := time.Now().UTC()
	shown := time.Date(now.Year(), now.Month(), now.Day(), h, mi, s, 0, time.UTC)
	d := now.Sub(shown)
	for d > 12*time.Hour {
		d -= 24 * time.Hour
	}
	for d < -12*time.Hour {
		d += 24 * time.Hour
	}
	if d > 10*time.Minute || d < -10*time.Minute {
		t.Errorf("%s time %q is %v from the UTC clock: not UTC", what, text, d.Round(time.Minute))
	}
}
