-- wrk script for bench/rollout.py: every device reports downloading, downloaded, installing,
-- succeeded through POST /api/v1/device/firmware/status/.
-- args: <file of "update_id token" lines> <wrk threads>
-- Devices are split between wrk threads; a thread sends each status to all its devices before the
-- next status, so a device's reports arrive in order. After its last report a thread sends cheap
-- 405 GETs; bench/rollout.py interrupts wrk once every report's history row is written.
local thread_count = 0

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  local nthreads = tonumber(args[2])
  ids, tokens = {}, {}
  local i = 0
  for line in io.lines(args[1]) do
    if i % nthreads == tid then
      local id, token = line:match("(%d+) (%S+)")
      ids[#ids + 1] = id
      tokens[#tokens + 1] = token
    end
    i = i + 1
  end
  statuses = {"downloading", "downloaded", "installing", "succeeded"}
  total = #ids * #statuses
  sent, answered, failed = 0, 0, 0
  -- wrk calls request() once in thread 0 before the run to check it (script_verify_request) and
  -- never sends that one: give it a filler, or the first report would be lost.
  if tid == 0 then sent = -1 end
  filler = wrk.format("GET", "/api/v1/device/firmware/status/")  -- a 405 from the lean route, no database
end

function request()
  sent = sent + 1
  if sent > total + 20000 then wrk.thread:stop() end  -- an answer never came (dropped connection)
  if sent < 1 or sent > total then return filler end  -- the check above; the last answers on their way
  local d = (sent - 1) % #ids + 1
  local status = statuses[math.floor((sent - 1) / #ids) + 1]
  local body = '{"update_id":' .. ids[d] .. ',"status":"' .. status .. '","detail":""}'
  return wrk.format("POST", "/api/v1/device/firmware/status/",
    {["Content-Type"] = "application/json", ["Authorization"] = "Device " .. tokens[d]}, body)
end

function response(status, headers, body)
  if status == 405 then return end
  answered = answered + 1
  if status ~= 200 then
    failed = failed + 1
    if failed == 1 then io.stderr:write("first non-200 answer: " .. status .. " " .. body .. "\n") end
  end
  if answered >= total then wrk.thread:stop() end
end
