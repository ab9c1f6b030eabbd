package broker

import (
	"net/http"
	"time"
)

// noMetrics is used when Options.Metrics is nil, so handlers never check.
type noMetrics struct{}

func (noMetrics) Grant(string, string, string, int64)              {}
func (noMetrics) Completion(string, string, string, int64)         {}
func (noMetrics) Presign(string, string, time.Duration)            {}
func (noMetrics) BackendCall(string, string, time.Duration, error) {}
func (noMetrics) RateLimited(string)                               {}
func (noMetrics) Handler() http.Handler                            { return http.NotFoundHandler() }
