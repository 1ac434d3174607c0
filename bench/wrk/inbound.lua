-- POST /api/v1/inbound/messages/: an integration pushing customer messages (channels_in.api.inbound.parse_api_payload).
--   wrk -s bench/wrk/inbound.lua URL -- TOKEN RUN_TAG REPLY_SHARE     (run from the repository root)
-- Every request has a unique "id" (RUN_TAG-thread-counter), so each stores one envelope and one message.
-- Most come from new customers opening a conversation (an order question, its own thread_key); REPLY_SHARE
-- of them continue an earlier conversation of this thread: same customer, same thread_key.
dofile("bench/wrk/report.lua")

local headers, tag, reply_share
local counter = 0
local opened = 0 -- conversations this thread opened
local conversations = {} -- ring of the last RING of them: {customer, thread_key}
local RING = 256
local REPLY_LAG = 32 -- only reply to conversations opened this many requests ago: their first message is in

local SUBJECTS = {"Order not delivered", "Wrong size in my parcel", "Refund for a cancelled order",
                  "Cannot log in to my account", "Invoice address is wrong"}
local NAMES = {"Ivan Petrov", "Anna Schmidt", "Maria Garcia", "John Smith", "Li Wei", "Fatima Khan"}

function init(args)
   headers = {["Authorization"] = "Token " .. args[1], ["Content-Type"] = "application/json"}
   tag = args[2] .. "-" .. thread_number -- set by setup() in report.lua
   reply_share = tonumber(args[3] or "0.2")
   math.randomseed(os.time() + thread_number)
end

local function payload(id, customer, name, subject, text, thread_key)
   return string.format(
      '{"id": "%s", "customer": {"id": "%s", "name": "%s", "locale": "en"}, "subject": "%s", ' ..
      '"text": "%s", "thread_key": "%s"}', id, customer, name, subject, text, thread_key)
end

function request()
   counter = counter + 1
   local id = tag .. "-" .. counter
   local body
   if opened > REPLY_LAG and math.random() < reply_share then
      local back = math.random(0, math.min(opened, RING) - REPLY_LAG - 1)
      local earlier = conversations[1 + (opened - REPLY_LAG - back - 1) % RING]
      body = payload(id, earlier[1], "", "", "Any news on this? I still have not heard back from you.",
                     earlier[2])
   else
      local customer = "crm-" .. id
      local thread_key = "order-" .. id
      local number = 1 + counter % #SUBJECTS
      body = payload(id, customer, NAMES[1 + counter % #NAMES], SUBJECTS[number],
                     "Hello,\\n\\nI ordered on Monday (order " .. thread_key .. ") and the tracking page has " ..
                     "not changed since. Could you tell me when it will arrive?\\n\\nThank you",
                     thread_key)
      opened = opened + 1
      conversations[1 + (opened - 1) % RING] = {customer, thread_key}
   end
   return wrk.format("POST", "/api/v1/inbound/messages/", headers, body)
end
