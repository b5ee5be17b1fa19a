-- Mixed reads for wrk (benchmarks/bench_server.py --load wrk), with latency percentiles per kind.
--
--   wrk -t 50 -c 50 -d 30s --timeout 120s -s benchmarks/wrk_mixed.lua http://127.0.0.1:PORT -- requests.tsv
--
-- requests.tsv: one request a line, "kind<TAB>method<TAB>path-and-query<TAB>json body (or empty)".
-- Each request picks a kind at random, then one of that kind's requests at random (as the
-- Python clients do), so every kind gets the same share of requests.
--
-- wrk's own latency histogram mixes every kind, and its response() hook is not told which
-- connection answered. Run with as many threads as connections (-t = -c): each thread then has
-- one connection with one request in flight, so a thread's request() and response() alternate,
-- and the time between them is that request's latency. The clock is clock_gettime(MONOTONIC)
-- through LuaJIT's ffi (the Lua wrk embeds has no wall clock finer than a second).
-- done() merges the threads' latencies and prints one line: "LENSVAULT_WRK <json>". What a
-- thread keeps is in flat arrays (one entry per answered request): wrk 4.1's thread:get
-- crashes copying a table of tables.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } lv_timespec;
int clock_gettime(int clk_id, lv_timespec *tp);
]]
local ts = ffi.new("lv_timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_number", thread_count)
  table.insert(threads, thread)
end

local requests = {}
-- Globals, so that done() can read them with thread:get: the kinds' names, and per answered
-- request its latency in seconds, its kind's number and whether its status was not 200.
kinds, lat, kind_of, bad = {}, {}, {}, {}
local kind_number = {}

function init(args)
  if #args < 1 then
    error("usage: wrk ... -s wrk_mixed.lua URL -- requests.tsv")
  end
  for line in io.lines(args[1]) do
    local kind, method, path, body = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)\t?(.*)$")
    if kind then
      if requests[kind] == nil then
        requests[kind] = {}
        table.insert(kinds, kind)
        kind_number[kind] = #kinds
      end
      local headers = nil
      if body == "" then
        body = nil
      else
        headers = { ["Content-Type"] = "application/json" }
      end
      table.insert(requests[kind], wrk.format(method, path, headers, body))
    end
  end
  if #kinds == 0 then
    error("no requests in " .. args[1])
  end
  math.randomseed((thread_number or 0) * 7919 + os.time())
end

local current_kind, started = nil, 0

function request()
  current_kind = kinds[math.random(#kinds)]
  local list = requests[current_kind]
  started = now()
  return list[math.random(#list)]
end

function response(status, headers, body)
  if current_kind == nil then
    return
  end
  local n = #lat + 1
  lat[n] = now() - started
  kind_of[n] = kind_number[current_kind]
  bad[n] = (status ~= 200) and 1 or 0
  current_kind = nil
end

local function percentile(sorted, q)
  if #sorted == 0 then
    return nil
  end
  -- the same index as bench_server.py's: int(n * q), 0-based
  local i = math.floor(#sorted * q)
  if i > #sorted - 1 then
    i = #sorted - 1
  end
  return sorted[i + 1]
end

local function ms(x)
  if x == nil then
    return "null"
  end
  return string.format("%.1f", x * 1000)
end

function done(summary, latency, requests_)
  local merged, merged_errs, names = {}, {}, {}
  for _, thread in ipairs(threads) do
    local t_kinds, t_lat, t_kind_of, t_bad = thread:get("kinds"), thread:get("lat"), thread:get("kind_of"),
      thread:get("bad")
    for i, v in ipairs(t_lat) do
      local kind = t_kinds[t_kind_of[i]]
      if merged[kind] == nil then
        merged[kind], merged_errs[kind] = {}, 0
        table.insert(names, kind)
      end
      local into = merged[kind]
      into[#into + 1] = v
      merged_errs[kind] = merged_errs[kind] + t_bad[i]
    end
  end
  table.sort(names)
  local parts = {}
  for _, kind in ipairs(names) do
    local v = merged[kind]
    table.sort(v)
    table.insert(parts, string.format('"%s": {"n": %d, "errors": %d, "p50_ms": %s, "p99_ms": %s, "max_ms": %s}',
      kind, #v, merged_errs[kind], ms(percentile(v, 0.5)), ms(percentile(v, 0.99)), ms(v[#v])))
  end
  local e = summary.errors
  io.write(string.format('LENSVAULT_WRK {"duration_s": %.3f, "requests": %d, "socket_errors": {"connect": %d, '
    .. '"read": %d, "write": %d, "timeout": %d}, "non_2xx_3xx": %d, "kinds": {%s}}\n',
    summary.duration / 1e6, summary.requests, e.connect, e.read, e.write, e.timeout, e.status,
    table.concat(parts, ", ")))
end
