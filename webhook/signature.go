package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names set on every delivery.
const (
	SignatureHeader = "Upbroker-Signature"
	EventIDHeader   = "Upbroker-Event-Id"
)

// Errors returned by Verify; test them with errors.Is.
var (
	ErrMalformedHeader   = errors.New("webhook: malformed signature header")
	ErrTimestamp         = errors.New("webhook: signature timestamp outside tolerance")
	ErrSignatureMismatch = errors.New("webhook: no signature matches")
)

// Sign computes the Upbroker-Signature header for body at time t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">". The timestamp
// is inside the MAC, so a receiver that checks freshness also stops
// replays of old deliveries.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret, ts string, body []byte) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// Verify checks an Upbroker-Signature header against the raw request body
// (read it before any JSON decoding: one changed byte fails the check).
//
// The header may carry several v1 values (a sender rotating its secret
// signs with both); any one that matches is enough. Comparison is in
// constant time. When tolerance is positive, a timestamp further than
// tolerance from now, in the past or the future, is refused with
// ErrTimestamp; five minutes is a sensible value. Unknown schemes (v0,
// v2, ...) are ignored, so a newer sender still verifies here.
func Verify(secret string, header string, body []byte, tolerance time.Duration) error {
	return verifyAt(secret, header, body, tolerance, time.Now())
}

func verifyAt(secret, header string, body []byte, tolerance time.Duration, now time.Time) error {
	if secret == "" {
		return errors.New("webhook: empty secret")
	}
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: %q is not key=value", ErrMalformedHeader, part)
		}
		switch k {
		case "t":
			if ts != "" {
				return fmt.Errorf("%w: more than one t", ErrMalformedHeader)
			}
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	if ts == "" {
		return fmt.Errorf("%w: no t", ErrMalformedHeader)
	}
	if len(sigs) == 0 {
		return fmt.Errorf("%w: no v1 signature", ErrMalformedHeader)
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: t is not a unix time: %w", ErrMalformedHeader, err)
	}
	if tolerance > 0 {
		age := now.Sub(time.Unix(unix, 0))
		if age > tolerance || age < -tolerance {
			return fmt.Errorf("%w: signed %s ago, tolerance %s", ErrTimestamp, age.Round(time.Second), tolerance)
		}
	}
	want := []byte(mac(secret, ts, body))
	matched := false
	for _, s := range sigs {
		// Check them all, so timing does not reveal which one matched.
		if hmac.Equal([]byte(strings.ToLower(s)), want) {
			matched = true
		}
	}
	if !matched {
		return ErrSignatureMismatch
	}
	return nil
}
