-- wrk script for bench/ingest.py: POST /api/v1/telemetry/ with unique (device, metric, ts) rows.
-- args: <tokens file> <messages per request> <values per message> <wrk threads>
-- Devices are split between wrk threads so two threads never write the same device's timestamps.
local thread_count = 0
local threads = {}

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function init(args)
  local all = {}
  for line in io.lines(args[1]) do all[#all + 1] = line end
  batch = tonumber(args[2])
  nvalues = tonumber(args[3])
  nthreads = tonumber(args[4])
  tokens, seq = {}, {}
  for i, token in ipairs(all) do
    if (i - 1) % nthreads == tid then tokens[#tokens + 1] = token; seq[#tokens] = 0 end
  end
  base = os.time() - 86400
  counter = 0
  metrics = {"temperature", "vibration", "power", "count_good", "count_total"}
end

local function message(d)
  seq[d] = seq[d] + 1
  local ms = seq[d]
  local ts = os.date("!%Y-%m-%dT%H:%M:%S", base + math.floor(ms / 1000)) .. string.format(".%03dZ", ms % 1000)
  local parts = {}
  for m = 1, nvalues do
    if m >= 4 then
      parts[m] = string.format('"%s":%d', metrics[m], ms)  -- piece counters: whole numbers
    else
      parts[m] = string.format('"%s":%d.5', metrics[m], ms % 997)
    end
  end
  return '{"ts":"' .. ts .. '","values":{' .. table.concat(parts, ",") .. '}}'
end

function request()
  counter = counter + 1
  local d = counter % #tokens + 1
  local body
  if batch == 1 then
    body = message(d)
  else
    local msgs = {}
    for i = 1, batch do msgs[i] = message(d) end
    body = '{"messages":[' .. table.concat(msgs, ",") .. ']}'
  end
  return wrk.format("POST", "/api/v1/telemetry/",
    {["Content-Type"] = "application/json", ["Authorization"] = "Device " .. tokens[d]}, body)
end

local shown = false
function response(status, headers, body)
  if status ~= 202 and not shown then
    shown = true
    io.stderr:write("first non-202 response: " .. status .. " " .. body .. "\n")
  end
end
