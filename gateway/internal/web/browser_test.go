package web_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/tether-iot/tether/gateway/internal/web"
	hbrowser "github.com/tether-iot/tether/internal/harness/browser"
)

// browser starts a headless Chromium (internal/harness/browser).
func browser(t testing.TB) context.Context { return hbrowser.Start(t, 1500, 700) }

// TestPageInBrowser loads the page in a real headless Chromium, sees the
// nodes (one offline: not connected since the start) and the T mismatch
// flag, and the MQTT broker not connected, takes a node down and sees
// its row change without a reload, sees the broker connect; unfolds a
// row to see its whole last message and its topics' names, copies a
// topic; then saves a screenshot.
func TestPageInBrowser(t *testing.T) {
	bctx := browser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mqttUp atomic.Bool
	e := start(t, 300*time.Millisecond, web.Config{
		Title: "Tether test gateway",
		Queue: func(id string) web.Queue {
			if id == "beta" {
				return web.Queue{Stored: 1000, Bytes: 12000, Dropped: 37, Full: true, Spooled: 3, SpooledBytes: 30}
			}
			return web.Queue{Stored: len(id) - 4, Bytes: 10}
		},
		Extra: func(id string) map[string]any { return map[string]any{"topic": "greenhouse/" + id} },
		LastMessage: func(id string) (web.Message, bool) {
			if id != "alpha" {
				return web.Message{}, false
			}
			return web.ShownMessage("temp=21.5\tline two\n"+strings.Repeat("x", web.MaxMessageShown), time.Now()), true
		},
		Topics: func(id string) *web.Topics {
			return &web.Topics{Up: "tether/" + id + "/up", Down: "tether/" + id + "/down", State: "tether/" + id + "/state"}
		},
		Offline: func() []string { return []string{"delta", "alpha"} },
		Broker: func() *web.Broker {
			if mqttUp.Load() {
				return &web.Broker{Name: "mqtt://broker.lan:1883", Connected: true, Since: time.Now()}
			}
			return &web.Broker{Name: "mqtt://broker.lan:1883", Since: time.Now(), Error: "connection refused"}
		},
	})
	alpha := e.dial(t, ctx, "alpha")
	beta := e.dial(t, ctx, "beta")
	e.dialMismatched(t, ctx, "gamma")
	e.exchange(t, ctx, alpha, 3, 2)
	e.exchange(t, ctx, beta, 1, 1)

	// Each wait below is bounded by the test's deadline.
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		wctx, wcancel := context.WithDeadline(bctx, mustDeadline(ctx))
		defer wcancel()
		if err := chromedp.Do(wctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		wctx, wcancel := context.WithDeadline(bctx, mustDeadline(ctx))
		defer wcancel()
		s, err := chromedp.Run(wctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}

	run("load the page and see the nodes up",
		chromedp.Navigate(e.url+"/"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-node="alpha"][data-state="up"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-node="beta"][data-state="up"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-node="gamma"][data-state="up"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#live[data-state="live"]`)),
	)
	if got := text("#nodes-up"); got != "3 of 4" {
		t.Errorf("nodes up shows %q, want 3 of 4", got)
	}
	if got := text("#nodes-other"); got != "1 offline" {
		t.Errorf("nodes up shows %q beside, want 1 offline", got)
	}
	run("see delta offline", chromedp.WaitVisible(chromedp.CSS(`tr[data-node="delta"][data-state="offline"]`)))
	if got := text(`tr[data-node="delta"] .badge`); got != "offline" {
		t.Errorf("delta's badge shows %q, want offline", got)
	}
	if got := text(`tr[data-node="delta"] td[data-label="State"] .since`); got != "not since start" {
		t.Errorf("delta's since shows %q, want not since start", got)
	}
	if got := text(`tr[data-node="delta"] td[data-label="Queued"]`); got != "1 stored" {
		t.Errorf("delta's queue shows %q, want 1 stored", got)
	}
	run("see the broker not connected", chromedp.WaitVisible(chromedp.CSS(`#mqtt.bad`)))
	if got := text("#mqtt"); got != "not connected" {
		t.Errorf("MQTT broker shows %q, want not connected", got)
	}
	if got := text("#timeout"); got != "300 ms" {
		t.Errorf("server T shows %q, want 300 ms", got)
	}
	if got := text(`tr[data-node="alpha"] td[data-label="Queued"]`); got != "1 stored" {
		t.Errorf("alpha's queue shows %q, want 1 stored", got)
	}
	if got := text(`tr[data-node="gamma"] td[data-label="Queued"]`); got != "1 stored" {
		t.Errorf("gamma's queue shows %q, want 1 stored", got)
	}
	if got := text(`tr[data-node="beta"] td[data-label="Queued"]`); got != "1,000 stored\nfull\n37 dropped" {
		t.Errorf("beta's queue shows %q, want 1,000 stored / full / 37 dropped", got)
	}
	if got := text(`tr[data-node="beta"] td[data-label="In"]`); got != "1 (3 spooled)" {
		t.Errorf("beta's messages in show %q, want 1 (3 spooled)", got)
	}
	if got := text(`tr[data-node="alpha"] td[data-label="In"]`); got != "2" {
		t.Errorf("alpha's messages in show %q, want 2 (nothing spooled)", got)
	}
	if got := text(`tr[data-node="alpha"] td[data-label="Address"]`); !strings.HasPrefix(got, "127.0.0.1:") {
		t.Errorf("alpha's address shows %q, want 127.0.0.1:port", got)
	}
	if got := text(`tr[data-node="alpha"] td[data-label="Last message"] .preview`); !strings.HasPrefix(got, `temp=21.5\tline two\nxxx`) {
		t.Errorf("alpha's last message shows %q, want it escaped, temp=21.5\\tline two\\nxxx...", got)
	}
	run("see beta's full queue flagged", chromedp.WaitVisible(chromedp.CSS(`tr[data-node="beta"] td.queue.bad`)))
	run("see gamma's T flagged", chromedp.WaitVisible(chromedp.CSS(`tr[data-node="gamma"] .mismatch`)))

	down := e.takeDown(t, ctx, beta)
	run("see beta's row go down", chromedp.WaitVisible(chromedp.CSS(`tr[data-node="beta"][data-state="down"]`)))
	t.Logf("beta's row changed to down %v after the server noticed", time.Since(down.Time))
	if got := text(`tr[data-node="beta"] .badge`); got != "down" {
		t.Errorf("beta's badge shows %q, want down", got)
	}
	if got := text("#nodes-up"); got != "2 of 4" {
		t.Errorf("nodes up shows %q, want 2 of 4", got)
	}
	if got := text(`tr[data-node="alpha"] .badge`); got != "up" {
		t.Errorf("alpha's badge shows %q, want up", got)
	}
	run("see beta's down event listed", chromedp.WaitVisible(chromedp.CSS(`#events li.kind-down`)))
	mqttUp.Store(true)
	run("see the broker connected", chromedp.WaitVisible(chromedp.CSS(`#mqtt:not(.bad)`)))
	if got := text("#mqtt"); got != "connected" {
		t.Errorf("MQTT broker shows %q, want connected", got)
	}

	wctx, wcancel := context.WithDeadline(bctx, mustDeadline(ctx))
	defer wcancel()
	eval := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(wctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return s
	}
	// The preview is cut to its cell; unfolded, the message is whole
	// (the first MaxMessageShown bytes: the rest is said on hover) and
	// the topics' names show.
	preview := `document.querySelector('tr[data-node="alpha"] .preview')`
	if cut := eval(`String(` + preview + `.scrollWidth > ` + preview + `.clientWidth)`); cut != "true" {
		t.Errorf("alpha's long message is not cut to its cell")
	}
	if title := eval(preview + `.title`); !strings.Contains(title, "the first 1,024 bytes of 1,043") {
		t.Errorf("alpha's message's title %q does not say it is cut (1,024 bytes of 1,043 shown)", title)
	}
	run("unfold alpha's row",
		chromedp.Click(chromedp.CSS(`tr[data-node="alpha"] button.unfold`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-node="alpha"].open td.topics .names`)),
	)
	if cut := eval(`String(` + preview + `.scrollWidth > ` + preview + `.clientWidth)`); cut != "false" {
		t.Errorf("alpha's unfolded message is still cut")
	}
	if got := text(`tr[data-node="alpha"] td.topics .names`); got != "tether/alpha/up\ntether/alpha/down\ntether/alpha/state" {
		t.Errorf("alpha's unfolded topics show %q", got)
	}
	if got := eval(`Array.from(document.querySelectorAll('tr[data-node="beta"] td.topics button')).map((b) => b.textContent).join(" ")`); got != "up down state" {
		t.Errorf("beta's folded topics show %q, want the copy buttons up down state", got)
	}
	// Copy a topic (the browser may refuse the clipboard to a page that
	// has not the focus: then the name is selected, for Ctrl+C).
	for _, p := range []string{"clipboard-read", "clipboard-write"} {
		if err := chromedp.Do(wctx, cdpDo(cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: p}, Setting: "granted", Origin: e.url,
		})); err != nil {
			t.Fatal(err)
		}
	}
	run("copy beta's down topic",
		chromedp.Click(chromedp.CSS(`tr[data-node="beta"] button.copy[data-topic="tether/beta/down"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-node="beta"] button.copy.done`)),
	)
	if got, err := chromedp.Run(wctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise)); err != nil || got != "tether/beta/down" {
		t.Errorf("clipboard holds %q (%v), want tether/beta/down", got, err)
	}
	// The widest rows there are (a full queue with drops and spool, a T
	// mismatch, an unfolded row, an Extra column) fit a 1280-pixel
	// window and the narrowest table (1241 px); below, the cards of a
	// tablet and of a phone.
	for _, size := range [][2]int64{{1280, 900}, {1241, 900}, {1000, 900}, {701, 900}, {390, 844}} {
		checkLayout(t, wctx, size[0], size[1])
	}
	run("back to the window", chromedp.EmulateViewport(1500, 700))
	png, err := chromedp.Run(wctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "status-page.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
	if dir := os.Getenv("TETHER_SCREENSHOT_DIR"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, "status-page.png"), png, 0o644); err != nil {
			t.Error(err)
		}
	}
}

// layoutJS lists what sticks out of the window or is cut: the page
// scrolling sideways, an element beyond the window's edges, text that
// overflows its box (message previews, cut on purpose, excepted).
const layoutJS = `(() => {
  const out = [];
  const se = document.scrollingElement;
  if (se.scrollWidth > se.clientWidth) out.push("the page scrolls sideways: " + se.scrollWidth + " px in " + se.clientWidth);
  const W = document.documentElement.clientWidth;
  for (const e of document.querySelectorAll("header *, main *, footer *")) {
    if (e.closest("dialog") || e.offsetParent === null) continue;
    const r = e.getBoundingClientRect();
    if (r.width === 0) continue;
    const what = e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className ? "." + String(e.className).split(" ").join(".") : "") +
      " " + JSON.stringify((e.textContent || "").slice(0, 40));
    if (r.left < -0.5 || r.right > W + 0.5) out.push(what + " spans " + Math.round(r.left) + ".." + Math.round(r.right) + " of " + W);
    if (getComputedStyle(e).overflowX !== "visible" && e.scrollWidth > e.clientWidth + 1 && !e.classList.contains("preview") && e.tagName !== "INPUT" && e.tagName !== "SELECT")
      out.push(what + " text " + e.scrollWidth + " px in " + e.clientWidth + " px");
  }
  return out;
})()`

// checkLayout sets the window to w x h and fails the test if anything
// sticks out or is cut.
func checkLayout(t *testing.T, ctx context.Context, w, h int64) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(w, h)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf("document.documentElement.clientWidth === %d", w), chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("viewport %dx%d: %v", w, h, err)
	}
	cut, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](layoutJS))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cut {
		if i == 8 {
			t.Errorf("%dx%d: ... %d in all", w, h, len(cut))
			break
		}
		t.Errorf("%dx%d: %s", w, h, c)
	}
}

func mustDeadline(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		panic("context without deadline")
	}
	return d
}

// cdpDo runs a DevTools command.
func cdpDo[P any](cmd cdp.Command[P, cdp.Empty], p P) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, cmd, p)
		return chromedp.Void{}, err
	}
}

// withHeaders makes the browser send h with every request (a bearer
// token: headless Chromium cannot answer a Basic authentication prompt).
func withHeaders(h map[string]any) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers(h)})
		return chromedp.Void{}, err
	}
}

// TestPagingInBrowser: a table of 1,203 rows shows 100 at a time; the
// pager, the search box and "down only" ask the server for other pages,
// which keep up with events; the send dialog writes to a node with the
// page's credentials.
func TestPagingInBrowser(t *testing.T) {
	bctx := browser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	off := offIDs(1200)
	var rec sendRecorder
	e := start(t, 300*time.Millisecond, web.Config{Token: token, Send: rec.send, Offline: func() []string { return off }})
	e.dial(t, ctx, "n1")
	n2 := e.dial(t, ctx, "n2")
	e.dial(t, ctx, "n10")

	wctx, wcancel := context.WithDeadline(bctx, mustDeadline(ctx))
	defer wcancel()
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(wctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(wctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return s
	}
	rowIDs := `Array.from(document.querySelectorAll("#nodes tbody tr")).map((tr) => tr.dataset.node).join(" ")`
	// waitRows waits until the table's IDs are want.
	waitRows := func(what, want string) {
		t.Helper()
		js := fmt.Sprintf(`(%s) === %q`, rowIDs, want)
		if _, err := chromedp.Run(wctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("%s: rows %q, want %q: %v", what, eval(rowIDs), want, err)
		}
	}
	range_ := func() string { return eval(`document.getElementById("range").textContent`) }

	run("load the page with the token",
		withHeaders(map[string]any{"Authorization": "Bearer " + token}),
		chromedp.Navigate(e.url+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#live[data-state="live"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-node="n10"][data-state="up"]`)),
	)
	first := strings.Join(append([]string{"n1", "n2", "n10"}, off[:97]...), " ")
	waitRows("first page", first)
	if got := range_(); got != "1–100 of 1,203 nodes" {
		t.Errorf("range shows %q, want 1–100 of 1,203 nodes", got)
	}
	run("next page", chromedp.Click(chromedp.CSS("#next")))
	waitRows("second page", strings.Join(off[97:197], " "))
	if got := range_(); got != "101–200 of 1,203 nodes" {
		t.Errorf("range shows %q, want 101–200 of 1,203 nodes", got)
	}
	if got := eval(`location.search`); got != "?offset=100" {
		t.Errorf("address keeps %q, want ?offset=100", got)
	}
	run("back", chromedp.Click(chromedp.CSS("#prev")))
	waitRows("first page again", first)

	run("search", chromedp.SendKeys(chromedp.CSS("#filter"), "n1"))
	waitRows("search n1", "n1 n10")
	if got := range_(); got != "1–2 of 2 matching (1,203 nodes)" {
		t.Errorf("range shows %q, want 1–2 of 2 matching (1,203 nodes)", got)
	}
	eval(`(() => { const f = document.getElementById("filter"); f.value = ""; f.dispatchEvent(new Event("input")); return "cleared"; })()`)
	waitRows("all again", first)

	run("down only", chromedp.Click(chromedp.CSS("#down-only")))
	waitRows("down only", strings.Join(off[:100], " "))
	e.takeDown(t, ctx, n2)
	waitRows("n2 joins the down page", strings.Join(append([]string{"n2"}, off[:99]...), " "))
	run("all", chromedp.Click(chromedp.CSS("#down-only")))
	waitRows("all again", first)

	run("send to n1",
		chromedp.WaitVisible(chromedp.CSS(`tr[data-node="n1"] button.send`)),
		chromedp.Click(chromedp.CSS(`tr[data-node="n1"] button.send`)),
		chromedp.WaitVisible(chromedp.CSS("#send-dialog")),
		chromedp.SendKeys(chromedp.CSS("#send-payload"), "from the page"),
		chromedp.Click(chromedp.CSS("#send-submit")),
		chromedp.WaitVisible(chromedp.CSS("#send-result.ok")),
	)
	if got := rec.sent(); len(got) != 1 || got[0] != "n1\tfrom the page" {
		t.Errorf("sent %q, want n1's message", got)
	}
}

