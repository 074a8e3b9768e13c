#!/usr/bin/python3
"""The store on one redis-server beside the store on a Redis Cluster of 3
masters (no replicas; BENCH_CLUSTER_REPLICAS=1 adds one per master, and
with it the WAIT after every batch part), on this machine, in one run:

1. Ingest: `pdns-relay import` of BENCH_RECORDS generated passivedns
   records in two mixes, Zipf-like repeats (gen_csv.py) and all new
   triples (one per record), into each: records/s, Redis CPU (INFO cpu,
   sys + user, summed over the masters) per record, INFO used_memory per
   triple summed over the masters, and how evenly the masters fill
   (max/min of their used_memory growth).
2. Queries on the all-new store, with wrk -c4 and random paths: an exact
   name (one shard), an address and a /24 (the prefix's shard for the
   index members, then the names' shards), a left-hand wildcard (every
   shard, pages merged): q/s and p50/p99.
The relay, the servers and wrk share this machine's cores: the cluster
column says what a cluster costs in CPU and latency, not what it gains;
a cluster gains capacity (each master holds its share) and, on machines
of their own, the masters' CPU. BENCH_MODULE=1: every server loads the
pdnsrelay module, and each mix is also imported into the cluster with
store.module false (the script), for the module's gain on a cluster in
the same run. Printed as a table."""
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
sys.path.insert(0, os.path.dirname(__file__))
import benchutil  # noqa: E402
import conftest  # noqa: E402
import store_bench as sb  # noqa: E402

N = int(os.environ.get("BENCH_RECORDS", "1000000"))
REPLICAS = os.environ.get("BENCH_CLUSTER_REPLICAS", "0") == "1"
MODULE = os.path.abspath(conftest.MODULE) if os.environ.get("BENCH_MODULE") == "1" else None


def flush(ports):
    for p in ports:
        sb.redis_cli(p, "FLUSHALL")


def config(work, name, store_url, module=True):
    http_port = conftest.free_port()
    cfg = sb.relay_config(os.path.join(work, name + ".json"), store_url, {"module": module},
                          http_port)
    return cfg, http_port


def triples(ports):
    """Triples in the store, summed over every st:info (one per shard)."""
    total = 0
    for p in ports:
        out = sb.redis_cli(p, "EVAL", "local t = 0 local c = '0' repeat "
                           "local r = redis.call('SCAN', c, 'MATCH', '*st:info', 'COUNT', 1000) "
                           "c = r[1] for _, k in ipairs(r[2]) do "
                           "t = t + tonumber(redis.call('HGET', k, 'triples') or 0) end "
                           "until c == '0' return t", "0")
        total += int(out)
    return total


def ready(port, timeout=30):
    """Until GET /readyz says 200 (the store's link is up)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % port, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit("cluster_bench: the relay did not become ready")


def main():
    print(benchutil.machine())
    for tool in ("wrk", "redis-cli"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            sys.exit("cluster_bench: %s is missing (apt-get install redis-tools wrk)" % tool)
    work = tempfile.mkdtemp(prefix="pdns-cluster-bench-")
    one = conftest.Redis(work, extra=("--loadmodule", MODULE) if MODULE else ())
    one.start()
    cluster = conftest.Cluster(work, n=6 if REPLICAS else 3, module=MODULE)
    cluster.start()
    try:
        run(work, one, cluster)
    finally:
        cluster.stop()
        one.stop()


def run(work, one, cluster):
    ms = cluster.masters()
    targets = [("one redis-server", [one.port], config(work, "one", "redis://127.0.0.1:%d/0"
                                                          % one.port)),
               ("cluster, %d masters%s" % (len(ms), " + replicas" if REPLICAS else ""), ms,
                config(work, "cluster", cluster.url()))]
    if MODULE:  # the module everywhere; the cluster once more with the script
        targets = [(n + ", module", p, c) for n, p, c in targets]
        targets.append((targets[1][0][:-len(", module")] + ", script", ms,
                        config(work, "cluster-script", cluster.url(), module=False)))
    rows, rate = [], {}
    here = os.path.dirname(__file__)
    zipf = os.path.join(work, "zipf.csv")
    with open(zipf, "w") as f:
        subprocess.run([sys.executable, os.path.join(here, "gen_csv.py"), str(N)], stdout=f,
                       check=True)
    allnew = os.path.join(work, "allnew.csv")
    sb.distinct_csv(allnew, N)
    for kind, path in (("zipf", zipf), ("all new", allnew)):
        for name, ports, (cfg, _) in targets:
            flush(ports)
            mem0 = {p: sb.used_memory(p) for p in ports}
            cpu0 = sum(sb.redis_cpu(p) for p in ports)
            stored, secs = sb.run_import(cfg, path, ports[0])
            cpu = sum(sb.redis_cpu(p) for p in ports) - cpu0
            grew = [sb.used_memory(p) - mem0[p] for p in ports]
            t = triples(ports)
            rate[(kind, name)] = stored / secs
            spread = ", masters max/min %.2f" % (max(grew) / max(min(grew), 1)) \
                if len(ports) > 1 else ""
            rows.append(("import %s, %s" % (kind, name), "%.0f records/s" % (stored / secs),
                         "%d triples; Redis CPU %.1f us/record; %.0f B/triple%s" % (
                             t, cpu * 1e6 / stored, sum(grew) / max(t, 1), spread)))
        rows.append(("  cluster / one server, " + kind, "%.2f x" % (
            rate[(kind, targets[1][0])] / rate[(kind, targets[0][0])]), "records/s"))
        if MODULE:
            rows.append(("  cluster, module / script, " + kind, "%.2f x" % (
                rate[(kind, targets[1][0])] / rate[(kind, targets[2][0])]), "records/s"))
    # queries over the all-new store, on each
    rnd = random.Random(1)
    names = N // 2
    zones = max(names // 25, 1)
    hosts = [rnd.randrange(names) for _ in range(5000)]
    kinds = [
        ("exact name", ["/query/host%d.z%d.example" % (i, i % zones) for i in hosts]),
        ("address", ["/query/10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255) for i in hosts]),
        ("CIDR /24, limit 100", ["/query/10.%d.%d.0/24?limit=100" % (i >> 16, (i >> 8) & 255)
                                 for i in hosts]),
        ("wildcard *.zone (~50)", ["/query/*.z%d.example" % rnd.randrange(zones)
                                   for _ in range(5000)]),
    ]
    qps = {}
    for name, ports, (cfg, http_port) in targets[:2]:
        relay = subprocess.Popen([sb.BIN, "run", "-c", cfg], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        conftest.wait_port(http_port, relay)
        ready(http_port)
        for q, paths in kinds:
            r = sb.wrk(http_port, paths, q.split()[0], work, conns=4)
            qps[(q, name)] = r[0]
            rows.append(("query %s, %s" % (q, name), "%.0f q/s" % r[0],
                         "p50 %.2f ms, p99 %.2f ms%s" % (r[1], r[3],
                                                         ", %d non-200!" % r[4] if r[4] else "")))
        relay.terminate()
        relay.wait(15)
    for q, _ in kinds:
        rows.append(("  cluster / one server, " + q, "%.2f x" % (
            qps[(q, targets[1][0])] / qps[(q, targets[0][0])]), "q/s"))
    w = max(len(r[0]) for r in rows)
    print("\nstore on one server and on a cluster (%s, %d records per mix)"
          % (time.strftime("%Y-%m-%d %H:%M"), N))
    for r in rows:
        print("  %-*s  %-18s %s" % (w, r[0], r[1], r[2]))


if __name__ == "__main__":
    main()
