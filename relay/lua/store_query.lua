-- store_query.lua - one page of a COF query (store.c, query.c).
--
-- ARGV: mode, a, b, cursor, limit, budget, rrtypes ("" or ",1,28,"),
--   tf_after, tf_before, tl_after, tl_before, now, expiry (",1=3600,..,"),
--   sensors (1: map sensor ids to names), cursor id (see below)
-- mode "name": the triples of name a (hash n:<a>).
-- mode "fwd"/"rev": the names in ix:fwd/ix:rev from a to b (lex ranges),
--   each with all its triples (wildcards).
-- mode "ip": members of ix:ip from a to b (an address or a CIDR range).
-- mode "rd": members of ix:rd from a to b (names pointing at a name).
-- Returns {next cursor or "", name1, field1, value1, ...}: at most limit
-- triples, having looked at no more than budget index entries; the
-- cursor resumes exactly after the last triple returned.
-- With a cursor id (dribble clients want a number), the cursor given is
-- a number from an earlier page, kept in cur:<number> for an hour, and
-- the next cursor is stored as cur:<cursor id> and returned as the id.
local mode, A, B, cursor = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local limit, budget = tonumber(ARGV[5]), tonumber(ARGV[6])
local types = ARGV[7]
local tfa, tfb, tla, tlb = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local now, expiry, want_sensors = tonumber(ARGV[12]), ARGV[13], ARGV[14] == '1'
local cursor_id = ARGV[15]
if cursor_id ~= '' and cursor ~= '' then
  cursor = redis.call('GET', 'cur:' .. cursor)
  if not cursor then return redis.error_reply('BADCURSOR unknown or expired cursor') end
end
local out = {''}
local got = 0
local names = {}

local function sensors(ss)
  local r = {}
  for id in string.gmatch(ss, '(%d+)') do
    local nm = names[id]
    if not nm then
      nm = redis.call('HGET', 'st:sname', id) or id
      names[id] = nm
    end
    r[#r + 1] = nm
  end
  return table.concat(r, ',')
end

-- 1 when the triple (field f, value v) passes the filters
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
  out[#out + 1] = name
  out[#out + 1] = f
  if want_sensors then
    local head, ss = string.match(v, '^(%d+ %d+ %d+) (.*)$')
    v = head .. ' ' .. sensors(ss)
  else
    v = string.match(v, '^(%d+ %d+ %d+)')
  end
  out[#out + 1] = v
  got = got + 1
end

-- the triples of one name after field `after` ("" for all); returns the
-- last field looked at when the page filled up inside this name (resume
-- after it), or nil when the name is done
local function one_name(name, after)
  local h = redis.call('HGETALL', 'n:' .. name)
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

local function run()
if mode == 'name' then
  out[1] = one_name(A, cursor) or ''
  return out
end

-- index modes: cursor is "<member>\n<field>" (inside a name) or "<member>"
local key = ({fwd = 'ix:fwd', rev = 'ix:rev', ip = 'ix:ip', rd = 'ix:rd'})[mode]
local min = '[' .. A
local pending, pfield = nil, ''
if cursor ~= '' then
  local m, f = string.match(cursor, '^(.-)\n(.*)$')
  if m then pending, pfield = m, f else pending = cursor end
  min = '(' .. (m or cursor)
end

-- the name of an index member, and the one field it stands for (or nil)
local function member(m)
  if mode == 'fwd' then return m, nil end
  if mode == 'rev' then
    local l = {}
    for lab in string.gmatch(m, '[^.]+') do table.insert(l, 1, lab) end
    return table.concat(l, '.'), nil
  end
  if mode == 'ip' then
    local ty, rd, nm = string.match(m, '^%S+ (%d+) (%S+) (.*)$')
    return nm, ty .. ' ' .. rd
  end
  local rd, ty, nm = string.match(m, '^(%S+) (%d+) (.*)$')
  return nm, ty .. ' ' .. rd
end

local function visit(m, after)
  local nm, f = member(m)
  if not nm then return nil end
  if not f then return one_name(nm, after) end
  budget = budget - 1
  local v = redis.call('HGET', 'n:' .. nm, f)
  if v and keep(f, v) then emit(nm, f, v) end
  return nil
end

if pending and pfield ~= '' then
  local stop = visit(pending, pfield)
  if stop then out[1] = pending .. '\n' .. stop; return out end
end
local last = pending
while true do
  local ms = redis.call('ZRANGEBYLEX', key, min, '[' .. B, 'LIMIT', 0, 200)
  if #ms == 0 then return out end
  for _, m in ipairs(ms) do
    if got >= limit or budget <= 0 then
      out[1] = last
      return out
    end
    local stop = visit(m, '')
    if stop then out[1] = m .. '\n' .. stop; return out end
    last = m
  end
  min = '(' .. ms[#ms]
end
end

run()
if cursor_id ~= '' and out[1] ~= '' then
  redis.call('SET', 'cur:' .. cursor_id, out[1], 'EX', 3600)
  out[1] = cursor_id
end
return out
