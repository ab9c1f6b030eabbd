// Package security holds no code of its own: its tests prove, end to end,
// that a broker put on the internet holds up.
//
//   - hostile_test.go sends more than 60 hostile requests (bad types, huge
//     numbers, Unicode tricks, path traversal, duplicate keys, deep nesting,
//     10 MB bodies, forged and foreign tickets, forged JWTs, near-miss API
//     keys, header injection through metadata) to a broker with auth on,
//     built as `upbroker serve` builds it, once over the file driver and
//     once over a real MinIO. Every row checks the status and the error
//     code; afterwards the store holds only what the legitimate rows made,
//     no request was answered with a 5xx, and no key, token or ticket
//     reached the logs.
//   - secure_test.go runs the real binary with testdata/secure.yaml: no
//     credential is 401, a valid key is 201, and the 61st grant in a
//     minute is 429 with Retry-After.
//   - proxy_test.go shows that an anonymous caller cannot escape its
//     per-IP limit with X-Forwarded-For or X-Real-IP: no proxy is
//     trusted unless server.trusted_proxies says so.
//   - redis_test.go runs two broker instances against one real Redis:
//     2×N parallel grants against a limit of N give exactly N, and a Redis
//     outage follows rate_limit.on_store_error.
//
// Run them with `UPBROKER_INTEGRATION=1 go test ./security/`; under that
// variable a missing server (MinIO, Redis) fails instead of skipping.
package security
