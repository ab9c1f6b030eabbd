-- wrk script for upbench: POSTs one JSON body (from UPBENCH_BODY) with an
-- optional API key, and prints one machine-readable summary line.
wrk.method = "POST"
wrk.body = os.getenv("UPBENCH_BODY") or "{}"
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("UPBENCH_KEY")
if key and key ~= "" then
  wrk.headers["X-API-Key"] = key
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'UPBENCH {"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max))
end
