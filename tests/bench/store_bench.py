#!/usr/bin/python3
"""The COF store and query API, measured on this machine, in one run:

1. `redis-benchmark -P 64 -t set` on the same server, the baseline.
   Before each all-new import, Redis alone writing as many new keys
   (redis-benchmark HSET of random names): how much Redis itself slows
   as it grows, the baseline of the bend from N to 10 N.
2. Ingest: `pdns-relay import` of BENCH_RECORDS generated passivedns
   records (and 10x that with BENCH_SCALES=1,10) into a fresh redis-server,
   in three mixes: Zipf-like repeats as a busy sensor sees (gen_csv.py: few
   distinct triples, the relay merges most before Redis sees them); about
   63 % new triples (gen_pdns.py 0.6: a new network or a busy day, its
   distribution documented there); all new (every record a new triple).
   For each: records/s and the ratio to SET, Redis's own CPU (INFO cpu,
   sys + user) per record and per new triple, INFO used_memory per triple;
   for the ~63 % and all-new mixes the same import again through the
   pdnsrelay Redis module (build/pdnsrelay.so, loaded into the same server
   with its argument "trees"; the rows above it are the store's Lua
   script, store.module false), once into sorted sets and once into the
   module's trees (store.index "tree");
   for the all-new store also the bytes of the strings themselves (keys,
   fields, values, index members, counted by a Lua script on the server)
   and the schema's overhead beyond them. On the ~63 % mix, where Redis's
   time goes: the same store written again as plain HSET/ZADD, family by
   family (n: hashes, then each index on top), beside the script; what
   Lua itself costs (a script's arguments, a redis.call); and the
   same import with Redis's zset-max-listpack-value at 256 (index buckets
   holding long names stay listpacks: the memory it saves).
   After each all-new store (each scale): latency at that size with the
   load generator on its own core (Redis and the relay on core 1, the
   client on core 0): one Redis client's HGETALL, and wrk -t1 -c4 exact
   name and address queries. On two cores shared by wrk's threads, the
   relay and Redis, a request waits for a CPU now and then, and p99 says
   more about the scheduler than about the store.
3. Queries on that store: wrk (Debian package) with random paths, for an
   exact name, an address, a left-hand wildcard and a /24 CIDR: q/s and
   latency percentiles (target >= 10k q/s for exact lookups, p99 < 10 ms);
   then the first page of an address with 10,000 names under wrk -c1. Each
   through the query script (store.module false) and, the module built,
   through PDNSRELAY.QUERY, the two taking turns kind by kind on the same
   store: the module's rows give their ratio to the script's.
Printed as a table."""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
import benchutil  # noqa: E402
import conftest  # noqa: E402

BIN = os.environ.get("PDNS_RELAY_BIN") or conftest.BIN
MODULE = conftest.MODULE
N = int(os.environ.get("BENCH_RECORDS", "1000000"))
# BENCH_SCALES=1,10: each mix at N and at 10 N records (the bend with size)
SCALES = [int(x) for x in os.environ.get("BENCH_SCALES", "1").split(",")]
WRK_SECONDS = os.environ.get("BENCH_WRK_SECONDS", "5")
# BENCH_MIXES=all: only the all-new store at each scale (the latency rows)
MIXES = {"all": ("all new",)}.get(os.environ.get("BENCH_MIXES", ""), ("zipf", "60% new", "all new"))

STRING_BYTES = """
local total, cursor = 0, '0'
repeat
  local r = redis.call('SCAN', cursor, 'COUNT', 10000)
  cursor = r[1]
  for _, k in ipairs(r[2]) do
    total = total + #k
    local t = redis.call('TYPE', k)['ok']
    if t == 'hash' then
      for _, s in ipairs(redis.call('HGETALL', k)) do total = total + #s end
    elseif t == 'zset' then
      for _, s in ipairs(redis.call('ZRANGE', k, 0, -1)) do total = total + #s end
    elseif t == 'string' then
      total = total + #redis.call('GET', k)
    end
  end
until cursor == '0'
return total
"""


