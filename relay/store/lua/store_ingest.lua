-- store_ingest.lua - adds a batch of records to the COF store (store.c).
-- One call per batch; runs atomically, so a batch is stored whole or not.
--
-- ARGV[1] applied-marker key, ARGV[2] boot id, ARGV[3] batch sequence,
-- ARGV[4] a unit's marker key ("" for none) and ARGV[5] its ids (d4-core
-- queue batches, stored as one call: after a crash the same batch, read
-- again from the queue's processing list, is recognised by the ids the
-- marker keeps and not applied twice), ARGV[6] the key prefix of the
-- store's shard ("" on one server; "{<tag>}" on a cluster, where every key
-- a call touches shares the tag, so that it is in one slot), ARGV[7] "1"
-- on a cluster: every key is read before anything is written, so that a
-- slot being migrated (a key already gone) fails the call before it wrote
-- anything and the relay sends it again; KEYS[1] the marker again (what a
-- cluster routes the call by); ARGV[8] the number M of address index
-- members that follow (a cluster: the address index is sharded by address
-- prefix, so a triple's member goes to the part of its address's shard,
-- added at each sighting, as that shard cannot tell a new triple; "0" on
-- one server, where the triple's own entry adds it); ARGV[9 .. 8 + M] the
-- members; then 13 arguments per entry (records of the batch with the same triple
-- and sensor are merged into one entry by the relay, which also composes
-- every key and member: building strings in this Lua costs more than
-- passing them):
--   "n:<name>", "<rrtype> <rdata>", "<time_first> <time_last> <count>",
--   sensor, records merged, name, suffix index member (the reversed name;
--   with r-rel the part from the dot after its bucket, "." for the
--   bucket's own name), forward bucket key ("" for
--   an error line: key "e:<name>", field "<rrtype> <rcode>", no indexes),
--   "r:<suffix bucket>", suffix bucket, index key ("" for none: ix:ip or
--   a d: bucket), index member, bailiwick ("" when unknown)
-- Keys (docs/guide.md, "Store schema"), each after the prefix:
--   n:<name>   hash "<rrtype> <rdata>" -> "<tf> <tl> <count> |<sid>|<sid>|[ <bailiwick>]"
--   e:<name>   hash "<rrtype> <rcode>" -> the same: error lines (ingest.keep_errors)
--   f:<hash>   zset names, bucketed by a hash of the first label (www.*)
--   r:<zone>   zset reversed names, bucketed by their last two labels (with
--              the layout word r-rel, the part from the dot after <zone>)
--   ix:rb      zset the r: buckets (for *.com)
--   ix:ip      zset "<4|6><hex address> <name>" (a store without the layout
--              word ip-name: "<4|6><hex> <rrtype> <rdata> <name>"; a cluster:
--              in the shard of the address's /24 or /48, not the name's)
--   d:<hash>   zset "<rdata name> <rrtype> <name>", bucketed by a hash
--   st:info    hash records, triples, names, errors, sensor_seq
--   st:sensor  hash sensor -> records; st:sid sensor -> id; st:sname id -> sensor
-- A batch the relay sends again after a lost reply is recognised by
-- (boot id, sequence) and not applied twice.
local mark = ARGV[1]
local prev = redis.call('GET', mark)
if prev then
  local pb, ps = string.match(prev, '^(%S+) (%d+)$')
  if pb == ARGV[2] and tonumber(ps) >= tonumber(ARGV[3]) then return 0 end
end
local CMAX = 9007199254740991
local umark = ARGV[4]
local P = ARGV[6]
local n = #ARGV
local M = tonumber(ARGV[8])
local FIRST = 9 + M
if ARGV[7] == '1' then
  local ks = {P .. 'st:sid', P .. 'st:info', P .. 'st:sensor', P .. 'st:sname', P .. 'ix:rb'}
  if umark ~= '' then ks[#ks + 1] = umark end
  if M > 0 then ks[#ks + 1] = P .. 'ix:ip' end
  for i = FIRST, n - 12, 13 do
    ks[#ks + 1] = ARGV[i]
    if ARGV[i + 7] ~= '' then ks[#ks + 1] = ARGV[i + 7]; ks[#ks + 1] = ARGV[i + 8] end
    if ARGV[i + 10] ~= '' then ks[#ks + 1] = ARGV[i + 10] end
    if #ks > 500 then redis.call('EXISTS', unpack(ks)); ks = {} end
  end
  if #ks > 0 then redis.call('EXISTS', unpack(ks)) end
end
-- the unit marker keeps the last 32 ids applied (STORE_UNIT_IDS_KEPT),
-- newest first: the queue consumer has at most 16 batches in flight, and
-- reads each again on its own after a crash. ARGV[5] holds the ids of the
-- units this call stores (one, or several batches that followed each
-- other): they were applied together or not at all
local ucur = umark ~= '' and redis.call('GET', umark) or nil
if ucur then
  local have = ' ' .. ucur .. ' '
  for id in string.gmatch(ARGV[5], '%S+') do
    if string.find(have, ' ' .. id .. ' ', 1, true) then return 0 end
  end
end
local sid, per = {}, {}
local recs, newt, newn, newe = 0, 0, 0, 0
-- index entries, written at the end with one ZADD per key: the per-call
-- cost of redis.call is most of a new triple's cost
local zadds, rbs = {}, {}
local function zadd(k, m)
  local t = zadds[k]
  if not t then t = {}; zadds[k] = t end
  t[#t + 1] = 0
  t[#t + 1] = m
end
-- Reads first, writes after: an entry Redis cannot take (its key holds
-- another type) is reported before anything is written, as "BAD <entry>
-- <error>", and the relay sets that one entry aside and sends the rest
-- again (a script error would keep the writes made before it).
-- An entry whose times and count are not three numbers of at most 19
-- digits (an int64's), or whose record count is not one, is refused so
-- too (the relay never builds one); they are read here, once.
local old, latest, htf, htl, hc = {}, {}, {}, {}, {}
local i = FIRST
local function bad(err) return 'BAD ' .. tostring((i - FIRST) / 13) .. ' ' .. err end
while i + 12 <= n do
  local tf, tl, c = string.match(ARGV[i + 2], '^(%d+) (%d+) (%d+)$')
  if not tf or #tf > 19 or #tl > 19 or #c > 19 then
    return bad('ERR malformed entry: its times and count are not three numbers')
  end
  if #ARGV[i + 4] > 19 or not string.match(ARGV[i + 4], '^%d+$') then
    return bad('ERR malformed entry: its record count is not a number')
  end
  htf[i], htl[i], hc[i] = tonumber(tf), tonumber(tl), tonumber(c)
  local v = redis.pcall('HGET', ARGV[i], ARGV[i + 1])
  if type(v) == 'table' and v.err then
    if not string.find(v.err, 'WRONGTYPE', 1, true) then return redis.error_reply(v.err) end
    return bad(v.err)
  end
  old[i] = v
  i = i + 13
end
i = FIRST
while i + 12 <= n do
  local key, f, head, s, nrec = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4])
  local id = sid[s]
  if not id then
    id = redis.call('HGET', P .. 'st:sid', s)
    if not id then
      id = tostring(redis.call('HINCRBY', P .. 'st:info', 'sensor_seq', 1))
      redis.call('HSET', P .. 'st:sid', s, id)
      redis.call('HSET', P .. 'st:sname', id, s)
    end
    id = id .. '|'
    sid[s] = id
  end
  per[s] = (per[s] or 0) + nrec
  recs = recs + nrec
  local bw = ARGV[i + 12]
  -- what this batch wrote to the triple already (another sensor's entry
  -- for it), else what was there before the batch
  local kf = key .. '\n' .. f
  local v = latest[kf]
  if v == nil then v = old[i] end
  if v then
    local otf, otl, oc, ss, obw = string.match(v, '^(%-?%d+) (%-?%d+) (%-?%d+) (%S+) ?(.*)$')
    local tf, tl, c = htf[i], htl[i], hc[i]
    if not otf then
      -- a value this script cannot read (written by an older relay): the
      -- triple starts again from this batch rather than stop every batch
      otf, otl, oc, ss, obw = tf, tl, 0, '|', ''
    end
    otf, otl, oc = tonumber(otf), tonumber(otl), tonumber(oc)
    -- counts saturate at 2^53 - 1, exact in Lua's doubles; a negative one
    -- is what an older relay's overflow wrote: saturated too
    if oc < 0 or oc > CMAX then oc = CMAX end
    if otf < tf then tf = otf end
    if otl > tl then tl = otl end
    if not string.find(ss, '|' .. id, 1, true) then ss = ss .. id end
    if obw ~= '' then bw = obw end
    if bw ~= '' then bw = ' ' .. bw end
    local sum = oc + c
    if sum > CMAX then sum = CMAX end
    local nv = string.format('%d %d %d %s%s', tf, tl, sum, ss, bw)
    redis.call('HSET', key, f, nv)
    latest[kf] = nv
  else
    local nv = head .. ' |' .. id
    if bw ~= '' then nv = nv .. ' ' .. bw end
    redis.call('HSET', key, f, nv)
    latest[kf] = nv
    if ARGV[i + 7] == '' then
      newe = newe + 1 -- an error line: no indexes
    else
      newt = newt + 1
      if redis.call('ZADD', ARGV[i + 7], 0, ARGV[i + 5]) == 1 then
        -- a new name: the suffix index and its bucket list too
        newn = newn + 1
        zadd(ARGV[i + 8], ARGV[i + 6])
        local rb = ARGV[i + 9]
        if not rbs[rb] then rbs[rb] = true; zadd(P .. 'ix:rb', rb) end
      end
      if ARGV[i + 10] ~= '' then zadd(ARGV[i + 10], ARGV[i + 11]) end
    end
  end
  i = i + 13
end
for j = 9, 8 + M do zadd(P .. 'ix:ip', ARGV[j]) end
for k, t in pairs(zadds) do
  for j = 1, #t, 7000 do
    redis.call('ZADD', k, unpack(t, j, math.min(j + 6999, #t)))
  end
end
local info = P .. 'st:info'
for s, c in pairs(per) do redis.call('HINCRBY', P .. 'st:sensor', s, c) end
redis.call('HINCRBY', info, 'records', recs)
if newt > 0 then redis.call('HINCRBY', info, 'triples', newt) end
if newn > 0 then redis.call('HINCRBY', info, 'names', newn) end
if newe > 0 then redis.call('HINCRBY', info, 'errors', newe) end
redis.call('SET', mark, ARGV[2] .. ' ' .. ARGV[3])
if umark ~= '' then
  local ids = {}
  for id in string.gmatch(ARGV[5], '%S+') do table.insert(ids, 1, id) end
  for id in string.gmatch(ucur or '', '%S+') do
    if #ids >= 32 then break end
    ids[#ids + 1] = id
  end
  redis.call('SET', umark, table.concat(ids, ' '))
end
return recs
