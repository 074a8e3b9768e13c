-- store_expire.lua - deletes expired triples and their index entries
-- (store.c). A triple seen again since the sweep found it (its time_last
-- changed) is kept.
-- ARGV[1]: the key prefix of the shard ("" on one server; every key
-- below is after it); KEYS[1] a key of the shard; then 9 per entry: key (n:<name> or e:<name>), name, field,
--   time_last, forward bucket key ("" for an error line: no indexes),
--   suffix index member (the reversed name, or its part from the dot after the bucket), suffix bucket, index key ("" for none), index member
--   prefix (its trailing space included: the name follows); an index
--   key "" with a member prefix: the member is in another shard (a
--   cluster's address index), the relay removes it there
-- Returns {entries deleted, then the places (0-based) of the deleted
-- entries whose member the relay removes}.
local n, gone, gone_names, gone_errors = #ARGV, 0, 0, 0
-- index keys are sorted sets or (layout ix-tree) the pdnsrelay module's
-- trees; a store being moved to trees (pdns-relay index-trees) has both:
-- TYPE says which, once a key and call
local ixkind = {}
local function zrem(k, m)
  local t = ixkind[k]
  if not t then
    t = redis.call('TYPE', k)['ok']
    ixkind[k] = t
  end
  if t == 'pdns-tree' then return redis.call('PDNSRELAY.IXREM', k, m) end
  if t == 'none' then return 0 end
  return redis.call('ZREM', k, m)
end
local elsewhere = {}
local P = ARGV[1]
local i = 2
while i + 8 <= n do
  local key, name, f, tl = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local fk, rev, rb, ixk, ixm = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], ARGV[i + 8]
  i = i + 9
  local v = redis.call('HGET', key, f)
  if v and string.match(v, '^%d+ (%d+)') == tl and fk == '' then
    redis.call('HDEL', key, f)
    gone_errors = gone_errors + 1
  elseif v and string.match(v, '^%d+ (%d+)') == tl then
    redis.call('HDEL', key, f)
    gone = gone + 1
    if ixk ~= '' then
      zrem(ixk, ixm .. name)
    elseif ixm ~= '' then
      elsewhere[#elsewhere + 1] = (i - 11) / 9
    end
    if redis.call('EXISTS', key) == 0 then
      gone_names = gone_names + 1
      zrem(fk, name)
      zrem(P .. 'r:' .. rb, rev)
      if redis.call('EXISTS', P .. 'r:' .. rb) == 0 then zrem(P .. 'ix:rb', rb) end
    end
  end
end
local info = P .. 'st:info'
if gone > 0 then redis.call('HINCRBY', info, 'triples', -gone) end
if gone_names > 0 then redis.call('HINCRBY', info, 'names', -gone_names) end
if gone_errors > 0 then redis.call('HINCRBY', info, 'errors', -gone_errors) end
local out = {gone + gone_errors}
for _, e in ipairs(elsewhere) do out[#out + 1] = e end
return out
