#!/usr/bin/python3
"""What a step of the expiry sweep costs Redis, through the script
(store_sweep.lua, EVALSHA) and through the pdnsrelay module's
PDNSRELAY.SWEEP, the two taking turns on the same store: usage

  sweep_bench.py [--records N] [--rounds R] [--expired F]

One redis-server pinned to core 1, the module loaded with its argument
trees; N lines of gen_pdns.py 0.6 (about 63 % new triples) imported by
`pdns-relay import` into the module's trees (not measured). Then R rounds,
each a whole walk of the keyspace with the script and one with the
module (200 keys a step, as the relay asks), with an expiry table under
which the fraction F of the triples (the oldest) has expired: per step,
Redis's time in the command (INFO commandstats) and the part of it in
SCAN, names walked a second of that time, and the medians' ratio. Every
step of the two walks must give the same reply. The relay's own pace
(at most 10 ms of steps a 100 ms tick) turns a step's time into a pass's:
a tenth of Redis's time, divided by the time a name takes."""
import argparse
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
import benchutil  # noqa: E402
import conftest  # noqa: E402
import store_bench  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = open(os.path.join(HERE, "..", "..", "relay", "store", "lua", "store_sweep.lua")).read()


def walk(r, sha, native, now, expiry):
    """One walk: (steps, names, found, usec in the command, usec in SCAN, replies)."""
    r.config_resetstat()
    cursor, steps, found, replies = "0", 0, 0, []
    while True:
        args = ("st:info", cursor, 200, now, expiry, "")
        out = r.execute_command("PDNSRELAY.SWEEP", *args) if native else \
            r.evalsha(sha, 1, *args)
        replies.append(out)
        cursor = out[0].decode()
        steps += 1
        found += (len(out) - 2) // 3
        if cursor == "0":
            break
    st = r.info("commandstats")
    usec = st["cmdstat_pdnsrelay.sweep" if native else "cmdstat_evalsha"]["usec"]
    return steps, found, usec, st.get("cmdstat_scan", {}).get("usec", 0), replies


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=600000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--expired", type=float, default=0.06)
    a = ap.parse_args()
    print(benchutil.machine())
    work = benchutil.workdir()
    pinned = os.cpu_count() >= 2
    srv = store_bench.bench_server(work, pinned)
    try:
        lines = os.path.join(work, "lines.csv")
        with open(lines, "w") as f:
            subprocess.run([sys.executable, os.path.join(HERE, "gen_pdns.py"), str(a.records),
                            "0.6"], stdout=f, check=True)
        cfg = store_bench.relay_config(os.path.join(work, "relay.json"),
                                       "redis://127.0.0.1:%d/0" % srv.port,
                                       {"module": True, "index": "tree"})
        subprocess.run([conftest.BIN, "import", "-c", cfg, lines], check=True,
                       capture_output=True)
        r = srv.client()
        names = r.dbsize()
        # the expiry under which the oldest fraction F of the triples has
        # expired (their time_last, as the store has it)
        tls = sorted(int(v.split()[1]) for k in r.scan_iter(match="n:*", count=1000)
                     for v in r.hvals(k))
        now = tls[-1] + 100000
        secs = now - tls[min(len(tls) - 1, int(a.expired * len(tls)))]
        expiry = "," + ",".join("%d=%d" % (t, secs) for t in (1, 28, 5, 16, 15, 2)) + ","
        sha = r.script_load(SCRIPT)
        rows = {False: [], True: []}
        for _ in range(a.rounds):
            ref = None
            for native in (False, True):
                steps, found, usec, scan, replies = walk(r, sha, native, now, expiry)
                if ref is None:
                    ref = replies
                elif replies != ref:
                    sys.exit("sweep_bench: the module's steps differ from the script's")
                rows[native].append((usec / steps, scan / steps, names / (usec / 1e6), steps,
                                     found))
        print("store: %d keys (%d records imported), %d triples expired of %s\n"
              % (names, a.records, rows[False][0][4], r.hget("st:info", "triples").decode()))
        print("| %-22s | %-18s | %-14s | %-22s |" % ("a step of 200 keys", "Redis µs a step",
                                                   "of it SCAN", "names a second of Redis"))
        print("|%s|%s|%s|%s|" % ("-" * 24, "-" * 20, "-" * 16, "-" * 24))
        med = {}
        for native in (False, True):
            rs = rows[native]
            med[native] = statistics.median(x[0] for x in rs)
            print("| %-22s | %-18s | %-14s | %-22s |" % (
                "PDNSRELAY.SWEEP" if native else "the script (EVALSHA)",
                "%.0f (%s)" % (med[native], ", ".join("%.0f" % x[0] for x in rs)),
                "%.0f" % statistics.median(x[1] for x in rs),
                "%.0f k" % (statistics.median(x[2] for x in rs) / 1000)))
        print("\nthe module's step against the script's: %.2fx the time (medians of %d rounds)"
              % (med[True] / med[False], a.rounds))
        rate = {n: statistics.median(x[2] for x in rows[n]) for n in (False, True)}
        print("at the relay's pace (10 ms of steps a 100 ms tick: a tenth of Redis), keys "
              "at this cost: a pass over 10 M in %.0f min (script), %.0f min (module), "
              "deletions not counted" % tuple(1e7 / (0.1 * rate[n]) / 60 for n in (False, True)))
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
