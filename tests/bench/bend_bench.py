#!/usr/bin/python3
"""How much a new triple costs more in a store of 10 N triples than in one
of N, measured so that the machine's drift cancels out: usage

  bend_bench.py [--records N] [--rounds R] [--index tree|zset|script]

Two redis-servers side by side, "small" and "large", both pinned to core
1 (the import and redis-benchmark on core 0), the pdnsrelay module loaded
with its argument "trees". The large one is first filled with 9 N
all-new triples (gen_pdns.py 1.0, not measured). Then R rounds, each
importing N/R new triples into the small server and then N/R into the
large one, so that the small one grows from 0 to N and the large one
from 9 N to 10 N, the two taking turns minute by minute. For each, Redis's
own CPU a new triple (INFO cpu, sys + user) and records/s per round, and
the ratio small/large of the medians: the bend of a new triple's cost
from a store of about N to one of about 10 N (1.0: none).

Beside it, Redis alone: redis-benchmark -P 64 HSET of random new keys
(what a new triple's n: write is) into two plain servers, one first given
9 N keys, in the same alternating rounds: the bend of Redis's own
keyspace on this machine, the floor under the store's.

A whole-import comparison (store_bench.py's BENCH_SCALES=1,10) sets an
import of N against one of 10 N made minutes apart, on a machine whose
speed can move by 2x between them; here both sides share every minute."""
import argparse
import os
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


def relay_config(srv, index):
    store = {"module": index != "script", "index": "tree" if index == "tree" else "zset"}
    return store_bench.relay_config(os.path.join(srv.dir, "relay.json"),
                                    "redis://127.0.0.1:%d/0" % srv.port, store)


def core0(pinned):
    return ["taskset", "-c", "0"] if pinned else []


def import_lines(cfg, path, pinned):
    p = subprocess.run(core0(pinned) + [conftest.BIN, "import", "-c", cfg, path],
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("bend_bench: import failed: " + p.stderr[-2000:])


def measured(port, fn):
    """fn() run against the server on port: (Redis CPU seconds, wall seconds)."""
    cpu0, t0 = store_bench.redis_cpu(port), time.time()
    fn()
    return store_bench.redis_cpu(port) - cpu0, time.time() - t0


def hset_new(port, n, pinned):
    subprocess.run(core0(pinned) + ["redis-benchmark", "-p", str(port), "-P", "64", "-n", str(n),
                                    "-r", "2000000000", "-q", "hset", "n:__rand_int__",
                                    "1 192.0.2.1", "1700000000 1700000100 1 |1|"],
                   capture_output=True, text=True, check=True)


def split(lines, parts, work):
    """lines (a file) cut into files of the given line counts, in order."""
    paths, out = [], None
    with open(lines) as f:
        for i, want in enumerate(parts):
            p = os.path.join(work, "part%d.csv" % i)
            with open(p, "w") as out:
                for _ in range(want):
                    out.write(f.readline())
            paths.append(p)
    return paths


def row(name, small, large, unit, cost):
    """The medians and the bend: the large store's rate against the small
    one's (for a cost, the small one's cost against the large one's)."""
    ms, ml = statistics.median(small), statistics.median(large)
    print("  %-36s small %7.2f (%.2f-%.2f)  large %7.2f (%.2f-%.2f) %-4s bend %.2fx"
          % (name, ms, min(small), max(small), ml, min(large), max(large), unit,
             ms / ml if cost else ml / ms))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=1000000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--index", choices=("tree", "zset", "script"), default="tree")
    a = ap.parse_args()
    n, rounds = a.records, a.rounds
    chunk = n // rounds
    print(benchutil.machine())
    pinned = len(os.sched_getaffinity(0)) >= 2
    work = tempfile.mkdtemp(prefix="pdns-bend-")
    lines = os.path.join(work, "lines.csv")
    with open(lines, "w") as f:  # the first N for the small store, the rest for the large
        subprocess.run([sys.executable, os.path.join(HERE, "gen_pdns.py"), str(11 * n), "1.0"],
                       stdout=f, check=True)
    parts = split(lines, [chunk] * rounds + [9 * n] + [chunk] * rounds, work)
    os.unlink(lines)
    small_parts, fill, large_parts = parts[:rounds], parts[rounds], parts[rounds + 1:]
    got = {k: [] for k in ("store small us", "store large us", "store small r/s",
                           "store large r/s", "hset small us", "hset large us")}
    small, large = store_bench.bench_server(work, pinned), store_bench.bench_server(work, pinned)
    hsmall, hlarge = (store_bench.bench_server(work, pinned, False),
                      store_bench.bench_server(work, pinned, False))
    try:
        cs, cl = relay_config(small, a.index), relay_config(large, a.index)
        import_lines(cl, fill, pinned)
        hset_new(hlarge.port, 9 * n, pinned)
        for r in range(rounds):
            for srv, cfg, part, side in ((small, cs, small_parts[r], "small"),
                                         (large, cl, large_parts[r], "large")):
                t0 = int(store_bench.redis_cli(srv.port, "HGET", "st:info", "triples") or 0)
                cpu, secs = measured(srv.port, lambda: import_lines(cfg, part, pinned))
                new = int(store_bench.redis_cli(srv.port, "HGET", "st:info", "triples")) - t0
                got["store %s us" % side].append(cpu * 1e6 / new)
                got["store %s r/s" % side].append(chunk / secs / 1000)
            for srv, side in ((hsmall, "small"), (hlarge, "large")):
                k0 = int(store_bench.redis_cli(srv.port, "DBSIZE"))
                cpu, _ = measured(srv.port, lambda: hset_new(srv.port, chunk, pinned))
                new = int(store_bench.redis_cli(srv.port, "DBSIZE")) - k0
                got["hset %s us" % side].append(cpu * 1e6 / new)
        triples = [int(store_bench.redis_cli(s.port, "HGET", "st:info", "triples"))
                   for s in (small, large)]
        keys = [int(store_bench.redis_cli(s.port, "DBSIZE")) for s in (hsmall, hlarge)]
    finally:
        for s in (small, large, hsmall, hlarge):
            s.stop()
    print("\nthe bend, alternating (%d rounds of %d new triples; index %s; the stores end "
          "with %d and %d triples, Redis alone with %d and %d keys%s)"
          % (rounds, chunk, a.index, triples[0], triples[1], keys[0], keys[1],
             "; Redis on core 1, the client on core 0" if pinned else ""))
    print("  median (min-max) over the rounds; bend: the large store's rate against the small "
          "one's (0.85x or more: no bend beyond 15 %)")
    row("store: Redis CPU a new triple", got["store small us"], got["store large us"], "us", 1)
    row("store: records/s", got["store small r/s"], got["store large r/s"], "k/s", 0)
    row("Redis alone: CPU a new key (HSET)", got["hset small us"], got["hset large us"], "us", 1)


if __name__ == "__main__":
    main()
