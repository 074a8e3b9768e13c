-- store_expire.lua - deletes expired triples and their index entries
-- (store.c). A triple seen again since the sweep found it (its time_last
-- changed) is kept.
-- ARGV: 7 per triple: name, field, time_last, forward bucket key,
--   reversed name, suffix bucket, index key ("" for none) and member
--   (8 with the member)
-- Returns the number of triples deleted.
local n, gone, gone_names = #ARGV, 0, 0
local i = 1
while i + 7 <= n do
  local name, f, tl = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local fk, rev, rb, ixk, ixm = ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7]
  i = i + 8
  local key = 'n:' .. name
  local v = redis.call('HGET', key, f)
  if v and string.match(v, '^%d+ (%d+)') == tl then
    redis.call('HDEL', key, f)
    gone = gone + 1
    if ixk ~= '' then redis.call('ZREM', ixk, ixm .. ' ' .. name) end
    if redis.call('EXISTS', key) == 0 then
      gone_names = gone_names + 1
      redis.call('ZREM', fk, name)
      redis.call('ZREM', 'r:' .. rb, rev)
      if redis.call('EXISTS', 'r:' .. rb) == 0 then redis.call('ZREM', 'ix:rb', rb) end
    end
  end
end
if gone > 0 then redis.call('HINCRBY', 'st:info', 'triples', -gone) end
if gone_names > 0 then redis.call('HINCRBY', 'st:info', 'names', -gone_names) end
return gone
