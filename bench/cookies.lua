-- wrk script: one request per session cookie listed in $COOKIES (one "name=value" per line),
-- in turn from line $OFFSET + 1, wrapping around; every request with the bench User-Agent
-- the sessions are bound to.
local cookies = {}
for line in io.lines(os.getenv("COOKIES")) do cookies[#cookies + 1] = line end
local i = tonumber(os.getenv("OFFSET") or "0") % #cookies

request = function()
  i = i % #cookies + 1
  return wrk.format(nil, nil, { ["Cookie"] = cookies[i], ["User-Agent"] = "bench" })
end