// TestApprovalInBrowser: the page lists the IDs waiting for approval;
// approve lets one in (its row leaves the list), deny takes two clicks,
// and so does forgetting a node that is not up.
func TestApprovalInBrowser(t *testing.T) {
	bctx := browser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := &approvals{pending: []string{"newbie", "intruder"}}
	e := start(t, 300*time.Millisecond, a.config(web.Config{Token: token, Offline: func() []string { return []string{"typo"} }}))
	e.dial(t, ctx, "n1")

	wctx, wcancel := context.WithDeadline(bctx, mustDeadline(ctx))
	defer wcancel()
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(wctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	run("load the page",
		withHeaders(map[string]any{"Authorization": "Bearer " + token}),
		chromedp.Navigate(e.url+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#live[data-state="live"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#pending tr[data-node="newbie"] button.approve`)),
		chromedp.WaitVisible(chromedp.CSS(`#pending tr[data-node="intruder"] button.deny`)),
	)
	if got, err := chromedp.Run(wctx, chromedp.Text(chromedp.CSS("#pending-count"))); err != nil || got != "(2)" {
		t.Errorf("pending count shows %q, %v; want (2)", got, err)
	}
	// (One snapshot: on a loaded machine n1 may go down for a moment, and
	// then it does offer forget.)
	if n, err := chromedp.Run(wctx, chromedp.Evaluate[int](`document.querySelectorAll('#nodes tr[data-state="up"] button.forget').length`)); err != nil || n != 0 {
		t.Errorf("%d up nodes offer forget (%v)", n, err)
	}

	run("approve newbie",
		chromedp.Click(chromedp.CSS(`#pending tr[data-node="newbie"] button.approve`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#pending tr[data-node="newbie"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#action-result.ok`)),
	)
	run("deny intruder (two clicks)",
		chromedp.Click(chromedp.CSS(`#pending tr[data-node="intruder"] button.deny`)),
		chromedp.WaitVisible(chromedp.CSS(`#pending tr[data-node="intruder"] button.deny[data-armed="true"]`)),
	)
	if _, de, _ := a.got(); len(de) != 0 {
		t.Fatalf("denied on the first click: %v", de)
	}
	run("confirm",
		chromedp.Click(chromedp.CSS(`#pending tr[data-node="intruder"] button.deny`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#pending tr[data-node="intruder"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#pending-empty`)),
	)
	run("forget typo (two clicks)",
		chromedp.Click(chromedp.CSS(`tr[data-node="typo"] button.forget`)),
		chromedp.Click(chromedp.CSS(`tr[data-node="typo"] button.forget`)),
		chromedp.WaitVisible(chromedp.CSS(`#action-result.ok`)),
	)
	ap, de, fo := a.got()
	if !slices.Equal(ap, []string{"newbie"}) || !slices.Equal(de, []string{"intruder"}) || !slices.Equal(fo, []string{"typo"}) {
		t.Errorf("approved %v, denied %v, forgotten %v; want newbie, intruder, typo", ap, de, fo)
	}
}

// BenchmarkPageRender: the page in headless Chromium renders a page of
// 100 and of 500 rows (offline nodes of a table of 10,000, each with a
// last message of 130 bytes, its topics and a durable queue), from the
// status the event stream sends first: js-ms/op is the script's time,
// layout-ms/op the browser's layout of the table after it. (The times
// are the browser's own, measured in the page; a loaded machine makes
// them vary.)
func BenchmarkPageRender(b *testing.B) {
	bctx := browser(b)
	off := offIDs(10000)
	msg := `{"temp": 21.5, "hum": 40, "note": "` + strings.Repeat("abc ", 25) + `"}`
	e := start(b, 300*time.Millisecond, web.Config{Offline: func() []string { return off },
		Queue:       func(id string) web.Queue { return web.Queue{Stored: 1, Bytes: 20} },
		LastMessage: func(id string) (web.Message, bool) { return web.ShownMessage(msg, time.Now()), true },
		Topics: func(id string) *web.Topics {
			return &web.Topics{Up: "tether/" + id + "/up", Down: "tether/" + id + "/down", State: "tether/" + id + "/state"}
		}})
	ctx, cancel := context.WithTimeout(bctx, 5*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(e.url+"/"), chromedp.WaitVisible(chromedp.CSS(`#live[data-state="live"]`))); err != nil {
		b.Fatal(err)
	}
	for _, limit := range []int{100, 500} {
		b.Run(fmt.Sprintf("rows=%d", limit), func(b *testing.B) {
			// The page's status, fetched once; the stream is closed, so
			// that only the renders measured touch the table.
			if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(
				`fetch("api/status?limit=%d").then((r) => r.json()).then((st) => { es.close(); window.benchStatus = st; return true; })`, limit),
				chromedp.EvalAwaitPromise)); err != nil {
				b.Fatal(err)
			}
			var js, layout float64
			for b.Loop() {
				ms, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`(() => {
  for (const tr of rows.values()) tr.remove();
  rows.clear();
  nodes.clear();
  document.body.offsetHeight;
  const t0 = performance.now();
  onStatus(window.benchStatus);
  const t1 = performance.now();
  document.body.offsetHeight;
  return [t1 - t0, performance.now() - t1];
})()`))
				if err != nil {
					b.Fatal(err)
				}
				js += ms[0]
				layout += ms[1]
			}
			b.ReportMetric(js/float64(b.N), "js-ms/op")
			b.ReportMetric(layout/float64(b.N), "layout-ms/op")
		})
	}
}
