-- store_query.lua - one page of a COF query (store.c, query.c).
-- The pdnsrelay module's PDNSRELAY.QUERY (relay/store/module/query.c) is
-- this script in C, taking the same arguments and giving the same reply:
-- a change here is made there too (tests/e2e/test_store_query_module.py
-- compares the two page by page).
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
-- kind says what a member is: "fwd" a name, "rev" a reversed name, "rrev"
--   the part of a reversed name from the dot after its bucket's
--   "<tld>.<sld>" (a store whose layout says r-rel; "." for the bucket's
--   own name; each with all its triples), "ip" and "rd" one triple each; "ipm" an
--   address index member given as it is ({cursor, member, ...}: the
--   triples are in the names' shards, asked next by mode "get").
-- Returns {next cursor or "", name1, field1, value1, sensors1, ...} (the
-- value as stored, "<tf> <tl> <count> <sensor ids>[ <bailiwick>]": the
-- relay reads it, and leaves out one the store does not write; sensors
-- "" unless asked for; then its place when asked: "[<bucket>\t]<member>"): at most limit
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
local no = 1  -- #out
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
local filtered = types ~= '' or tfa > 0 or tfb > 0 or tla > 0 or tlb > 0 or expiry ~= ''
local function keep(f, v)
  if not filtered then return true end
  local ty = string.match(f, '^(%d+)')
  if types ~= '' and not string.find(types, ',' .. ty .. ',', 1, true) then return false end
  local tf, tl = string.match(v, '^(%d+) (%d+)')
  if not tl then return false end
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
  out[no + 1] = name
  out[no + 2] = f
  out[no + 3] = v
  out[no + 4] = want_sensors and sensors(string.match(v, '^%d+ %d+ %d+ (%S+)') or '') or ''
  no = no + 4
  if want_pos then no = no + 1; out[no] = place end
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

-- The field "<rrtype> <address>" an address index key "<4|6><hex>"
-- stands for, the address as inet_ntop writes it (record.c's fmt_ipv6:
-- the first longest run of two or more zero groups as "::", the forms
-- ::a.b.c.d and ::ffff:a.b.c.d). A page walks many members: the digits
-- are read as bytes and the text made in one concatenation, so that a
-- member costs no more than reading the address from a long member did.
local DEC, H, g6, o6
local function dotted(k, at) -- the IPv4 address in the 8 hex digits from at
  local a1, a2, b1, b2, c1, c2, d1, d2 = string.byte(k, at, at + 7)
  if not d2 then return nil end
  if not DEC then
    H = {[48] = 0, [49] = 1, [50] = 2, [51] = 3, [52] = 4, [53] = 5, [54] = 6, [55] = 7,
         [56] = 8, [57] = 9, [97] = 10, [98] = 11, [99] = 12, [100] = 13, [101] = 14,
         [102] = 15}
    DEC = {[0] = '0',
    '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12', '13', '14', '15', '16',
    '17', '18', '19', '20', '21', '22', '23', '24', '25', '26', '27', '28', '29', '30', '31',
    '32', '33', '34', '35', '36', '37', '38', '39', '40', '41', '42', '43', '44', '45', '46',
    '47', '48', '49', '50', '51', '52', '53', '54', '55', '56', '57', '58', '59', '60', '61',
    '62', '63', '64', '65', '66', '67', '68', '69', '70', '71', '72', '73', '74', '75', '76',
    '77', '78', '79', '80', '81', '82', '83', '84', '85', '86', '87', '88', '89', '90', '91',
    '92', '93', '94', '95', '96', '97', '98', '99', '100', '101', '102', '103', '104', '105',
    '106', '107', '108', '109', '110', '111', '112', '113', '114', '115', '116', '117', '118',
    '119', '120', '121', '122', '123', '124', '125', '126', '127', '128', '129', '130', '131',
    '132', '133', '134', '135', '136', '137', '138', '139', '140', '141', '142', '143', '144',
    '145', '146', '147', '148', '149', '150', '151', '152', '153', '154', '155', '156', '157',
    '158', '159', '160', '161', '162', '163', '164', '165', '166', '167', '168', '169', '170',
    '171', '172', '173', '174', '175', '176', '177', '178', '179', '180', '181', '182', '183',
    '184', '185', '186', '187', '188', '189', '190', '191', '192', '193', '194', '195', '196',
    '197', '198', '199', '200', '201', '202', '203', '204', '205', '206', '207', '208', '209',
    '210', '211', '212', '213', '214', '215', '216', '217', '218', '219', '220', '221', '222',
    '223', '224', '225', '226', '227', '228', '229', '230', '231', '232', '233', '234', '235',
    '236', '237', '238', '239', '240', '241', '242', '243', '244', '245', '246', '247', '248',
    '249', '250', '251', '252', '253', '254', '255'}
  end
  local h = H
  return DEC[h[a1] * 16 + h[a2]] .. '.' .. DEC[h[b1] * 16 + h[b2]] .. '.' ..
    DEC[h[c1] * 16 + h[c2]] .. '.' .. DEC[h[d1] * 16 + h[d2]]
end

local function ip6_text(k)
  if #k ~= 33 then return nil end
  g6, o6 = g6 or {}, o6 or {}
  local g = g6
  local best, blen, cur, clen = -1, 0, -1, 0
  for i = 0, 7 do
    -- each group's digits from its first that is not 0 (-1 for 0000)
    local at = 2 + 4 * i
    local c1, c2, c3 = string.byte(k, at, at + 2)
    local from = c1 ~= 48 and at or c2 ~= 48 and at + 1 or c3 ~= 48 and at + 2 or at + 3
    g[i] = from
    if from == at + 3 and string.byte(k, at + 3) == 48 then
      g[i] = -1
      if cur < 0 then cur, clen = i, 0 end
      clen = clen + 1
      if clen > blen then best, blen = cur, clen end
    else
      cur = -1
    end
  end
  if blen < 2 then best = -1 end
  if best == 0 and (blen == 6 or (blen == 5 and string.sub(k, 22, 25) == 'ffff')) then
    return (blen == 5 and '::ffff:' or '::') .. dotted(k, 26)
  end
  local o, n = o6, 0
  for i = 0, 7 do
    if best >= 0 and i >= best and i < best + blen then
      if i == best then n = n + 1; o[n] = ':' end
    else
      if i > 0 then n = n + 1; o[n] = ':' end
      n = n + 1
      o[n] = g[i] < 0 and '0' or string.sub(k, g[i], 5 + 4 * i)
    end
  end
  if best >= 0 and best + blen == 8 then n = n + 1; o[n] = ':' end
  return table.concat(o, '', 1, n)
end

local function ip_field(k)
  if string.byte(k, 1) == 52 then -- '4'
    local t = #k == 9 and dotted(k, 2)
    return t and '1 ' .. t
  end
  local t = ip6_text(k)
  return t and '28 ' .. t
end

-- the name of an index member, and the one field it stands for (or nil)
local rbucket = ''  -- rrev: the suffix bucket walked
local ip_key, ip_f    -- ip: the last address key and its field
local function member(m)
  if kind == 'fwd' then return m, nil end
  if kind == 'rev' or kind == 'rrev' then
    -- rrev: the member is the reversed name from the dot after its
    -- bucket (".www"), "." for the bucket's own name
    if kind == 'rrev' then m = m == '.' and rbucket or rbucket .. m end
    local l = {}
    for lab in string.gmatch(m, '[^.]+') do table.insert(l, 1, lab) end
    return table.concat(l, '.'), nil
  end
  if kind == 'ip' then
    -- "<key> <name>" (a store whose layout says ip-name: the rdata is
    -- the key's text), or "<key> <rrtype> <rdata> <name>"
    local sp = string.find(m, ' ', 1, true)
    if sp and not string.find(m, ' ', sp + 1, true) then
      -- the members of an address follow each other: its field once
      local k = string.sub(m, 1, sp - 1)
      if k ~= ip_key then ip_key, ip_f = k, ip_field(k) end
      if not ip_f then return nil end
      return string.sub(m, sp + 1), ip_f
    end
    local ty, rd, nm = string.match(m, '^%S+ (%d+) (%S+) (.*)$')
    if not ty then return nil end
    return nm, ty .. ' ' .. rd
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
local NP = P .. 'n:'
local function visit(m, after)
  if kind == 'ipm' then
    budget = budget - 1
    no = no + 1
    out[no] = m
    got = got + 1
    return nil
  end
  if want_pos then place = bucket_pre .. m end
  local nm, f = member(m)
  if not nm then return nil end
  if not f then return one_name(nm, after) end
  budget = budget - 1
  local v = redis.call('HGET', NP .. nm, f)
  if v and keep(f, v) then emit(nm, f, v) end
  return nil
end

-- the members of index key k from min to max, n at most: a sorted set's
-- (ZRANGEBYLEX) or, in a store whose layout says ix-tree, the pdnsrelay
-- module's tree's (the same order and bounds). A store being moved to
-- trees (pdns-relay index-trees) has both kinds: TYPE says which, once a
-- key and call.
local ixkind = {}
local function lex(k, min, max, n)
  local t = ixkind[k]
  if not t then
    t = redis.call('TYPE', k)['ok']
    ixkind[k] = t
  end
  if t == 'pdns-tree' then return redis.call('PDNSRELAY.IXRANGE', k, min, max, n) end
  if t == 'none' then return {} end
  return redis.call('ZRANGEBYLEX', k, min, max, 'LIMIT', 0, n)
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
    local ms = lex(k, min, max, 200)
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
    local lo, hi = '[' .. A, '[' .. B
    if kind == 'rrev' then
      -- the range "<bucket>.<rest>" within bucket r:<bucket>, whose
      -- members are ".<rest>" ("." is the bucket's own name, not under
      -- it; no member ends in a dot, so the low end is exclusive)
      rbucket = string.match(key, 'r:(.*)$')
      local n = #rbucket + 1
      if string.sub(A, 1, n) ~= rbucket .. '.' then
        return redis.error_reply('BADRANGE not in bucket ' .. rbucket)
      end
      A, B = string.sub(A, n), string.sub(B, n)
      lo, hi = '(' .. A, '[' .. B
    end
    local min, pending, pfield = resume(cursor, lo)
    out[1] = walk(key, min, hi, pending, pfield) or ''
    return
  end
  -- lexn: cursor is "<bucket>\t<member>[\n<field>]"; a bucket b listed
  -- in key is zset r:<b> for the suffix index, b itself otherwise
  local function bucket_key(b)
    return P .. ((kind == 'rev' or kind == 'rrev') and 'r:' .. b or b)
  end
  local bmin = '[' .. A
  if cursor ~= '' then
    local bucket, inner = string.match(cursor, '^(.-)\t(.*)$')
    if not bucket then return redis.error_reply('BADCURSOR malformed cursor') end
    bmin = '(' .. bucket
    local min, pending, pfield = resume(inner, '-')
    bucket_pre, rbucket = bucket .. '\t', bucket
    local c = walk(bucket_key(bucket), min, '+', pending, pfield)
    if c then out[1] = bucket .. '\t' .. c; return end
  end
  while true do
    local bs = lex(key, bmin, '[' .. B, 100)
    if #bs == 0 then out[1] = ''; return end
    for _, b in ipairs(bs) do
      if got >= limit or budget <= 0 then
        out[1] = b .. '\t' -- resume at the start of bucket b
        return
      end
      bucket_pre, rbucket = b .. '\t', b
      local c = walk(bucket_key(b), '-', '+', nil, '')
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
