package testenv

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// chromiumNames are the names Debian's and other distributions' packages
// give the browser, in order of preference.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"}

// ChromiumPath finds the browser: $UPBROKER_CHROMIUM, then the usual names
// on PATH (Debian's `chromium`, installed by scripts/test-deps.sh).
func ChromiumPath() (string, error) {
	if p := os.Getenv("UPBROKER_CHROMIUM"); p != "" {
		return exec.LookPath(p)
	}
	var first error
	for _, n := range chromiumNames {
		p, err := exec.LookPath(n)
		if err == nil {
			return p, nil
		}
		if first == nil {
			first = err
		}
	}
	return "", first
}

// Chromium starts a headless browser for the test and returns a chromedp
// context for one tab in it. The browser gets a fresh profile in a temporary
// folder and is closed when the test ends. A missing browser is
// Unavailable.
func Chromium(t testing.TB) context.Context {
	t.Helper()
	path, err := ChromiumPath()
	if err != nil {
		Unavailable(t, "chromium not found: %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("mute-audio", true),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// The first Run starts the browser; fail here, with the reason, rather
	// than in the test's first action.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium (%s): %v", path, err)
	}
	return ctx
}
