package e2e

import (
	"encoding/json"
	"fmt"
	"testing"
)

// The logic of upbroker.js and of the demo page that turns errors into
// words, run in the browser on the modules the broker serves.
func TestClientErrorsInWords(t *testing.T) {
	type fileInfo struct {
		Type string `json:"type"`
		Size int64  `json:"size"`
	}
	tests := []struct {
		name        string
		status      int
		body        string
		contentType string
		retryAfter  string
		file        fileInfo
		wantCode    string
		wantField   string
		wantWords   string
	}{
		{"too large, bytes", 413, `{"error":{"code":"too_large","message":"size 11534336 exceeds max_size 10485760","field":"size"}}`,
			"application/json", "", fileInfo{"image/png", 11534336}, "too_large", "size", "File is larger than 10 MiB"},
		{"too large, unit", 413, `{"error":{"code":"too_large","message":"the file exceeds the maximum of 10MiB","field":"size"}}`,
			"application/json; charset=utf-8", "", fileInfo{"image/png", 20 << 20}, "too_large", "size", "File is larger than 10 MiB"},
		{"type", 415, `{"error":{"code":"unsupported_type","message":"content type not allowed","field":"content_type"}}`,
			"application/json", "", fileInfo{"x/y", 10}, "unsupported_type", "content_type", "Files of type x/y are not allowed here"},
		{"rate limited", 429, `{"error":{"code":"rate_limited","message":"slow down"}}`,
			"application/json", "7", fileInfo{"image/png", 10}, "rate_limited", "", "Too many uploads: try again in 7 s"},
		{"s3 expired", 403, `<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>`,
			"application/xml", "", fileInfo{"image/png", 10}, "forbidden", "", "You are not allowed to upload this file here, or the upload link expired"},
		{"s3 too large", 400, `<Error><Code>EntityTooLarge</Code><Message>Your proposed upload exceeds the maximum allowed size</Message></Error>`,
			"application/xml", "", fileInfo{"image/png", 10}, "too_large", "", "File is larger than this profile allows"},
		{"no body", 503, ``, "", "", fileInfo{"image/png", 10}, "backend_unavailable", "", "The storage cannot be reached right now: try again later"},
	}
	s := newStack(t, fileYAML, stackOptions{})
	s.openDemo(t, "images")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args, err := json.Marshal([]any{tc.status, tc.body, tc.contentType, tc.retryAfter, tc.file})
			if err != nil {
				t.Fatal(err)
			}
			type result struct {
				Name   string `json:"name"`
				Code   string `json:"code"`
				Status int    `json:"status"`
				Field  string `json:"field"`
				Words  string `json:"words"`
			}
			got := eval[result](t, s, fmt.Sprintf(`(async ([status, body, ctype, retry, file]) => {
				const { errorFromBody } = await import("/v1/client.js");
				const { describeError } = await import("/demo/demo.js");
				const e = errorFromBody(status, body, ctype, retry || null);
				return { name: e.name, code: e.code, status: e.status, field: e.field || "", words: describeError(e, file) };
			})(%s)`, args))
			want := result{"UpbrokerError", tc.wantCode, tc.status, tc.wantField, tc.wantWords}
			if got != want {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
		})
	}
}

// A refusal by the real broker reaches the caller as an UpbrokerError with
// the API's code, status and field, and leaves nothing behind.
func TestClientRefusalIsUpbrokerError(t *testing.T) {
	s := newStack(t, fileYAML, stackOptions{})
	s.openDemo(t, "images")
	type result struct {
		Instance bool   `json:"instance"`
		Code     string `json:"code"`
		Status   int    `json:"status"`
		Field    string `json:"field"`
	}
	got := eval[result](t, s, `(async () => {
		const { Upbroker, UpbrokerError } = await import("/v1/client.js");
		const up = new Upbroker({ token: "not-needed-in-mode-none" });
		try {
			await up.upload(new File(["hello"], "note.txt", { type: "text/plain" }), { profile: "images" });
			return { instance: false, code: "resolved", status: 0, field: "" };
		} catch (e) {
			return { instance: e instanceof UpbrokerError, code: e.code, status: e.status, field: e.field || "" };
		}
	})()`)
	want := result{true, "unsupported_type", 415, "content_type"}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if objs := s.objects(t); len(objs) != 0 {
		t.Errorf("store holds %v", objs)
	}
}
