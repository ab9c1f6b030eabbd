// Package operations proves upbroker's operational features in the
// running system: the broker built as `upbroker serve` builds it (config,
// drivers, auth, rate limiter, metrics, webhook dispatcher), served on
// 127.0.0.1, with real stores (the file driver, and MinIO started by
// internal/testenv) and real receivers.
//
// Its tests cover readiness against a store that goes away and comes
// back, the Prometheus counters and histograms after real traffic (and
// that no label carries a key, a principal or a filename), signed webhook
// deliveries for each event, and the access log with its request ids.
// Every exchange with the broker is also checked against the OpenAPI
// document (internal/apitest).
//
// Graceful shutdown on SIGTERM is proved where the process is:
// cmd/upbroker's TestShutdownDuringSlowUpload runs the built binary.
//
// The package has no code of its own; it is only tests.
package operations
