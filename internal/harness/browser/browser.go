// Package browser starts the headless Chromium (Debian's package) that the
// page tests drive through chromedp.
package browser

import (
	"context"
	"os"
	"testing"

	"github.com/chromedp/chromedp"
)

// Chromium is where Debian's chromium package puts the browser
// (./scripts/test installs it).
const Chromium = "/usr/bin/chromium"

// Start starts a headless Chromium with a fresh profile, no network
// chatter of its own and a window of width x height; it is closed at the
// end of the test. The context it returns runs actions in its tab.
func Start(t testing.TB, width, height int) context.Context {
	t.Helper()
	if _, err := os.Stat(Chromium); err != nil {
		t.Fatalf("no headless browser at %s: install chromium (apt-get install chromium) or run ./scripts/test", Chromium)
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(Chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		chromedp.Cancel(bctx) // closes the browser and waits for it
		bcancel()
		acancel()
	})
	// Start the browser now, with a context that has no deadline: the
	// browser lives as long as the context of its first action.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting %s: %v", Chromium, err)
	}
	return bctx
}
