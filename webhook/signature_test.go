package webhook

import (
	"errors"
	"strconv"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":"evt_1","type":"upload.completed"}`)
	good := Sign("s1", now, body)
	ts := strconv.FormatInt(now.Unix(), 10)
	tests := []struct {
		name      string
		secret    string
		header    string
		body      []byte
		tolerance time.Duration
		at        time.Time
		want      error // nil: verifies
	}{
		{"valid", "s1", good, body, 5 * time.Minute, now, nil},
		{"valid, spaces after commas", "s1", "t=" + ts + ", v1=" + mac("s1", ts, body), body, 5 * time.Minute, now, nil},
		{"valid, no tolerance", "s1", good, body, 0, now.Add(24 * time.Hour), nil},
		{"rotation: second v1 matches", "s1", "t=" + ts + ",v1=" + mac("old", ts, body) + ",v1=" + mac("s1", ts, body), body, time.Minute, now, nil},
		{"unknown scheme ignored", "s1", good + ",v2=abc", body, time.Minute, now, nil},
		{"tampered body", "s1", good, []byte(`{"id":"evt_2","type":"upload.completed"}`), time.Minute, now, ErrSignatureMismatch},
		{"wrong secret", "s2", good, body, time.Minute, now, ErrSignatureMismatch},
		{"timestamp changed", "s1", "t=" + strconv.FormatInt(now.Unix()+1, 10) + ",v1=" + mac("s1", ts, body), body, time.Minute, now, ErrSignatureMismatch},
		{"too old", "s1", good, body, 5 * time.Minute, now.Add(6 * time.Minute), ErrTimestamp},
		{"from the future", "s1", good, body, 5 * time.Minute, now.Add(-6 * time.Minute), ErrTimestamp},
		{"no t", "s1", "v1=" + mac("s1", ts, body), body, time.Minute, now, ErrMalformedHeader},
		{"no v1", "s1", "t=" + ts, body, time.Minute, now, ErrMalformedHeader},
		{"two t", "s1", "t=" + ts + "," + good, body, time.Minute, now, ErrMalformedHeader},
		{"t not a number", "s1", "t=yesterday,v1=00", body, time.Minute, now, ErrMalformedHeader},
		{"empty header", "s1", "", body, time.Minute, now, ErrMalformedHeader},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := verifyAt(tc.secret, tc.header, tc.body, tc.tolerance, tc.at)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"120", 2 * time.Minute},
		{"0", 0},
		{"-5", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(timeFormatHTTP), 90 * time.Second},
		{now.Add(-time.Minute).Format(timeFormatHTTP), 0},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := parseRetryAfter(tc.in, now); got != tc.want {
				t.Fatalf("parseRetryAfter(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

const timeFormatHTTP = "Mon, 02 Jan 2006 15:04:05 GMT"

func TestBackoff(t *testing.T) {
	d := &Dispatcher{opts: Options{BaseDelay: 20 * time.Second, MaxDelay: 5 * time.Minute}}
	tests := []struct {
		attempt  int
		lo, high time.Duration
	}{
		{1, 16 * time.Second, 24 * time.Second},
		{2, 32 * time.Second, 48 * time.Second},
		{4, 128 * time.Second, 192 * time.Second},
		{5, 240 * time.Second, 300 * time.Second}, // capped
		{60, 240 * time.Second, 300 * time.Second},
	}
	for _, tc := range tests {
		for range 50 {
			if got := d.backoff(tc.attempt); got < tc.lo || got > tc.high {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", tc.attempt, got, tc.lo, tc.high)
			}
		}
	}
}