def distinct_csv(path, n):
    """n distinct triples: n/2 names under n/50 zones, each with an A
    record (its own address, 256 to a /24) and an AAAA or a TXT record
    (AAAA: 128 to a /48)."""
    names = n // 2
    t = 1795930000
    with open(path, "w") as f:
        buf = []
        for i in range(names):
            name = "host%d.z%d.example" % (i, i % (names // 25 or 1))
            ip = "10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255)
            buf.append("%d.000000||10.0.0.1||10.0.0.2||IN||%s.||A||%s||300||1\n"
                       % (t + i % 86400, name, ip))
            if i & 1:
                buf.append("%d.000000||10.0.0.1||10.0.0.2||IN||%s.||AAAA||2001:db8:%x::%x||300||1\n"
                           % (t + i % 86400, name, i >> 8, i & 0xff))
            else:
                buf.append('%d.000000||10.0.0.1||10.0.0.2||IN||%s.||TXT||"id=%d"||300||1\n'
                           % (t + i % 86400, name, i))
            if len(buf) >= 20000:
                f.write("".join(buf))
                buf = []
        f.write("".join(buf))
    return names


def redis_cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port)] + list(args), check=True,
                          capture_output=True, text=True).stdout.strip()


def used_memory(port):
    info = redis_cli(port, "INFO", "memory")
    return int(re.search(r"used_memory:(\d+)", info).group(1))


def redis_cpu(port):
    """Seconds of CPU the redis-server has used (INFO cpu: sys + user)."""
    info = redis_cli(port, "INFO", "cpu")
    return sum(float(v) for v in re.findall(r"used_cpu_(?:sys|user):([\d.]+)", info))


def resp(*args):
    out = ["*%d\r\n" % len(args)]
    for a in args:
        out.append("$%d\r\n%s\r\n" % (len(a.encode()), a))
    return "".join(out)


def plain_floor(port, work):
    """What Redis's data structures alone cost for the store just written,
    family by family: every hash field and sorted-set member written again
    into an empty server as one plain pipelined HSET or ZADD each, in
    random order (as records arrive), without scripts or reads; the n:/e:
    hashes first, then each index family on top of what is there (so each
    is measured in a keyspace of the store's size). Returns [(family, Redis
    CPU seconds)]."""
    import random
    import redis as redispy
    r = redispy.Redis(port=port, decode_responses=True)
    fams = {}
    for k in r.scan_iter(count=10000):
        t = r.type(k)
        fam = "ix:" if k.startswith("ix:") else k[:2]
        if t == "hash" and fam in ("n:", "e:"):
            fams.setdefault("n:", []).extend(resp("HSET", k, f, v)
                                             for f, v in r.hgetall(k).items())
        elif t == "zset":
            fams.setdefault(fam, []).extend(resp("ZADD", k, "0", m) for m in r.zrange(k, 0, -1))
    rnd = random.Random(7)
    redis_cli(port, "FLUSHALL")
    out = []
    for fam in ["n:"] + sorted(f for f in fams if f != "n:"):
        cmds = fams.get(fam, [])
        rnd.shuffle(cmds)
        path = os.path.join(work, "floor.resp")
        with open(path, "w") as f:
            f.write("".join(cmds))
        cpu0 = redis_cpu(port)
        with open(path) as f:
            subprocess.run(["redis-cli", "-p", str(port), "--pipe"], stdin=f, check=True,
                           capture_output=True)
        out.append((fam, redis_cpu(port) - cpu0))
    return out


def lua_floor(port):
    """What the store's script pays for Lua itself: EVALSHA calls of 500
    entries of 13 arguments each, sized as the ~63 % mix's (keys, fields,
    values, index members), into database 15, one script that only takes
    its arguments and one that adds a redis.call per entry (an HGET of a
    key that is not there). Returns (us an entry for the arguments, us a
    call), from INFO commandstats."""
    import random
    import redis as redispy
    r = redispy.Redis(port=port, db=15)
    rnd = random.Random(3)
    args = []
    for i in range(500):
        name = "%s.x%d.z%d.tld%d." % ("".join(rnd.choice("abcdefghijklmnop") for _ in range(14)),
                                     i, i % 5000, i % 40)
        args += ["n:" + name, "A 10.%d.%d.%d" % (i % 256, i >> 8, i % 200),
                 "1795930000 1795930000 1", "sensor-a", "1", name, ".x%d.%s" % (i, name[:14]),
                 "f:%04x" % i, "r:tld%d.z%d" % (i % 40, i % 5000), "tld%d.z%d" % (i % 40, i % 5000),
                 "ix:ip", "40a%06x %s" % (i, name), ""]
    per = []
    for script in ("return 1",
                   "for i = 1, #ARGV, 13 do redis.call('HGET', ARGV[i], ARGV[i + 1]) end return 1"):
        sha = r.script_load(script)
        r.config_resetstat()
        for _ in range(100):
            r.evalsha(sha, 0, *args)
        per.append(r.info("commandstats")["cmdstat_evalsha"]["usec_per_call"] / 500)
    r.flushdb()
    return per[0], per[1] - per[0]


