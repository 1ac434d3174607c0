-- GET /api/v1/tickets/ (the first page of the caller's list) with a DRF token.
--   wrk -s bench/wrk/tickets.lua URL -- TOKEN        (run from the repository root)
dofile("bench/wrk/report.lua")

local request_text

function init(args)
   request_text = wrk.format("GET", "/api/v1/tickets/", {
      ["Authorization"] = "Token " .. args[1],
      ["Accept"] = "application/json",
   })
end

function request()
   return request_text
end
