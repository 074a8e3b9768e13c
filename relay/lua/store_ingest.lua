-- store_ingest.lua - adds a batch of records to the COF store (store.c).
-- One call per batch; runs atomically, so a batch is stored whole or not.
--
-- ARGV[1] applied-marker key, ARGV[2] boot id, ARGV[3] batch sequence,
-- then 10 arguments per record:
--   name, reversed name, rrtype (decimal), rdata, time_first, time_last,
--   count, sensor, index key ("" for none: ix:ip or ix:rd), index prefix
-- Keys (see README "Store schema"):
--   n:<name>  hash  "<rrtype> <rdata>" -> "<tf> <tl> <count> |<sid>|<sid>|"
--   ix:fwd    zset  names (lex), ix:rev reversed names (lex)
--   ix:ip     zset  "<4|6><hex address> <rrtype> <rdata> <name>" (lex)
--   ix:rd     zset  "<rdata name> <rrtype> <name>" (lex)
--   st:info   hash  records, triples, names, sensor_seq
--   st:sensor hash  sensor -> records; st:sid sensor -> id; st:sname id -> sensor
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
while i + 9 <= n do
  local name, rev, ty, rd = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local tf, tl, c = tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6])
  local s, ixk, ixp = ARGV[i + 7], ARGV[i + 8], ARGV[i + 9]
  i = i + 10
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
  per[s] = (per[s] or 0) + 1
  recs = recs + 1
  local key = 'n:' .. name
  local f = ty .. ' ' .. rd
  local v = redis.call('HGET', key, f)
  if v then
    local otf, otl, oc, ss = string.match(v, '^(%d+) (%d+) (%d+) (.*)$')
    otf, otl, oc = tonumber(otf), tonumber(otl), tonumber(oc)
    if otf < tf then tf = otf end
    if otl > tl then tl = otl end
    if not string.find(ss, '|' .. id, 1, true) then ss = ss .. id end
    redis.call('HSET', key, f, string.format('%d %d %d %s', tf, tl, oc + c, ss))
  else
    if redis.call('HSET', key, f, string.format('%d %d %d |%s', tf, tl, c, id)) == 1 then
      newt = newt + 1
      if redis.call('HLEN', key) == 1 then
        newn = newn + 1
        redis.call('ZADD', 'ix:fwd', 0, name)
        redis.call('ZADD', 'ix:rev', 0, rev)
      end
      if ixk ~= '' then redis.call('ZADD', ixk, 0, ixp .. ' ' .. name) end
    end
  end
end
for s, c in pairs(per) do redis.call('HINCRBY', 'st:sensor', s, c) end
redis.call('HINCRBY', 'st:info', 'records', recs)
if newt > 0 then redis.call('HINCRBY', 'st:info', 'triples', newt) end
if newn > 0 then redis.call('HINCRBY', 'st:info', 'names', newn) end
redis.call('SET', mark, ARGV[2] .. ' ' .. ARGV[3])
return recs
