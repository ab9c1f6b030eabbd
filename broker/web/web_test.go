package web

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

func readAsset(t *testing.T, name string) string {
	t.Helper()
	b, err := fs.ReadFile(Assets, name)
	if err != nil {
		t.Fatalf("asset %s: %v", name, err)
	}
	return string(b)
}

// The demo page must load only from the broker's own routes: the page is
// served with no network beyond the broker, and a third-party script would
// see every file a user picks.
func TestDemoPageLoadsOnlyOwnAssets(t *testing.T) {
	page := readAsset(t, "index.html")
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) == 0 {
		t.Fatal("index.html references no assets")
	}
	for _, r := range refs {
		ref := r[1]
		if !strings.HasPrefix(ref, "/demo/") {
			t.Errorf("index.html references %q, want only /demo/ assets", ref)
		}
		if _, err := fs.Stat(Assets, strings.TrimPrefix(ref, "/demo/")); err != nil {
			t.Errorf("index.html references %q, which is not embedded: %v", ref, err)
		}
	}
	for _, inline := range []string{"onclick=", "onsubmit=", "onload=", "<script>"} {
		if strings.Contains(page, inline) {
			t.Errorf("index.html has inline script %q, which a strict CSP blocks", inline)
		}
	}
}

func TestAssetsHaveNoExternalURLs(t *testing.T) {
	ext := regexp.MustCompile(`(?:import|from|src=|href=|url\()\s*["'(]?(https?:)?//`)
	for _, name := range []string{"index.html", "demo.js", "demo.css", "upbroker.js"} {
		t.Run(name, func(t *testing.T) {
			if m := ext.FindString(readAsset(t, name)); m != "" {
				t.Errorf("%s loads an external resource: %q", name, m)
			}
		})
	}
}

func TestDemoImportsClientFromBroker(t *testing.T) {
	js := readAsset(t, "demo.js")
	imports := regexp.MustCompile(`(?m)^import .* from '([^']+)';`).FindAllStringSubmatch(js, -1)
	if len(imports) != 1 || imports[0][1] != "/v1/client.js" {
		t.Fatalf("demo.js imports %v, want exactly /v1/client.js", imports)
	}
}

// Every name upbroker.js exports is declared in upbroker.d.ts, so
// TypeScript users see the whole API.
func TestTypesDeclareEveryExport(t *testing.T) {
	js := readAsset(t, "upbroker.js")
	dts := readAsset(t, "upbroker.d.ts")
	exports := regexp.MustCompile(`(?m)^export (?:async )?(?:class|function|const) (\w+)`).FindAllStringSubmatch(js, -1)
	if len(exports) < 2 {
		t.Fatalf("found %d exports in upbroker.js", len(exports))
	}
	for _, e := range exports {
		decl := regexp.MustCompile(`export declare (?:class|function|const) ` + e[1] + `\b`)
		if !decl.MatchString(dts) {
			t.Errorf("upbroker.d.ts does not declare %s", e[1])
		}
	}
	for _, method := range []string{"upload(", "createUpload(", "abort("} {
		if !strings.Contains(dts, method) || !strings.Contains(js, method) {
			t.Errorf("method %s missing from upbroker.js or upbroker.d.ts", method)
		}
	}
}

// The client never sets a header the browser owns.
func TestClientFiltersForbiddenHeaders(t *testing.T) {
	js := readAsset(t, "upbroker.js")
	for _, h := range []string{"'content-length'", "'host'", "'connection'", "'transfer-encoding'"} {
		if !strings.Contains(js, h) {
			t.Errorf("upbroker.js does not list forbidden header %s", h)
		}
	}
}
