#!/usr/bin/python3
"""Two builds of the store's write path side by side, alternating, so that
a change can be measured on a machine whose speed drifts from one minute
to the next: usage

  ab_store.py [--rounds N] [--records N] [--new F] [--aof] [--index zset|tree]
              NAME=RELAY[:MODULE] NAME=RELAY[:MODULE] ...

Each variant is a pdns-relay binary and, optionally, a pdnsrelay module
(default: build/pdns-relay and build/pdnsrelay.so). Each round runs every
variant once, in order: a fresh redis-server pinned to core 1 (with the
module loaded with its argument "trees", AOF as --aof says), `pdns-relay
import` pinned to core 0 of gen_pdns.py lines (--records, --new new
triples: the ~63 % mix by default). For each variant it prints, over the
rounds, Redis's own CPU a new triple (INFO cpu, sys + user), the import's
own CPU a record (its rusage), records/s and used_memory a triple:
minimum, median and maximum, and the medians' ratio to the first
variant. On one core both share it."""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
import benchutil  # noqa: E402
import conftest  # noqa: E402
import store_bench  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def one_run(relay, module, lines, nrec, aof, index, work, pinned):
    srv = store_bench.bench_server(work, pinned, module, aof)
    port = srv.port
    cfg = store_bench.relay_config(os.path.join(srv.dir, "relay.json"),
                                   "redis://127.0.0.1:%d/0" % port,
                                   {"module": bool(module), "index": index})
    try:
        cpu0 = store_bench.redis_cpu(port)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.time()
        p = subprocess.run((["taskset", "-c", "0"] if pinned else []) +
                           [relay, "import", "-c", cfg, lines], capture_output=True, text=True)
        secs = time.time() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if p.returncode != 0 or "%d records stored" % nrec not in p.stderr:
            sys.exit("ab_store: import failed: " + p.stderr[-2000:])
        cpu = store_bench.redis_cpu(port) - cpu0
        triples = int(store_bench.redis_cli(port, "HGET", "st:info", "triples"))
        own = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return {"redis us/new triple": cpu * 1e6 / triples, "import us/record": own * 1e6 / nrec,
                "records/s": nrec / secs,
                "B/triple": store_bench.used_memory(port) / triples}
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--records", type=int, default=400000)
    ap.add_argument("--new", type=float, default=0.6)
    ap.add_argument("--aof", action="store_true")
    ap.add_argument("--index", choices=("zset", "tree"), default="tree")
    ap.add_argument("variants", nargs="+", metavar="NAME=RELAY[:MODULE]")
    a = ap.parse_args()
    variants = []
    for v in a.variants:
        name, _, rest = v.partition("=")
        relay, _, module = rest.partition(":")
        variants.append((name, relay or conftest.BIN, module or conftest.MODULE))
    print(benchutil.machine())
    pinned = len(os.sched_getaffinity(0)) >= 2
    work = tempfile.mkdtemp(prefix="pdns-ab-store-")
    lines = os.path.join(work, "lines.csv")
    with open(lines, "w") as f:
        subprocess.run([sys.executable, os.path.join(HERE, "gen_pdns.py"), str(a.records),
                        str(a.new)], stdout=f, check=True)
    got = {name: [] for name, _, _ in variants}
    for _ in range(a.rounds):
        for name, relay, module in variants:
            got[name].append(one_run(relay, module, lines, a.records, a.aof, a.index, work,
                                     pinned))
    print("\nstore write path, A/B (%d records, %.0f %% new, index %s, AOF %s, %d rounds%s)"
          % (a.records, a.new * 100, a.index, "on" if a.aof else "off", a.rounds,
             ", Redis on core 1, import on core 0" if pinned else ""))
    first = variants[0][0]
    for metric in ("redis us/new triple", "import us/record", "records/s", "B/triple"):
        for name, _, _ in variants:
            xs = [r[metric] for r in got[name]]
            med = statistics.median(xs)
            base = statistics.median(r[metric] for r in got[first])
            print("  %-20s %-12s min %10.2f  median %10.2f  max %10.2f  %5.2fx %s"
                  % (metric, name, min(xs), med, max(xs), med / base, first))


if __name__ == "__main__":
    main()