def pin(pid, cpus):
    """Every thread of process pid onto cpus (a set)."""
    for t in os.listdir("/proc/%d/task" % pid):
        os.sched_setaffinity(int(t), cpus)


def relay_config(path, redis_url, store, http_port=0):
    """A relay that only stores (no D4, mixer or admin listener), for
    `pdns-relay import` or a query server: written to path."""
    with open(path, "w") as f:
        json.dump({"relay_id": "bench", "d4": {"enabled": False},
                   "http": {"listen": "127.0.0.1:%d" % http_port}, "redis": redis_url,
                   "store": store, "mixer": {"enabled": False}, "admin": {"enabled": False}}, f)
    return path


def bench_server(work, pinned, module=True, aof=False):
    """A redis-server for an import benchmark: AOF as aof says, the module
    loaded with its argument trees unless module is false, pinned to core
    1 when pinned."""
    extra = ["--appendonly", "yes" if aof else "no"]
    if module:
        extra += ["--loadmodule", os.path.abspath(module if isinstance(module, str)
                                                  else conftest.MODULE), "trees"]
    srv = conftest.Redis(work, extra=extra)
    srv.start()
    if pinned:
        pin(srv.proc.pid, {1})
    return srv


def redis_latency(port, keys, n=30000):
    """Latency of one HGETALL of a random stored name, Redis alone, one
    client waiting for each reply: (p50, p99, p99.9) ms."""
    import random
    import redis as redispy
    r = redispy.Redis(port=port)
    rnd = random.Random(3)
    lat = []
    for _ in range(n):
        k = keys[rnd.randrange(len(keys))]
        t = time.perf_counter()
        r.hgetall(k)
        lat.append(time.perf_counter() - t)
    lat.sort()
    return tuple(lat[int(len(lat) * q)] * 1e3 for q in (0.5, 0.99, 0.999))


def measured_import(cfg, path, port):
    """path imported into the emptied server: (records stored, seconds,
    seconds of Redis CPU, bytes of Redis memory it added)."""
    redis_cli(port, "FLUSHALL")
    mem0, cpu0 = used_memory(port), redis_cpu(port)
    stored, secs = run_import(cfg, path, port)
    return stored, secs, redis_cpu(port) - cpu0, used_memory(port) - mem0


def new_keys_rate(port, n):
    """Redis alone writing n new keys, as a new triple's n: hash is
    written: redis-benchmark -P 64 HSET of a random name (of 2e9) into the
    emptied server. Ops/s."""
    redis_cli(port, "FLUSHALL")
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-P", "64", "-n", str(n), "-r",
                          "2000000000", "-q", "hset", "n:__rand_int__", "1 192.0.2.1",
                          "1700000000 1700000100 1 |1|"], capture_output=True, text=True).stdout
    redis_cli(port, "FLUSHALL")
    return float(re.findall(r"([\d.]+) requests per second", out)[-1])


def run_import(cfg, path, port):
    t0 = time.time()
    p = subprocess.run([BIN, "import", "-c", cfg, path], capture_output=True, text=True)
    secs = time.time() - t0
    if p.returncode != 0:
        sys.exit("import failed: " + p.stderr)
    stored = int(re.search(r"(\d+) records stored", p.stderr).group(1))
    return stored, secs


def wrk(port, paths, name, work, conns=32, threads=None, cpus=None):
    pf = os.path.join(work, name + ".paths")
    with open(pf, "w") as f:
        f.write("\n".join(paths) + "\n")
    script = os.path.join(work, "paths.lua")
    with open(script, "w") as f:
        f.write('local paths = {}\n'
                'for line in io.lines(os.getenv("PATHS")) do paths[#paths + 1] = line end\n'
                'request = function() return wrk.format("GET", paths[math.random(#paths)]) end\n')
    pre = ["taskset", "-c", ",".join(map(str, sorted(cpus)))] if cpus else []
    p = subprocess.run(pre + ["wrk", "-t%d" % (threads or min(2, conns)), "-c%d" % conns,
                              "-d" + WRK_SECONDS + "s", "--latency", "-s", script,
                              "http://127.0.0.1:%d/" % port], capture_output=True, text=True,
                       env=dict(os.environ, PATHS=pf))
    out = p.stdout
    qps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p_):
        m = re.search(r"\s%s%%\s+([\d.]+)(us|ms|s)\b" % p_, out)
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return qps, pct(50), pct(90), pct(99), int(non2xx.group(1)) if non2xx else 0


