package security

import (
	"fmt"
	"net/http"
	"testing"
)

// TestForwardedForNotTrusted: anonymous callers are limited by client IP,
// and by default no proxy is trusted, so a caller cannot buy a fresh
// limit by inventing an X-Forwarded-For (or X-Real-IP) for each request.
func TestForwardedForNotTrusted(t *testing.T) {
	dir := t.TempDir()
	in := startBroker(t, func(publicURL string) string {
		return fmt.Sprintf(`server:
  public_url: %s
  demo_page: false
secrets:
  ticket_keys: [%q]
auth:
  mode: none
rate_limit:
  grants_per_minute: 1
  burst: 1
backends:
  local: {driver: file, path: %q}
profiles:
  images:
    backend: local
    content_types: [image/png]
    max_size: 1MiB
default_profile: images
`, publicURL, randomHex(t, 32), dir)
	})
	body := `{"filename":"a.png","content_type":"image/png","size":100}`
	tests := []struct {
		name   string
		header map[string]string
		status int
	}{
		{"first grant", nil, http.StatusCreated},
		{"X-Forwarded-For of another client", map[string]string{"X-Forwarded-For": "203.0.113.7"}, http.StatusTooManyRequests},
		{"X-Real-IP of another client", map[string]string{"X-Real-IP": "203.0.113.8"}, http.StatusTooManyRequests},
		{"both, chained", map[string]string{"X-Forwarded-For": "198.51.100.1, 203.0.113.9", "X-Real-IP": "198.51.100.2"}, http.StatusTooManyRequests},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := grantRequest(t, in.URL, "", body)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			r := do(t, req)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if tc.status == http.StatusTooManyRequests {
				if e, ok := r.err(); !ok || e.Code != "rate_limited" || r.Header.Get("Retry-After") == "" {
					t.Errorf("429 answer %s (Retry-After %q), want code rate_limited with Retry-After", r.Body, r.Header.Get("Retry-After"))
				}
			}
		})
	}
}
