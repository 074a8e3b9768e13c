#!/usr/bin/python3
"""Queries while the store ingests: how long one client's queries wait
behind the store's calls, with `store.call_ms` off (every call takes
`store.batch` entries) and at its default (calls shrink while they take
longer), in alternating rounds on the same lines.

Each round: a fresh redis-server and a relay answering queries; `pdns-relay
import` of gen_pdns.py's ~63 % new lines (BUSY_RECORDS, 300,000, seed 19);
then a second import of as many other lines (seed 23) while wrk -t1 -c1
asks exact names of the first set for BUSY_WRK_SECONDS (6) from half a
second into it. Printed: the second import's records/s, the queries' q/s
and latency percentiles, and Redis's mean and longest store call (INFO
commandstats, SLOWLOG: its time inside Redis). Then `import` of Zipf-like lines (gen_csv.py, ten times as
many) alone: cheap calls keep store.batch entries, so its rate is the
same either way."""
import os
import random
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
sys.path.insert(0, os.path.dirname(__file__))
import benchutil  # noqa: E402
import conftest  # noqa: E402

N = int(os.environ.get("BUSY_RECORDS", "300000"))
ROUNDS = int(os.environ.get("BUSY_ROUNDS", "2"))
os.environ.setdefault("BENCH_WRK_SECONDS", os.environ.get("BUSY_WRK_SECONDS", "6"))
import store_bench  # noqa: E402  (reads BENCH_WRK_SECONDS)

HERE = os.path.dirname(__file__)


def gen(work, name, args):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        subprocess.run([sys.executable, os.path.join(HERE, args[0])] + args[1:], stdout=f,
                       check=True)
    return path


def round_(work, call_ms, a, b, zipf):
    store = conftest.Redis(work)
    store.start()
    try:
        relay = benchutil.store_relay(
            work, store, lambda cfg: cfg.setdefault("store", {}).update(call_ms=call_ms))
        relay.start()
        try:
            store_bench.run_import(relay.config, a, store.port)
            names = sorted({l.split("||")[4].rstrip(".") for l in open(a) if l.count("||") > 5})
            paths = ["/query/" + n for n in random.Random(1).sample(names, 2000)]
            c = store.client()
            c.config_resetstat()
            c.slowlog_reset()
            got = {}
            t = threading.Thread(target=lambda: got.update(
                imp=store_bench.run_import(relay.config, b, store.port)))
            t.start()
            time.sleep(0.5)
            q = store_bench.wrk(relay.http_port, paths, "busy", work, conns=1, threads=1)
            t.join()
            ev = c.info("commandstats").get("cmdstat_eval", {})
            longest = max((e["duration"] for e in c.slowlog_get(128)), default=0)
            stored, secs = got["imp"]
        finally:
            relay.stop()
        c.flushall()
        zn, zsecs = store_bench.run_import(relay.config, zipf, store.port)
        return stored / secs, q, ev.get("usec_per_call", 0) / 1000, longest / 1000, zn / zsecs
    finally:
        store.stop()


def main():
    print(benchutil.machine())
    work = benchutil.workdir()
    a = gen(work, "a.csv", ["gen_pdns.py", str(N), "0.6", "19"])
    b = gen(work, "b.csv", ["gen_pdns.py", str(N), "0.6", "23"])
    zipf = gen(work, "z.csv", ["gen_csv.py", str(10 * N)])
    print("\nqueries while the store ingests: %d ~63 %%-new lines imported beside wrk -c1 "
          "(exact names), then %d Zipf-like lines imported alone" % (N, 10 * N))
    print("| store.call_ms | import records/s | queries/s | p50 ms | p90 ms | p99 ms | "
          "Redis store call: mean ms | longest ms | Zipf-like import records/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in range(ROUNDS):
        for call_ms in (0, 10):
            rate, q, mean, longest, zrate = round_(work, call_ms, a, b, zipf)
            qps, p50, p90, p99, bad = q
            print("| %s | %.0f | %.0f | %.2f | %.2f | %.2f | %.1f | %.1f | %.0f |" % (
                "0 (store.batch, 1000)" if call_ms == 0 else "%d (default)" % call_ms,
                rate, qps, p50, p90, p99, mean, longest, zrate), flush=True)


if __name__ == "__main__":
    main()
