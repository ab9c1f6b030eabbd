package companion

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upbroker/upbroker/config"
	"github.com/upbroker/upbroker/events"
	"github.com/upbroker/upbroker/internal/testenv"
)

// recorder is a Metrics and an events.Sink that keeps what it is told,
// timings left out, in order.
type recorder struct {
	mu     sync.Mutex
	calls  []string
	events []events.Event
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf(format, args...))
}

func (r *recorder) Grant(profile, backend, result string, bytes int64) {
	r.add("grant %s %s %s %d", profile, backend, result, bytes)
}

func (r *recorder) Completion(profile, backend, reason string, bytes int64) {
	r.add("completion %s %s %s %d", profile, backend, reason, bytes)
}

func (r *recorder) Presign(backend, op string, d time.Duration) {
	if d < 0 {
		r.add("negative presign time %v", d)
	}
	r.add("presign %s %s", backend, op)
}

func (r *recorder) BackendCall(backend, op string, d time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	if d < 0 {
		r.add("negative call time %v", d)
	}
	r.add("call %s %s %s", backend, op, outcome)
}

func (r *recorder) Publish(ev events.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

// take returns what was recorded and starts afresh.
func (r *recorder) take() ([]string, []events.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, e := r.calls, r.events
	r.calls, r.events = nil, nil
	return c, e
}

// signOne signs one part and returns its URL.
func (s *stack) signOne(t *testing.T, c created, n int) string {
	t.Helper()
	r := s.call(t, "alice", http.MethodGet, uploadPath(c, fmt.Sprintf("/%d", n), ""), nil)
	if r.status != http.StatusOK {
		t.Fatalf("sign part %d: %s", n, r)
	}
	var one struct{ URL string }
	r.decode(t, &one)
	return one.URL
}

func (s *stack) completeParts(t *testing.T, c created, etags ...string) reply {
	t.Helper()
	parts := make([]map[string]any, len(etags))
	for i, e := range etags {
		parts[i] = map[string]any{"PartNumber": i + 1, "ETag": e}
	}
	return s.call(t, "alice", http.MethodPost, uploadPath(c, "/complete", ""), map[string]any{"parts": parts})
}

// TestMetricsAndEvents drives Companion's routes against MinIO with a
// recording Metrics and event sink, and checks that each request reports
// exactly what the v1 API reports for its counterpart: grants with their
// result, signing and store calls by operation, completions with their
// size or rejection reason, and the events a webhook would deliver.
func TestMetricsAndEvents(t *testing.T) {
	m := testenv.StartMinIO(t)
	const max = 6 * mib
	html := []byte("<!DOCTYPE html><html><script>alert(1)</script></html>")
	png := sized(t, 4096)
	// Uppy's file.meta as create sends it; relativePath (null) is dropped.
	uppyMeta := map[string]string{"name": "x.png", "type": "image/png", "caption": "hello"}

	tests := []struct {
		name  string
		sniff bool
		// run makes the requests; it returns the upload they were about
		// (zero when none was created) and the last answer's status.
		run    func(t *testing.T, s *stack) (created, int)
		status int
		calls  []string
		event  events.Type // "" for none
		reason string
		size   int64
		ctype  string
		meta   map[string]string
	}{
		{
			name: "multipart completed",
			run: func(t *testing.T, s *stack) (created, int) {
				c := s.create(t, "alice", "x.png", "image/png")
				etag := putPart(t, s.signOne(t, c, 1), png)
				return c, s.completeParts(t, c, etag).status
			},
			status: http.StatusOK,
			calls: []string{
				"call store create_multipart ok", fmt.Sprintf("grant images store ok %d", max),
				"presign store part",
				"call store list_parts ok", "call store complete_multipart ok",
				fmt.Sprintf("completion images store ok %d", len(png)),
			},
			event: events.Completed, size: int64(len(png)), ctype: "image/png", meta: uppyMeta,
		},
		{
			name:  "sniff rejected",
			sniff: true,
			run: func(t *testing.T, s *stack) (created, int) {
				c := s.create(t, "alice", "x.png", "image/png")
				etag := putPart(t, s.signOne(t, c, 1), html)
				return c, s.completeParts(t, c, etag).status
			},
			status: http.StatusUnprocessableEntity,
			calls: []string{
				"call store create_multipart ok", fmt.Sprintf("grant images store ok %d", max),
				"presign store part",
				"call store list_parts ok", "call store complete_multipart ok",
				"call store read ok", "call store delete ok",
				"completion images store sniff 0",
			},
			event: events.Rejected, reason: "sniff", size: int64(len(html)), ctype: "image/png", meta: uppyMeta,
		},
		{
			// Over max_size before assembly: the store is asked to
			// abort, and the unassembled upload has no type or metadata
			// to report.
			name: "size rejected",
			run: func(t *testing.T, s *stack) (created, int) {
				c := s.create(t, "alice", "x.png", "image/png")
				data := sized(t, 7*mib)
				e1 := putPart(t, s.signOne(t, c, 1), data[:5*mib])
				e2 := putPart(t, s.signOne(t, c, 2), data[5*mib:])
				return c, s.completeParts(t, c, e1, e2).status
			},
			status: http.StatusRequestEntityTooLarge,
			calls: []string{
				"call store create_multipart ok", fmt.Sprintf("grant images store ok %d", max),
				"presign store part", "presign store part",
				"call store list_parts ok", "call store abort_multipart ok",
				"completion images store size 0",
			},
			event: events.Rejected, reason: "size", size: 7 * mib,
		},
		{
			// A part that was never uploaded: "missing", and no event,
			// as the v1 API completing an upload that has no object.
			name: "part missing",
			run: func(t *testing.T, s *stack) (created, int) {
				c := s.create(t, "alice", "x.png", "image/png")
				return c, s.completeParts(t, c, "0123456789abcdef0123456789abcdef").status
			},
			status: http.StatusBadRequest,
			calls: []string{
				"call store create_multipart ok", fmt.Sprintf("grant images store ok %d", max),
				"call store list_parts ok",
				"completion images store missing 0",
			},
		},
		{
			// A wrong ETag is a bad request, not a completion.
			name: "etag mismatch",
			run: func(t *testing.T, s *stack) (created, int) {
				c := s.create(t, "alice", "x.png", "image/png")
				putPart(t, s.signOne(t, c, 1), png)
				return c, s.completeParts(t, c, "0123456789abcdef0123456789abcdef").status
			},
			status: http.StatusBadRequest,
			calls: []string{
				"call store create_multipart ok", fmt.Sprintf("grant images store ok %d", max),
				"presign store part",
				"call store list_parts ok",
			},
		},
		{
			// Uppy may cancel twice; the second abort finds nothing and
			// publishes nothing.
			name: "aborted twice",
			run: func(t *testing.T, s *stack) (created, int) {
				c := s.create(t, "alice", "x.png", "image/png")
				putPart(t, s.signOne(t, c, 1), png)
				var status int
				for range 2 {
					status = s.call(t, "alice", http.MethodDelete, uploadPath(c, "", ""), nil).status
				}
				return c, status
			},
			status: http.StatusOK,
			calls: []string{
				"call store create_multipart ok", fmt.Sprintf("grant images store ok %d", max),
				"presign store part",
				"call store list_parts ok", "call store abort_multipart ok",
				"call store list_parts error",
			},
			event: events.Aborted,
		},
		{
			name: "complete after abort",
			run: func(t *testing.T, s *stack) (created, int) {
				c := s.create(t, "alice", "x.png", "image/png")
				etag := putPart(t, s.signOne(t, c, 1), png)
				if r := s.call(t, "alice", http.MethodDelete, uploadPath(c, "", ""), nil); r.status != http.StatusOK {
					t.Fatalf("abort: %s", r)
				}
				return c, s.completeParts(t, c, etag).status
			},
			status: http.StatusNotFound,
			calls: []string{
				"call store create_multipart ok", fmt.Sprintf("grant images store ok %d", max),
				"presign store part",
				"call store list_parts ok", "call store abort_multipart ok",
				"call store list_parts error", "completion images store missing 0",
			},
			event: events.Aborted,
		},
		{
			name: "post policy granted",
			run: func(t *testing.T, s *stack) (created, int) {
				return created{}, s.call(t, "alice", http.MethodGet, paramsQuery("x.png", "image/png", nil), nil).status
			},
			status: http.StatusOK,
			calls:  []string{"presign store post", fmt.Sprintf("grant images store ok %d", max)},
		},
		{
			name: "post policy: type refused",
			run: func(t *testing.T, s *stack) (created, int) {
				return created{}, s.call(t, "alice", http.MethodGet, paramsQuery("x.svg", "image/svg+xml", nil), nil).status
			},
			status: http.StatusUnsupportedMediaType,
			calls:  []string{"grant images store unsupported_type 0"},
		},
		{
			name: "multipart: profile forbidden",
			run: func(t *testing.T, s *stack) (created, int) {
				return created{}, s.call(t, "carol", http.MethodPost, "/multipart", map[string]any{"filename": "x.png", "type": "image/png"}).status
			},
			status: http.StatusForbidden,
			calls:  []string{"grant images store forbidden 0"},
		},
		{
			name: "multipart: no filename",
			run: func(t *testing.T, s *stack) (created, int) {
				return created{}, s.call(t, "alice", http.MethodPost, "/multipart", map[string]any{"type": "image/png"}).status
			},
			status: http.StatusBadRequest,
			calls:  []string{"grant images store invalid_request 0"},
		},
		{
			// The v1 API's auth middleware refuses before the grant
			// handler counts anything; so does Companion.
			name: "unauthenticated: not counted",
			run: func(t *testing.T, s *stack) (created, int) {
				return created{}, s.call(t, "", http.MethodGet, paramsQuery("x.png", "image/png", nil), nil).status
			},
			status: http.StatusUnauthorized,
		},
	}
	for _, driver := range []string{"minio", "s3"} {
		for _, tc := range tests {
			t.Run(driver+"/"+tc.name, func(t *testing.T) {
				rec := &recorder{}
				s := minioStackWith(t, m, driver, max, stackOpts{metrics: rec, events: rec}, func(p *config.Profile) { p.Sniff = tc.sniff })
				c, status := tc.run(t, s)
				if status != tc.status {
					t.Fatalf("status %d, want %d", status, tc.status)
				}
				calls, evs := rec.take()
				if !reflect.DeepEqual(calls, tc.calls) {
					t.Errorf("metrics calls:\n got %s\nwant %s", strings.Join(calls, "\n     "), strings.Join(tc.calls, "\n     "))
				}
				if tc.event == "" {
					if len(evs) != 0 {
						t.Fatalf("events %+v, want none", evs)
					}
					return
				}
				if len(evs) != 1 {
					t.Fatalf("%d events %+v, want one %s", len(evs), evs, tc.event)
				}
				ev := evs[0]
				if ev.ID == "" || ev.Time.IsZero() {
					t.Errorf("event has no id or time: %+v", ev)
				}
				want := events.Event{ID: ev.ID, Time: ev.Time, Type: tc.event, Key: c.Key, Backend: "store", Profile: profileName,
					Principal: "alice", Size: tc.size, ContentType: tc.ctype, Metadata: tc.meta, Reason: tc.reason}
				if !reflect.DeepEqual(ev, want) {
					t.Errorf("event\n got %+v\nwant %+v", ev, want)
				}
			})
		}
	}
}

// TestEventID: one id per upload and event type, so that a receiver drops
// a repeat but not another event about the same upload.
func TestEventID(t *testing.T) {
	base := eventID(events.Completed, "store", "images/alice/k.png", "u1")
	tests := []struct {
		name          string
		typ           events.Type
		backend, key  string
		upload        string
		sameAsCompare bool
	}{
		{"same upload, same type", events.Completed, "store", "images/alice/k.png", "u1", true},
		{"another type", events.Rejected, "store", "images/alice/k.png", "u1", false},
		{"another upload", events.Completed, "store", "images/alice/k.png", "u2", false},
		{"another key", events.Completed, "store", "images/alice/j.png", "u1", false},
		{"another backend", events.Completed, "other", "images/alice/k.png", "u1", false},
		// The separator keeps one field's end from passing for the next's
		// start.
		{"shifted fields", events.Completed, "store", "images/alice/k.pngu", "1", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := eventID(tc.typ, tc.backend, tc.key, tc.upload)
			if (got == base) != tc.sameAsCompare {
				t.Errorf("eventID = %s, base %s, want same=%t", got, base, tc.sameAsCompare)
			}
			if len(got) != 24 {
				t.Errorf("eventID %q is not 24 hex digits", got)
			}
		})
	}
}

// TestResultCode: refusals are counted under the v1 API's error codes.
func TestResultCode(t *testing.T) {
	tests := []struct {
		status int
		want   string
	}{
		{400, "invalid_request"}, {401, "unauthorized"}, {403, "forbidden"}, {404, "not_found"},
		{405, "method_not_allowed"}, {409, "exists"}, {413, "too_large"}, {415, "unsupported_type"},
		{422, "rejected"}, {429, "rate_limited"}, {500, "internal"}, {503, "backend_unavailable"},
	}
	for _, tc := range tests {
		if got := resultCode(tc.status); got != tc.want {
			t.Errorf("resultCode(%d) = %q, want %q", tc.status, got, tc.want)
		}
	}
}
