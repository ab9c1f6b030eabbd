package operations_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// generatedID is what the broker makes when it does not keep the
// caller's id: 12 random bytes in hex.
var generatedID = regexp.MustCompile(`^[0-9a-f]{24}$`)

// TestAccessLog sends requests with good and bad X-Request-IDs over
// HTTP and checks, for each, the echoed id and its one access-log line:
// request id, method, route template (never the raw path, which holds
// tickets and keys), status, latency and principal.
func TestAccessLog(t *testing.T) {
	s := newStack(t, stackOptions{})
	g := s.grant(t, map[string]any{"filename": "a.png", "content_type": "image/png", "size": len(pngData)})
	s.upload(t, g, pngData)
	// The grant and the upload (the file driver's route is the broker's).
	const before = 2
	eventually(t, "the setup's access-log lines", func() bool { return len(s.logLines(t, "request")) == before })

	auth := map[string]string{"Authorization": "Bearer " + s.APIKey}
	tests := []struct {
		name      string
		method    string
		path      string
		id        string // X-Request-ID sent; "" sends none
		user      bool   // authenticate as the test principal
		keep      bool   // the id must be echoed as sent
		route     string
		status    int
		principal string
	}{
		{"valid id kept", "GET", "/healthz", "req-42.a_B", false, true, "/healthz", 200, ""},
		{"longest valid id kept", "GET", "/healthz", strings.Repeat("a", 128), false, true, "/healthz", 200, ""},
		{"no id: one is made", "GET", "/healthz", "", false, false, "/healthz", 200, ""},
		{"too long: replaced", "GET", "/healthz", strings.Repeat("a", 129), false, false, "/healthz", 200, ""},
		{"space and quote: replaced", "GET", "/healthz", `a b"c`, false, false, "/healthz", 200, ""},
		{"log injection: replaced", "GET", "/healthz", `x","level":"ERROR`, false, false, "/healthz", 200, ""},
		{"non-ASCII: replaced", "GET", "/healthz", "ïd", false, false, "/healthz", 200, ""},
		{"route template, not the ticket", "POST", "/v1/uploads/" + g.ID + "/complete", "complete-1", true, true,
			"/v1/uploads/:id/complete", 200, principal},
		{"principal of a refused request", "POST", "/v1/uploads/" + g.ID + "/complete", "", false, false,
			"/v1/uploads/:id/complete", 401, ""},
		{"download route, not the key", "GET", "/v1/downloads/" + g.Key, "dl-1", true, true, "/v1/downloads/*key", 307, principal},
		{"unknown route", "GET", "/no/such/" + g.Key, "", false, false, "unmatched", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.user {
				hdr = map[string]string{"Authorization": auth["Authorization"]}
			}
			if tc.id != "" {
				hdr["X-Request-ID"] = tc.id
			}
			var body []byte
			if tc.method == http.MethodPost {
				body = []byte("{}")
				hdr["Content-Type"] = "application/json"
			}
			r := s.do(t, tc.method, tc.path, body, hdr)
			checkEntry(t, s, r.Status, r.Header.Get("X-Request-ID"), tc.id, tc.keep, tc.method, tc.route, tc.status, tc.principal, g)
		})
	}

	// CR and LF cannot cross the wire (net/http refuses such a header
	// before any handler runs), so they are handed to the broker's
	// handler directly, as a proxy in front of it could.
	for _, id := range []string{"abc\r\nlevel=ERROR", "abc\nx", "abc\r"} {
		t.Run(fmt.Sprintf("CR/LF replaced %q", id), func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
			req.Header["X-Request-Id"] = []string{id}
			rec := httptest.NewRecorder()
			s.Handler.ServeHTTP(rec, req)
			checkEntry(t, s, rec.Code, rec.Header().Get("X-Request-ID"), id, false, "GET", "/healthz", 200, "", g)
		})
	}

	// Exactly one line per request: each case and the three CR/LF ones.
	want := len(tests) + 3
	if got := len(s.logLines(t, "request")) - before; got != want {
		t.Errorf("%d access-log lines for %d requests", got, want)
	}
	if strings.Contains(s.Logs.String(), g.ID) {
		t.Error("a ticket id reached the log")
	}
	if strings.Contains(s.Logs.String(), s.APIKey) {
		t.Error("an API key reached the log")
	}
}

// checkEntry checks the echoed id and finds the request's access-log line
// by it.
func checkEntry(t *testing.T, s *stack, status int, echoed, sent string, keep bool, method, route string, wantStatus int, who string, g grant) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status %d, want %d", status, wantStatus)
	}
	switch {
	case keep && echoed != sent:
		t.Fatalf("X-Request-ID %q echoed as %q", sent, echoed)
	case !keep && (echoed == sent || !generatedID.MatchString(echoed)):
		t.Fatalf("X-Request-ID %q: echoed %q, want a generated id", sent, echoed)
	}
	// The line is written as the handler returns; the client may read the
	// answer a moment before.
	var line map[string]any
	eventually(t, "the access-log line", func() bool {
		for _, l := range s.logLines(t, "request") {
			if l["request_id"] == echoed {
				line = l
				return true
			}
		}
		return false
	})
	lat, isNum := line["latency_ms"].(float64)
	if line["method"] != method || line["route"] != route || line["status"] != float64(wantStatus) ||
		line["principal"] != who || !isNum || lat < 0 {
		t.Errorf("access-log line %v, want method %s route %s status %d principal %q and a latency", line, method, route, wantStatus, who)
	}
	if level := line["level"]; (wantStatus >= 500) != (level == "ERROR") {
		t.Errorf("level %v for status %d", level, wantStatus)
	}
}
