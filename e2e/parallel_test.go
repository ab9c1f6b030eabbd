package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// flightCount counts the upload requests that the gate has received and
// not yet answered, and the most there ever were at once. A request stops
// counting when its answer starts, not when the handler returns: the client
// may start its next part as soon as it reads the answer, and that request
// must not overlap the one that was answered.
type flightCount struct {
	mu       sync.Mutex
	now, max int
}

// enter counts r if it is an upload, and returns the writer to answer it
// with and a func that stops counting it (for requests that are never
// answered, such as a held request the browser dropped). Both stop the
// count at most once.
func (f *flightCount) enter(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, func()) {
	if !isUpload(r) {
		return w, func() {}
	}
	f.mu.Lock()
	f.now++
	f.max = max(f.max, f.now)
	f.mu.Unlock()
	var once sync.Once
	leave := func() {
		once.Do(func() {
			f.mu.Lock()
			f.now--
			f.mu.Unlock()
		})
	}
	return &answerWriter{ResponseWriter: w, answered: leave}, leave
}

// answerWriter calls answered when the final answer starts.
type answerWriter struct {
	http.ResponseWriter
	answered func()
}

func (a *answerWriter) WriteHeader(code int) {
	// 1xx answers (which the reverse proxy passes on) are not the answer.
	if code >= 200 {
		a.answered()
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *answerWriter) Write(p []byte) (int, error) {
	a.answered()
	return a.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController (used by the reverse proxy to flush)
// reach the server's writer.
func (a *answerWriter) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// InFlight is how many upload requests the gate has and has not answered.
func (g *gate) InFlight() int {
	g.flight.mu.Lock()
	defer g.flight.mu.Unlock()
	return g.flight.now
}

// MaxInFlight is the most upload requests the gate ever had unanswered at once.
func (g *gate) MaxInFlight() int {
	g.flight.mu.Lock()
	defer g.flight.mu.Unlock()
	return g.flight.max
}

// partOf is the part number of a gate request id (path and query), or "";
// the rest of the id is a signed URL, too long to be worth reading.
func partOf(id string) string {
	_, query, _ := strings.Cut(id, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return ""
	}
	return q.Get("partNumber")
}

// settle is how long the test waits for a part request beyond the bound
// before it decides that none is coming. It only bounds a negative check:
// a slow machine cannot make the test fail, only miss a late extra request,
// which MaxInFlight would still see if it came before the others' answers.
const settle = 2 * time.Second

// upbroker.js sends the parts of a multipart upload with bounded
// parallelism: 4 at once by default, or the caller's concurrency. The gate
// in front of MinIO holds every part until as many as the bound arrived,
// checks that no further part comes while they are unanswered, then lets
// them all through and checks that the bound held to the end.
func TestClientPartsParallel(t *testing.T) {
	tests := []struct {
		name    string
		options string // the upload options, as JavaScript
		want    int
	}{
		{"default", `{ profile: "files" }`, 4},
		{"concurrency 2", `{ profile: "files", concurrency: 2 }`, 2},
		{"concurrency 1", `{ profile: "files", concurrency: 1 }`, 1},
	}
	const size = 22 << 20 // 5 parts of 5 MiB: more than the default bound
	const parts = 5
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t, minioYAML, stackOptions{minio: true})
			s.Gate.Hold(func(r *http.Request) bool { return partNumber(r) != "" })
			s.openDemo(t, "files")
			want := randomBytes(t, size)
			// A file input of the test's own, so that the demo page does
			// not start an upload of its own.
			eval[bool](t, s, `(() => {
				const input = document.createElement("input");
				input.type = "file";
				input.id = "parallel-input";
				document.body.append(input);
				return true;
			})()`)
			s.run(t, chromedp.SetUploadFiles(chromedp.CSS("#parallel-input"), []string{writeFile(t, "big.bin", want)}))
			eval[bool](t, s, fmt.Sprintf(`(async () => {
				const { Upbroker } = await import("/v1/client.js");
				const file = document.getElementById("parallel-input").files[0];
				window.parallelUpload = new Upbroker({}).upload(file, %s).then(
					(r) => ({ ok: true, key: r.key, size: r.size, message: "" }),
					(e) => ({ ok: false, key: "", size: 0, message: String(e && e.code) + ": " + String(e && e.message) }));
				return true;
			})()`, tc.options))

			for i := range tc.want {
				receive(t, fmt.Sprintf("part request %d of the %d expected at once", i+1, tc.want), s.Gate.held)
			}
			select {
			case id := <-s.Gate.held:
				t.Fatalf("part %s arrived while %d parts were unanswered: %d in flight at once, want at most %d",
					partOf(id), tc.want, tc.want+1, tc.want)
			case <-time.After(settle):
			}
			if n := s.Gate.InFlight(); n != tc.want {
				t.Fatalf("before release: %d parts in flight, want %d", n, tc.want)
			}
			s.Gate.Release()

			type result struct {
				OK      bool   `json:"ok"`
				Key     string `json:"key"`
				Size    int64  `json:"size"`
				Message string `json:"message"`
			}
			res := eval[result](t, s, `window.parallelUpload`)
			if !res.OK {
				t.Fatalf("upload failed: %s", res.Message)
			}
			if m := s.Gate.MaxInFlight(); m != tc.want {
				t.Errorf("at most %d parts were in flight at once, want %d", m, tc.want)
			}
			if res.Size != size {
				t.Errorf("result size %d, want %d", res.Size, size)
			}
			got, _ := s.readObject(t, "minio", res.Key, size)
			if !bytes.Equal(got, want) {
				t.Errorf("object holds %d bytes that differ from the %d sent", len(got), len(want))
			}
			sent := map[string]int{}
			s.Gate.mu.Lock()
			for id, n := range s.Gate.attempts {
				sent[id] += n
			}
			s.Gate.mu.Unlock()
			if len(sent) != parts {
				var got []string
				for id := range sent {
					got = append(got, partOf(id))
				}
				t.Errorf("requests for parts %v, want %d parts", got, parts)
			}
			for id, n := range sent {
				if partOf(id) == "" || n != 1 {
					t.Errorf("%s was sent %d times, want once, as a part", id, n)
				}
			}
			if open := s.openUploads(t); len(open) != 0 {
				t.Errorf("multipart uploads left open: %v", open)
			}
		})
	}
}