def latency_rows(rows, port, http_port, cfg, n, work, label=""):
    """Latency at this store's size, without the load generator taking the
    servers' CPU: Redis (and the relay) on the second core, the client
    (wrk -t1 -c4, or one Redis client) on the first. Exact names and
    addresses of the all-new store of n records."""
    import random
    names = n // 2
    zones = max(names // 25, 1)
    rnd = random.Random(5)
    hosts = [rnd.randrange(names) for _ in range(5000)]
    me = os.sched_getaffinity(0)
    redis_pid = int(redis_cli(port, "INFO", "server").split("process_id:")[1].split()[0])
    pin(redis_pid, {1})
    os.sched_setaffinity(0, {0})
    try:
        p50, p99, p999 = redis_latency(port, ["n:host%d.z%d.example" % (i, i % zones)
                                              for i in hosts])
        rows.append(("  %d triples%s: Redis alone, HGETALL of a name" % (n, label),
                     "p99 %.2f ms" % p99, "p50 %.3f ms, p99.9 %.2f ms (one client on core 0, "
                     "Redis on core 1)" % (p50, p999)))
        relay = subprocess.Popen(["taskset", "-c", "1", BIN, "run", "-c", cfg],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        conftest.wait_port(http_port, relay)
        for what, paths in (
                ("exact name", ["/query/host%d.z%d.example" % (i, i % zones) for i in hosts]),
                ("address", ["/query/10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255)
                             for i in hosts])):
            qps, p50, p90, p99, bad = wrk(http_port, paths, "pinned", work, conns=4, threads=1,
                                          cpus={0})
            rows.append(("  %d triples%s: query %s, wrk -c4 on core 0" % (n, label, what),
                         "p99 %.2f ms" % p99, "p50 %.2f ms, %.0f q/s (relay and Redis on "
                         "core 1)%s" % (p50, qps, ", %d non-200!" % bad if bad else "")))
        relay.terminate()
        relay.wait(15)
    finally:
        os.sched_setaffinity(0, me)
        pin(redis_pid, me)


def main():
    print(benchutil.machine())
    work = tempfile.mkdtemp(prefix="pdns-store-bench-")
    for tool in ("redis-benchmark", "wrk"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            sys.exit("store_bench: %s is missing (apt-get install redis-tools wrk)" % tool)
    have_module = os.path.exists(MODULE)
    redis = conftest.Redis(work, extra=("--loadmodule", os.path.abspath(MODULE), "trees")
                           if have_module else ())
    redis.start()
    port = redis.port
    redis_cli(port, "CONFIG", "SET", "appendonly", "no")
    cfg = os.path.join(work, "relay.json")
    cfg_module = os.path.join(work, "relay-module.json")
    cfg_trees = os.path.join(work, "relay-trees.json")
    http_port = conftest.free_port()
    for path, store in ((cfg, {"module": False}), (cfg_module, {"module": True}),
                        (cfg_trees, {"module": True, "index": "tree"})):
        relay_config(path, "redis://127.0.0.1:%d/0" % port, store, http_port)
    rows = []
    two_cores = len(os.sched_getaffinity(0)) >= 2

    # 1. ingest, beside SET on the same server (database 15, flushed after)
    bench = subprocess.run(["redis-benchmark", "-p", str(port), "-P", "64", "-t", "set",
                            "-n", "2000000", "-r", "1000000", "-q", "--dbnum", "15"],
                           capture_output=True, text=True).stdout
    set_rate = float(re.findall(r"SET: ([\d.]+) requests per second", bench)[-1])
    redis_cli(port, "-n", "15", "FLUSHDB")
    rows.append(("redis-benchmark -P 64 SET", "%.0f ops/s" % set_rate, "baseline"))
    here = os.path.dirname(__file__)

    def mix(kind, n, path):
        with open(path, "w") as f:
            if kind == "zipf":
                subprocess.run([sys.executable, os.path.join(here, "gen_csv.py"), str(n)],
                               stdout=f, check=True)
            elif kind == "60% new":
                subprocess.run([sys.executable, os.path.join(here, "gen_pdns.py"), str(n), "0.6"],
                               stdout=f, check=True)
        if kind == "all new":
            distinct_csv(path, n)

    # 2. three mixes, at each scale: records/s, Redis CPU and memory per new triple
    # all new, per scale: records/s of the script, the module, its trees, and
    # Redis alone writing as many new keys (the bend with size)
    bend = {}
    for scale in SCALES:
        n = N * scale
        for kind in MIXES:
            path = os.path.join(work, "mix.csv")
            mix(kind, n, path)
            if kind == "all new":
                bend[scale] = [new_keys_rate(port, n)]
                rows.append(("Redis alone: HSET of %d new keys (redis-benchmark -P 64)" % n,
                             "%.0f ops/s" % bend[scale][0], "the bend's baseline"))
            stored, secs, cpu, mem = measured_import(cfg, path, port)
            triples = int(redis_cli(port, "HGET", "st:info", "triples"))
            rate = stored / secs
            if kind == "all new":
                bend[scale].append(rate)
            rows.append(("import %s, %d records, %d new triples" % (kind, stored, triples),
                         "%.0f records/s" % rate,
                         "%.3fx SET; Redis CPU %.1f us/record, %.1f us/new triple; %.0f B/triple"
                         % (rate / set_rate, cpu * 1e6 / stored, cpu * 1e6 / max(triples, 1),
                            mem / max(triples, 1))))
            if kind != "zipf" and have_module:
                # the trees first: the store the rows below look at is the
                # module's sorted sets, as the script writes them
                stored_t, secs_t, cpu_t, mem_t = measured_import(cfg_trees, path, port)
                if kind == "all new" and two_cores:
                    latency_rows(rows, port, http_port, cfg_trees, n, work, " (trees)")
                stored_m, secs_m, cpu_m, mem_m = measured_import(cfg_module, path, port)
                rate_m, rate_t = stored_m / secs_m, stored_t / secs_t
                if kind == "all new":
                    bend[scale] += [rate_m, rate_t]
                rows.append(("  the same through the pdnsrelay module",
                             "%.0f records/s" % rate_m,
                             "%.3fx SET, %.2fx the script; Redis CPU %.1f us/new triple; "
                             "%.0f B/triple" % (rate_m / set_rate, rate_m / rate,
                                                cpu_m * 1e6 / max(triples, 1),
                                                mem_m / max(triples, 1))))
                rows.append(("  the same into the module's trees (store.index tree)",
                             "%.0f records/s" % rate_t,
                             "%.3fx SET, %.2fx the script, %.2fx the module's sorted sets; "
                             "Redis CPU %.1f us/new triple; %.0f B/triple"
                             % (rate_t / set_rate, rate_t / rate, rate_t / rate_m,
                                cpu_t * 1e6 / max(triples, 1), mem_t / max(triples, 1))))
            elif kind != "zipf":
                rows.append(("  the same through the pdnsrelay module", "-",
                             "no %s (make builds it)" % MODULE))
            if kind == "60% new" and scale == SCALES[0]:
                # where Redis's time goes: the same store as plain writes
                fams = plain_floor(port, work)
                total = sum(c for _, c in fams)
                rows.append(("  the same store as plain HSET/ZADD",
                             "%.1f us/triple" % (total * 1e6 / triples),
                             "the store's script %.1f us; by family: %s" % (
                                 cpu * 1e6 / triples,
                                 ", ".join("%s %.1f" % (f, c * 1e6 / triples)
                                           for f, c in fams))))
                args_us, call_us = lua_floor(port)
                rows.append(("  Lua itself (EVALSHA, 500 entries a call)",
                             "%.2f us/entry" % args_us,
                             "to take its 13 arguments; %.2f us a redis.call" % call_us))
                # the same lines with index buckets of long names kept as
                # listpacks (docs/guide.md, store schema)
                redis_cli(port, "CONFIG", "SET", "zset-max-listpack-value", "256")
                stored2, secs2, c1, m1 = measured_import(cfg, path, port)
                redis_cli(port, "CONFIG", "SET", "zset-max-listpack-value", "64")
                rows.append(("  the same, zset-max-listpack-value 256",
                             "%.0f records/s" % (stored2 / secs2),
                             "Redis CPU %.1f us/new triple; %.0f B/triple"
                             % (c1 * 1e6 / triples, m1 / triples)))
            if kind == "all new" and two_cores:
                latency_rows(rows, port, http_port, cfg, n, work)
            if kind == "all new" and scale == SCALES[-1]:
                strings = int(redis_cli(port, "EVAL", STRING_BYTES, "0"))
                rows.append(("  of which strings", "%.0f B/triple" % (strings / triples),
                             "overhead %.0f B (target <= 200 B)" %
                             ((mem - strings) / triples)))
                names = n // 2

    if len(bend) > 1:
        a, b = SCALES[0], SCALES[-1]
        rows.append(("bend, all new, %d to %d records" % (N * a, N * b),
                     "%.2fx the script" % (bend[b][1] / bend[a][1]),
                     ", ".join("%.2fx %s" % (bend[b][k] / bend[a][k], what)
                               for k, what in ((2, "the module"), (3, "its trees"),
                                               (0, "Redis alone (HSET of new keys)"))
                               if len(bend[a]) > k) + " (target: no bend beyond 15 %)"))

    # 3. queries over that store: through the query script, and (the module
    # loaded) through PDNSRELAY.QUERY, taking turns, kind by kind
    ways = [("script", cfg)] + ([("module", cfg_module)] if have_module else [])

    def relay_for(c):
        r = subprocess.Popen([BIN, "run", "-c", c], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        conftest.wait_port(http_port, r)
        return r

    def measure(name, paths, tag, conns=32, note=""):
        """wrk on paths through each way; a row each, the module's with its
        ratio to the script's. Returns the script's q/s."""
        got = {}
        for way, c in ways:
            relay = relay_for(c)
            got[way] = wrk(http_port, paths, tag, work, conns=conns)
            relay.terminate()
            relay.wait(15)
        for way, _ in ways:
            qps, p50, p90, p99, bad = got[way]
            vs = ", %.2fx the script's q/s" % (qps / got["script"][0]) if way != "script" else ""
            rows.append(("query: %s (%s)" % (name, way), "%.0f q/s" % qps,
                         "p50 %.2f ms, p90 %.2f ms, p99 %.2f ms%s%s%s" % (
                             p50, p90, p99, note, vs,
                             ", %d non-200!" % bad if bad else "")))
        return got["script"][0]

    import random
    rnd = random.Random(1)
    zones = max(names // 25, 1)
    hosts = [rnd.randrange(names) for _ in range(5000)]
    addrs = [rnd.randrange(names) for _ in range(5000)]
    kinds = [
        ("exact name", ["/query/host%d.z%d.example" % (i, i % zones) for i in hosts]),
        ("exact name, DNSDB v2", ["/dnsdb/v2/lookup/rrset/name/host%d.z%d.example" %
                                  (i, i % zones) for i in hosts]),
        ("address", ["/query/10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255) for i in addrs]),
        ("address, DNSDB v2", ["/dnsdb/v2/lookup/rdata/ip/10.%d.%d.%d" %
                               (i >> 16, (i >> 8) & 255, i & 255) for i in addrs]),
        ("wildcard *.zone (~50)", ["/query/*.z%d.example" % rnd.randrange(zones)
                                   for _ in range(5000)]),
        ("CIDR /24, limit 100", ["/query/10.%d.%d.0/24?limit=100" % (i >> 16, (i >> 8) & 255)
                                 for i in (rnd.randrange(names) for _ in range(5000))]),
    ]
    qps_of = {}
    for name, paths in kinds:
        qps_of[name] = measure(name, paths, name.split()[0])
    # an address with 10,000 names: the first page (store.default_limit) alone, one client
    fan = os.path.join(work, "fan.csv")
    with open(fan, "w") as f:
        f.write("".join("1795930000.000000||10.0.0.1||10.0.0.2||IN||fan%d.z%d.example.||A||"
                        "10.254.254.254||300||1\n" % (i, i % 97) for i in range(10000)))
    run_import(cfg, fan, port)
    for name, path in (("address with 10,000 names, first page", "/query/10.254.254.254"),
                       ("the same, DNSDB v2, limit 1000",
                        "/dnsdb/v2/lookup/rdata/ip/10.254.254.254?limit=1000")):
        measure(name, [path], "fan", conns=1, note=" (wrk -c1; target p99 < 20 ms)")
    for what in ("exact name", "address"):  # the same keys, the same store, one run
        rows.append(("DNSDB v2 / COF, " + what, "%.2f x" % (
            qps_of[what + ", DNSDB v2"] / qps_of[what]), "q/s ratio (target within 10 %)"))
    redis.stop()

    w = max(len(r[0]) for r in rows)
    print("\nstore and query API (%s)" % time.strftime("%Y-%m-%d %H:%M"))
    for r in rows:
        print("  %-*s  %-18s %s" % (w, r[0], r[1], r[2]))


if __name__ == "__main__":
    main()
