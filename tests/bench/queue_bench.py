#!/usr/bin/python3
"""d4-core queue -> store: QUEUE_RECORDS generated passivedns lines
(gen_csv.py: a Zipf-like mix of names, A/AAAA/CNAME/TXT/MX answers) are
LPUSHed onto analyzer:8:<uuid> in one redis-server (d4-core's), and a
relay drains them into its store in another redis-server; lines/s is from
the relay's start (ready) until the queue and the processing list are
empty and the store holds every record. Baseline in the same run:
`pdns-relay import` of the same lines into a fresh store (the store's own
speed). Printed as a table, for d4core.batch 500, 2000 and 10000 (the
default). The seconds include the relay's start."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
import benchutil  # noqa: E402
import conftest  # noqa: E402

N = int(os.environ.get("QUEUE_RECORDS", "300000"))
QUEUE = "6d2b1f3c4a5e4f60a1b2c3d4e5f60718"
SRC = "analyzer:8:" + QUEUE


def main():
    print(benchutil.machine())
    work = benchutil.workdir()
    csv = benchutil.gen_csv(work, N, "q.csv")
    lines = open(csv, "rb").read().splitlines()
    rows = []
    for what, batch in (("import (baseline)", None), ("queue -> store", 500),
                        ("queue -> store", 2000), ("queue -> store", 10000)):
        d4core, store = conftest.Redis(work), conftest.Redis(work)
        d4core.start()
        store.start()
        try:
            relay = conftest.Relay(work, redis=store, sensors=())
            cfg = json.load(open(relay.config))
            cfg["mixer"] = {"enabled": False}
            cfg.pop("ingest", None)
            cfg["d4"]["enabled"] = False
            if batch:
                cfg["d4core"] = {"redis": "redis://127.0.0.1:%d/0" % d4core.port,
                                 "batch": batch, "queues": [{"uuid": QUEUE}]}
            json.dump(cfg, open(relay.config, "w"))
            if not batch:
                t0 = time.time()
                p = subprocess.run([conftest.BIN, "import", "-c", relay.config, csv],
                                   capture_output=True, text=True)
                secs = time.time() - t0
                if p.returncode:
                    sys.exit(p.stderr)
            else:
                q = d4core.client()
                for i in range(0, len(lines), 10000):
                    q.lpush(SRC, *lines[i:i + 10000])
                relay.http_port = conftest.free_port()
                cfg["http"]["listen"] = "127.0.0.1:%d" % relay.http_port
                json.dump(cfg, open(relay.config, "w"))
                relay.logf = open(relay.log, "ab")
                t0 = time.time()
                relay.proc = subprocess.Popen([conftest.BIN, "run", "-c", relay.config],
                                              stdout=relay.logf, stderr=relay.logf)
                conftest.wait_port(relay.http_port, relay.proc, 30)
                st = store.client()
                while True:
                    done = q.llen(SRC) == 0 and int(st.hget("st:info", "records") or 0) >= N
                    if done or time.time() - t0 > 300:
                        break
                    time.sleep(0.01)
                secs = time.time() - t0
                relay.stop()
            got = int(store.client().hget("st:info", "records") or 0)
            rows.append((what, batch or "-", got, secs, got / secs))
        finally:
            d4core.stop()
            store.stop()
    print("\nd4-core queue -> store, %d generated lines (Zipf-like names; A, AAAA, CNAME, "
          "TXT, MX)" % N)
    print("| path | d4core.batch | records stored | seconds | records/s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print("| %s | %s | %d | %.2f | %.0f |" % r)


if __name__ == "__main__":
    main()
