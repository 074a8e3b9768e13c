-- store_query.lua - one page of a COF query (store.c, query.c).
--
-- ARGV: mode, kind, key, a, b, cursor, limit, budget, rrtypes ("" or
--   ",1,28,"), tf_after, tf_before, tl_after, tl_before, now, expiry
--   (",1=3600,..,"), sensors (1: map sensor ids to names), cursor id,
--   binding (what a numeric cursor is bound to: the query), key prefix
--   of the store's shard ("" on one server; the key given is prefixed
--   already), positions ("1": each triple also carries its place in the
--   walk, for a cluster's merge of its shards' pages)
-- KEYS[1]: a key of the shard (what a cluster routes the call by)
-- mode "name": the triples of name a (hash n:<a>; kind "e": the error
--   lines of name a, hash e:<a>).
-- mode "lex": the members of zset key from a to b (lex range).
-- mode "lexn": the buckets listed in zset key from a to b, each whole
--   (zset kind-prefix .. bucket: "r:" for the suffix index).
-- mode "get" (a cluster's address index, sharded apart from the names):
--   the triples of the address index members ARGV[21], ... (kind "ip"),
--   each with its place.
-- kind says what a member is: "fwd" a name, "rev" a reversed name (each
--   with all its triples), "ip" and "rd" one triple each; "ipm" an
--   address index member given as it is ({cursor, member, ...}: the
--   triples are in the names' shards, asked next by mode "get").
-- Returns {next cursor or "", name1, field1, "tf tl count"1, sensors1,
-- bailiwick1, ...} (sensors "" unless asked for, bailiwick "" when
-- unknown; then its place when asked: "[<bucket>\t]<member>"): at most limit
-- triples, having looked at no more than budget index entries; the
-- cursor resumes exactly after the last triple returned.
-- With a cursor id (dribble clients want a number), the cursor given is
-- a number from an earlier page, kept in cur:<number> for an hour, and
-- the next cursor is stored as cur:<cursor id> and returned as the id.
local mode, kind, key, A, B, cursor = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local limit, budget = tonumber(ARGV[7]), tonumber(ARGV[8])
local types = ARGV[9]
local tfa, tfb, tla, tlb = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
local now, expiry, want_sensors = tonumber(ARGV[14]), ARGV[15], ARGV[16] == '1'
local cursor_id, binding = ARGV[17], ARGV[18]
local P, want_pos = ARGV[19], ARGV[20] == '1'
local place = ''  -- where the walk is: "[<bucket>\t]<member>"
if cursor_id ~= '' and cursor ~= '' then
  local v = redis.call('GET', P .. 'cur:' .. cursor)
  if not v then return redis.error_reply('BADCURSOR unknown or expired cursor') end
  local b, pos = string.match(v, '^(%S*) (.*)$')
  if b ~= binding then
    return redis.error_reply('BADCURSOR FOREIGN this cursor belongs to another query')
  end
  cursor = pos
end
local out = {''}
local got = 0
local names = {}

local function sensors(ss)
  local r = {}
  for id in string.gmatch(ss, '(%d+)') do
    local nm = names[id]
    if not nm then
      nm = redis.call('HGET', P .. 'st:sname', id) or id
      names[id] = nm
    end
    r[#r + 1] = nm
  end
  return table.concat(r, ',')
end

-- true when the triple (field f, value v) passes the filters
local function keep(f, v)
  local ty = string.match(f, '^(%d+)')
  if types ~= '' and not string.find(types, ',' .. ty .. ',', 1, true) then return false end
  local tf, tl = string.match(v, '^(%d+) (%d+)')
  tf, tl = tonumber(tf), tonumber(tl)
  if tfa > 0 and tf < tfa then return false end
  if tfb > 0 and tf > tfb then return false end
  if tla > 0 and tl < tla then return false end
  if tlb > 0 and tl > tlb then return false end
  if expiry ~= '' then
    local e = string.match(expiry, ',' .. ty .. '=(%d+),')
    if e and tl + tonumber(e) < now then return false end
  end
  return true
end

local function emit(name, f, v)
  local head, ss, bw = string.match(v, '^(%d+ %d+ %d+) (%S+) ?(.*)$')
  out[#out + 1] = name
  out[#out + 1] = f
  out[#out + 1] = head
  out[#out + 1] = want_sensors and sensors(ss) or ''
  out[#out + 1] = bw
  if want_pos then out[#out + 1] = place end
  got = got + 1
end

-- the triples of one name after field `after` ("" for all); returns the
-- last field looked at when the page filled up inside this name (resume
-- after it), or nil when the name is done
local hprefix = P .. ((mode == 'name' and kind == 'e') and 'e:' or 'n:')
local function one_name(name, after)
  local h = redis.call('HGETALL', hprefix .. name)
  local fs = {}
  for j = 1, #h, 2 do
    if after == '' or h[j] > after then fs[#fs + 1] = j end
  end
  table.sort(fs, function(x, y) return h[x] < h[y] end)
  local lastf = after
  for _, j in ipairs(fs) do
    if got >= limit then return lastf end
    budget = budget - 1
    if keep(h[j], h[j + 1]) then emit(name, h[j], h[j + 1]) end
    lastf = h[j]
  end
  return nil
end

-- the text of an address index key "<4|6><hex>" as inet_ntop writes it,
-- and its rrtype (record.c's fmt_ipv6: the first longest run of two or
-- more zero groups as "::", the forms ::a.b.c.d and ::ffff:a.b.c.d)
local function ip_text(k)
  if string.sub(k, 1, 1) == '4' then
    return string.format('%d.%d.%d.%d', tonumber(string.sub(k, 2, 3), 16),
      tonumber(string.sub(k, 4, 5), 16), tonumber(string.sub(k, 6, 7), 16),
      tonumber(string.sub(k, 8, 9), 16)), '1'
  end
  local w = {}
  for i = 0, 7 do w[i] = tonumber(string.sub(k, 2 + 4 * i, 5 + 4 * i), 16) end
  local best, blen, cur, clen = -1, 0, -1, 0
  for i = 0, 7 do
    if w[i] == 0 then
      if cur < 0 then cur, clen = i, 0 end
      clen = clen + 1
      if clen > blen then best, blen = cur, clen end
    else
      cur = -1
    end
  end
  if blen < 2 then best = -1 end
  local o = {}
  for i = 0, 7 do
    if best >= 0 and i >= best and i < best + blen then
      if i == best then o[#o + 1] = ':' end
    else
      if i > 0 then o[#o + 1] = ':' end
      if i == 6 and best == 0 and (blen == 6 or (blen == 5 and w[5] == 65535)) then
        o[#o + 1] = string.format('%d.%d.%d.%d', math.floor(w[6] / 256), w[6] % 256,
          math.floor(w[7] / 256), w[7] % 256)
        return table.concat(o), '28'
      end
      o[#o + 1] = string.format('%x', w[i])
    end
  end
  if best >= 0 and best + blen == 8 then o[#o + 1] = ':' end
  return table.concat(o), '28'
end

-- the name of an index member, and the one field it stands for (or nil)
local function member(m)
  if kind == 'fwd' then return m, nil end
  if kind == 'rev' then
    local l = {}
    for lab in string.gmatch(m, '[^.]+') do table.insert(l, 1, lab) end
    return table.concat(l, '.'), nil
  end
  if kind == 'ip' then
    -- "<key> <name>" (a store whose layout says ip-name: the rdata is
    -- the key's text), or "<key> <rrtype> <rdata> <name>"
    local ty, rd, nm = string.match(m, '^%S+ (%d+) (%S+) (.*)$')
    if ty then return nm, ty .. ' ' .. rd end
    local k, name = string.match(m, '^(%S+) (%S+)$')
    if not k then return nil end
    local text, t = ip_text(k)
    return name, t .. ' ' .. text
  end
  local rd, ty, nm = string.match(m, '^(%S+) (%d+) (.*)$')
  -- a master-file MX, SRV or SOA: its whole rdata, then the name (names
  -- hold no spaces)
  local full, name = string.match(nm, '^(.*) (%S+)$')
  if full then return name, ty .. ' ' .. full end
  return nm, ty .. ' ' .. rd
end

-- visits member m (its fields after `after`); returns the field to
-- resume after when the page filled inside it
local bucket_pre = ''  -- lexn: "<bucket>\t" of the bucket walked
local function visit(m, after)
  if kind == 'ipm' then
    budget = budget - 1
    out[#out + 1] = m
    got = got + 1
    return nil
  end
  place = bucket_pre .. m
  local nm, f = member(m)
  if not nm then return nil end
  if not f then return one_name(nm, after) end
  budget = budget - 1
  local v = redis.call('HGET', P .. 'n:' .. nm, f)
  if v and keep(f, v) then emit(nm, f, v) end
  return nil
end

-- walks zset k from min to max ('[' or '(' bounds); returns the cursor
-- (relative to k) when the page is full, or nil when k is done
local function walk(k, min, max, pending, pfield)
  if pending and pfield ~= '' then
    local stop = visit(pending, pfield)
    if stop then return pending .. '\n' .. stop end
  end
  local last = pending
  while true do
    local ms = redis.call('ZRANGEBYLEX', k, min, max, 'LIMIT', 0, 200)
    if #ms == 0 then return nil end
    for _, m in ipairs(ms) do
      if got >= limit or budget <= 0 then return last end
      local stop = visit(m, '')
      if stop then return m .. '\n' .. stop end
      last = m
    end
    min = '(' .. ms[#ms]
  end
end

-- splits a cursor "<member>[\n<field>]" into the walk's resume point
local function resume(c, lo)
  if c == '' then return lo, nil, '' end
  local m, f = string.match(c, '^(.-)\n(.*)$')
  if m then return '(' .. m, m, f end
  return '(' .. c, c, ''
end

local function run()
  if mode == 'name' then
    out[1] = one_name(A, cursor) or ''
    return
  end
  if mode == 'get' then
    for j = 21, #ARGV do visit(ARGV[j], '') end
    return
  end
  if mode == 'lex' then
    local min, pending, pfield = resume(cursor, '[' .. A)
    out[1] = walk(key, min, '[' .. B, pending, pfield) or ''
    return
  end
  -- lexn: cursor is "<bucket>\t<member>[\n<field>]"
  local bmin = '[' .. A
  if cursor ~= '' then
    local bucket, inner = string.match(cursor, '^(.-)\t(.*)$')
    if not bucket then return redis.error_reply('BADCURSOR malformed cursor') end
    bmin = '(' .. bucket
    local min, pending, pfield = resume(inner, '-')
    bucket_pre = bucket .. '\t'
    local c = walk(P .. (kind == 'rev' and 'r:' .. bucket or bucket), min, '+', pending, pfield)
    if c then out[1] = bucket .. '\t' .. c; return end
  end
  while true do
    local bs = redis.call('ZRANGEBYLEX', key, bmin, '[' .. B, 'LIMIT', 0, 100)
    if #bs == 0 then out[1] = ''; return end
    for _, b in ipairs(bs) do
      if got >= limit or budget <= 0 then
        out[1] = b .. '\t' -- resume at the start of bucket b
        return
      end
      bucket_pre = b .. '\t'
      local c = walk(P .. (kind == 'rev' and 'r:' .. b or b), '-', '+', nil, '')
      if c then out[1] = b .. '\t' .. c; return end
    end
    bmin = '(' .. bs[#bs]
  end
end

local err = run()
if err then return err end
if cursor_id ~= '' and out[1] ~= '' then
  redis.call('SET', P .. 'cur:' .. cursor_id, binding .. ' ' .. out[1], 'EX', 3600)
  out[1] = cursor_id
end
return out
