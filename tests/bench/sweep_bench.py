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
a tenth of Redis's time, divided by the time a name takes.

With --pass, the relay's whole first pass too (the deletions included):
for each way in turn (`store.module` true: PDNSRELAY.SWEEP; false: the
script), the same lines imported into a fresh server (sorted-set indexes,
so that both delete through the same expire script), their first
fraction F dated two days back and the rest an hour back, then `pdns-relay
run` with `store.expire` one day and `store.sweep_interval` 1 (so that the
pace is the tenth of Redis's time, not the interval), until
pdns_relay_store_sweep_pass_seconds says the pass ended: its seconds,
triples deleted (those seen only in the first F of the lines) and Redis's
CPU over it."""
import argparse
import os
import statistics
import subprocess
import sys
import time

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


def expired_threshold(r, fraction):
    """The time_last below which the oldest fraction of the triples is."""
    tls = sorted(int(v.split()[1]) for k in r.scan_iter(match="n:*", count=1000)
                 for v in r.hvals(k))
    return tls, tls[min(len(tls) - 1, int(fraction * len(tls)))]


def redated(lines, fraction, out):
    """lines with their first fraction dated two days back and the rest an
    hour back (in their order, 1 ms apart), written to out."""
    with open(lines) as f:
        n = sum(1 for _ in f)
    t_old, t_new = time.time() - 2 * 86400, time.time() - 3600
    with open(lines) as f, open(out, "w") as o:
        for i, line in enumerate(f):
            t = t_old + i / 1000.0 if i < fraction * n else t_new + (i - fraction * n) / 1000.0
            o.write("%.3f%s" % (t, line[line.index("||"):]))
    return out


def relay_pass(work, lines, module, pinned):
    """One first pass of the relay's sweep over a fresh store of lines
    (redated): (seconds, triples deleted, Redis CPU seconds over the pass,
    Redis's seconds in PDNSRELAY.SWEEP, in EVAL: the script's steps and
    the expire calls)."""
    srv = store_bench.bench_server(work, pinned)
    relay = None
    try:
        url = "redis://127.0.0.1:%d/0" % srv.port
        cfg = store_bench.relay_config(os.path.join(work, "import.json"), url,
                                       {"module": True, "index": "zset"})
        subprocess.run([conftest.BIN, "import", "-c", cfg, lines], check=True,
                       capture_output=True)
        day = 86400
        relay = conftest.Relay(work, redis=srv, extra={
            "admin": {"console": False}, "mixer": {"enabled": False},
            "store": {"module": module, "index": "zset", "sweep_interval": 1,
                      "expire": {t: day for t in ("A", "AAAA", "CNAME", "TXT", "MX", "NS")}}})
        cpu0 = store_bench.redis_cpu(srv.port)
        relay.start()
        if pinned:
            store_bench.pin(relay.proc.pid, {0})
        if not relay.wait_for(
                lambda: relay.metrics().get("pdns_relay_store_sweep_pass_seconds", 0) > 0, 7200):
            sys.exit("sweep_bench: no pass ended in two hours")
        m, st = relay.metrics(), srv.client().info("commandstats")
        return (m["pdns_relay_store_sweep_pass_seconds"],
                int(m["pdns_relay_store_expired_triples_total"]),
                store_bench.redis_cpu(srv.port) - cpu0,
                st.get("cmdstat_pdnsrelay.sweep", {}).get("usec", 0) / 1e6,
                st.get("cmdstat_eval", {}).get("usec", 0) / 1e6)
    finally:
        if relay:
            relay.stop()
        srv.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=600000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--expired", type=float, default=0.06)
    ap.add_argument("--pass", dest="whole", action="store_true",
                    help="the relay's whole first pass too, each way in turn")
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
        tls, before = expired_threshold(r, a.expired)
        now = tls[-1] + 100000
        secs = now - before
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
    if not a.whole:
        return
    got = {False: [], True: []}
    dated = redated(lines, a.expired, os.path.join(work, "dated.csv"))
    for _ in range(a.rounds):
        for module in (True, False):
            got[module].append(relay_pass(work, dated, module, pinned))
    print("\nthe relay's first pass over the same store (%d rounds, each way in turn):\n"
          % a.rounds)
    print("| %-18s | %-14s | %-14s | %-16s | %-26s |" % (
        "the sweep's steps", "pass, s", "deleted", "Redis CPU, s",
        "of it in SWEEP / EVAL, s"))
    print("|%s|%s|%s|%s|%s|" % ("-" * 20, "-" * 16, "-" * 16, "-" * 18, "-" * 28))
    for module in (False, True):
        rs = got[module]
        print("| %-18s | %-14s | %-14s | %-16s | %-26s |" % (
            "PDNSRELAY.SWEEP" if module else "the script",
            ", ".join("%.1f" % x[0] for x in rs), ", ".join("%d" % x[1] for x in rs),
            ", ".join("%.1f" % x[2] for x in rs),
            ", ".join("%.1f / %.1f" % (x[3], x[4]) for x in rs)))
    print("\nthe module's pass against the script's: %.2fx the time (medians)"
          % (statistics.median(x[0] for x in got[True]) /
             statistics.median(x[0] for x in got[False])))


if __name__ == "__main__":
    main()
