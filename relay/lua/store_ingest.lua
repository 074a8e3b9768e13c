-- store_ingest.lua - adds a batch of records to the COF store (store.c).
-- One call per batch; runs atomically, so a batch is stored whole or not.
--
-- ARGV[1] applied-marker key, ARGV[2] boot id, ARGV[3] batch sequence,
-- then 14 arguments per entry (records of the batch with the same triple
-- and sensor are merged into one entry by the relay):
--   name, rrtype (decimal), rdata, time_first, time_last, count, sensor,
--   records merged, reversed name, forward bucket key, suffix bucket,
--   index key ("" for none: ix:ip or a d: bucket), index member prefix,
--   bailiwick ("" when unknown)
-- Keys (README.md, "Store schema"):
--   n:<name>   hash "<rrtype> <rdata>" -> "<tf> <tl> <count> |<sid>|<sid>|[ <bailiwick>]"
--   f:<hash>   zset names, bucketed by a hash of the first label (www.*)
--   r:<zone>   zset reversed names, bucketed by their last two labels
--   ix:rb      zset the r: buckets (for *.com)
--   ix:ip      zset "<4|6><hex address> <rrtype> <rdata> <name>"
--   d:<hash>   zset "<rdata name> <rrtype> <name>", bucketed by a hash
--   st:info    hash records, triples, names, sensor_seq
--   st:sensor  hash sensor -> records; st:sid sensor -> id; st:sname id -> sensor
-- A batch the relay sends again after a lost reply is recognised by
-- (boot id, sequence) and not applied twice.
local mark = ARGV[1]
local prev = redis.call('GET', mark)
if prev then
  local pb, ps = string.match(prev, '^(%S+) (%d+)$')
  if pb == ARGV[2] and tonumber(ps) >= tonumber(ARGV[3]) then return 0 end
end
local sid, per = {}, {}
local recs, newt, newn = 0, 0, 0
local n = #ARGV
local i = 4
while i + 13 <= n do
  local name, ty, rd = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local tf, tl, c = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5])
  local s, nrec = ARGV[i + 6], tonumber(ARGV[i + 7])
  local bw = ARGV[i + 13]
  i = i + 14
  local id = sid[s]
  if not id then
    id = redis.call('HGET', 'st:sid', s)
    if not id then
      id = tostring(redis.call('HINCRBY', 'st:info', 'sensor_seq', 1))
      redis.call('HSET', 'st:sid', s, id)
      redis.call('HSET', 'st:sname', id, s)
    end
    id = id .. '|'
    sid[s] = id
  end
  per[s] = (per[s] or 0) + nrec
  recs = recs + nrec
  local key = 'n:' .. name
  local f = ty .. ' ' .. rd
  local v = redis.call('HGET', key, f)
  if v then
    local otf, otl, oc, ss, obw = string.match(v, '^(%d+) (%d+) (%d+) (%S+) ?(.*)$')
    otf, otl, oc = tonumber(otf), tonumber(otl), tonumber(oc)
    if otf < tf then tf = otf end
    if otl > tl then tl = otl end
    if not string.find(ss, '|' .. id, 1, true) then ss = ss .. id end
    if obw ~= '' then bw = obw end
    if bw ~= '' then bw = ' ' .. bw end
    redis.call('HSET', key, f, string.format('%d %d %d %s%s', tf, tl, oc + c, ss, bw))
  else
    if bw ~= '' then bw = ' ' .. bw end
    redis.call('HSET', key, f, string.format('%d %d %d |%s%s', tf, tl, c, id, bw))
    newt = newt + 1
    if redis.call('ZADD', ARGV[i - 5], 0, name) == 1 then
      -- a new name: the suffix index and its bucket list too
      newn = newn + 1
      redis.call('ZADD', 'r:' .. ARGV[i - 4], 0, ARGV[i - 6])
      redis.call('ZADD', 'ix:rb', 0, ARGV[i - 4])
    end
    if ARGV[i - 3] ~= '' then redis.call('ZADD', ARGV[i - 3], 0, ARGV[i - 2] .. ' ' .. name) end
  end
end
for s, c in pairs(per) do redis.call('HINCRBY', 'st:sensor', s, c) end
redis.call('HINCRBY', 'st:info', 'records', recs)
if newt > 0 then redis.call('HINCRBY', 'st:info', 'triples', newt) end
if newn > 0 then redis.call('HINCRBY', 'st:info', 'names', newn) end
redis.call('SET', mark, ARGV[2] .. ' ' .. ARGV[3])
return recs
