-- wrk script for bench/run: POST {} with the API token (env BENCH_TOKEN) to the URL's
-- path, and at the end one line "BENCH_RESULT {json}" with the latency percentiles in
-- microseconds and the counts, for bench/run to parse.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or "{}"
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
   wrk.headers["Authorization"] = "Bearer " .. token
end
-- More headers, one "Name: value" per line (a SigV4-signed request's).
local extra = os.getenv("BENCH_HEADERS")
if extra then
   for name, value in extra:gmatch("([^:\n]+): ([^\n]*)") do
      wrk.headers[name] = value
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"latency_us": {"min": %d, "mean": %.2f, "p50": %d, "p90": %d, "p99": %d, "p999": %d, "max": %d}, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
      summary.requests, summary.duration, summary.bytes,
      latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9), latency.max,
      e.connect, e.read, e.write, e.status, e.timeout))
end
