-- Shared by the wrk scripts of bench/serving.py: counts status codes per thread and prints, once wrk is
-- done, one line "WRK_JSON {...}" with the totals and latency percentiles (microseconds) that it parses.

local threads = {}

function setup(thread)
   thread:set("thread_number", #threads + 1)
   table.insert(threads, thread)
end

statuses = {}

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

local function json_number_map(map)
   local parts = {}
   for key, value in pairs(map) do
      table.insert(parts, string.format('"%s": %d', tostring(key), value))
   end
   return "{" .. table.concat(parts, ", ") .. "}"
end

function done(summary, latency, requests)
   local totals = {}
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses") or {}) do
         totals[status] = (totals[status] or 0) + count
      end
   end
   local percentiles = {}
   for _, p in ipairs({50, 90, 95, 99, 99.9}) do
      table.insert(percentiles, string.format('"%s": %d', tostring(p), latency:percentile(p)))
   end
   local errors = summary.errors
   io.write(string.format(
      'WRK_JSON {"duration_us": %d, "requests": %d, "bytes": %d, "statuses": %s, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"min": %d, "mean": %.1f, "max": %d, "percentiles": {%s}}}\n',
      summary.duration, summary.requests, summary.bytes, json_number_map(totals),
      errors.connect, errors.read, errors.write, errors.status, errors.timeout,
      latency.min, latency.mean, latency.max, table.concat(percentiles, ", ")))
end
