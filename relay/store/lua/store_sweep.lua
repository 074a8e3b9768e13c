-- store_sweep.lua - one step of the expiry sweep (store.c): scans some
-- n:<name> (triples) and e:<name> (error lines) hashes and returns the
-- entries whose rrtype has an expiry (store.expire) and whose time_last
-- is older than it.
-- ARGV: SCAN cursor, COUNT, now, expiry (",1=3600,...,"), key prefix to
-- MATCH ("" on one server; "{s*}" on a cluster, where KEYS[1], a key of a
-- shard on the node, routes the call and SCAN walks the node: every
-- shard's keys on it, which the relay tells apart by their prefix)
-- Returns {next cursor, the server's DBSIZE (what a whole SCAN walks: the
-- relay paces its steps by it), key1, field1, time_last1, ...}.
local r = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[5] .. '[ne]:*', 'COUNT', tonumber(ARGV[2]))
local now, expiry = tonumber(ARGV[3]), ARGV[4]
local out = {r[1], redis.call('DBSIZE')}
for _, k in ipairs(r[2]) do
  -- a key of another type under n: or e: (not the relay's) is passed over
  local h = redis.pcall('HGETALL', k)
  if h.err then h = {} end
  for j = 1, #h, 2 do
    -- a field or value not of the relay's form is passed over too
    local ty = string.match(h[j], '^(%d+)')
    local e = ty and string.match(expiry, ',' .. ty .. '=(%d+),')
    if e then
      local tl = tonumber(string.match(h[j + 1], '^%d+ (%d+)'))
      if tl and tl + tonumber(e) < now then
        out[#out + 1] = k
        out[#out + 1] = h[j]
        out[#out + 1] = tostring(tl)
      end
    end
  end
end
return out
