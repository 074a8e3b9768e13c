#!/usr/bin/python3
"""D4/TLS ingest end to end on loopback: `pdns-relay send` processes (one
per sensor) stream generated CSV to a running relay; records/s is counted
from the relay's own /metrics, from the first frame to the last record.
Printed as a table; compare the rows (one sensor vs several, with and
without the COF output file, with and without the mixer's journal, with
and without the console's recent records) rather than with a fixed
target. The mixer takes every record in each row; the journal
(mixer.journal, on by default) writes each to state_dir: its cost per
record is the difference of rows 3 and 4, same run. The console keeps a
copy of each for its policy preview (admin.preview_mib, 32 by default):
its cost is the difference of rows 4 and 5. The last row keeps the
journal in a redis-server started here (mixer.journal "redis": a stream
entry every 100 ms, which the mixer reads back as its input; a row ends
when the mixer has taken every record): its cost is the difference of
rows 6 and 4."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
import benchutil  # noqa: E402
import conftest  # noqa: E402  (fixtures' helpers, used directly)

N = int(os.environ.get("BENCH_RECORDS", "1000000"))


def main():
    print(benchutil.machine())
    d = benchutil.workdir()
    csv = benchutil.gen_csv(d, N)
    size = os.path.getsize(csv)
    rows = []
    redis = conftest.Redis(d)
    redis.start()
    for sensors, output, journal, preview in ((1, False, True, True), (1, True, True, True),
                                              (3, False, True, True), (3, False, False, True),
                                              (3, False, False, False), (3, False, "redis", True)):
        names = list(conftest.SENSORS)[:sensors]
        relay = conftest.Relay(d, sensors=names)
        cfg = json.load(open(relay.config))
        if not output:
            del cfg["ingest"]
        # the D4 path alone: no Redis here, and a store that cannot write
        # would stop the sensors once its buffer is full (store_bench.py
        # measures the store)
        cfg["store"] = {"enabled": False}
        cfg["mixer"] = {"journal": journal}
        if journal == "redis":
            cfg["redis"] = "redis://127.0.0.1:%d/0" % redis.port
        cfg["admin"]["preview_mib"] = 32 if preview else 0
        json.dump(cfg, open(relay.config, "w"))
        relay.start()
        t0 = time.time()
        procs = [subprocess.Popen([conftest.BIN, "send", "--host", "127.0.0.1", "--port",
                                   str(relay.d4_port), "--uuid", conftest.SENSORS[n][0],
                                   "--key-file", os.path.join(d, n + ".key"), "--insecure", csv],
                                  stderr=subprocess.PIPE) for n in names]
        for p in procs:
            p.wait()
        want = N * sensors
        while True:
            got = sum(relay.sensor_records(n) for n in names)
            if got >= want or time.time() - t0 > 120:
                break
            time.sleep(0.01)
        # and the mixer has taken them (with the journal in Redis, the
        # mixer reads its input from the stream)
        while time.time() - t0 < 120:
            m = relay.metrics()
            if m["pdns_relay_mixer_inserted_total"] + m["pdns_relay_mixer_merged_total"] >= got:
                break
            time.sleep(0.01)
        t = time.time() - t0
        relay.stop()
        rows.append((sensors, ("COF file" if output else "count only") +
                     {True: "", False: ", no journal", "redis": ", journal in Redis"}[journal] +
                     ("" if preview else ", no preview"),
                     got, t, got / t,
                     size * sensors / t / 1e6))
    print("\nD4/TLS ingest on loopback, %d records per sensor (%.0f bytes/record)" % (N, size / N))
    print("%-8s %-35s %10s %8s %12s %8s" % ("sensors", "sink", "records", "secs", "records/s",
                                            "MB/s"))
    for r in rows:
        print("%-8d %-35s %10d %8.2f %12.0f %8.1f" % r)
    redis.stop()
    for what, on, off in (("mixer journal", rows[2], rows[3]),
                          ("console preview copy", rows[3], rows[4]),
                          ("mixer journal in Redis", rows[5], rows[3])):
        print("%s: %.0f ns per record (%.2fx the records/s without it)"
              % (what, (on[3] / on[2] - off[3] / off[2]) * 1e9, on[4] / off[4]))


if __name__ == "__main__":
    main()
