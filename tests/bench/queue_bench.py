#!/usr/bin/python3
"""Every source into the store, on the same lines, in one run: QUEUE_RECORDS
generated passivedns lines, in two mixes (gen_csv.py's Zipf-like repeats;
gen_pdns.py's ~63 % new triples), stored by
  - `pdns-relay import` into a fresh store: the baseline, the store's speed;
  - D4 over TLS: `pdns-relay send` as one sensor to a running relay;
  - the d4-core queue: the lines LPUSHed onto analyzer:8:<uuid> in one
    redis-server (d4-core's), drained by a relay into its store in another,
    for d4core.batch 2000 and 10000 (the default).
Each path from the relay's start (or the import's) until the store holds
every record; records/s and the ratio to import (target within 10 %)."""
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


def run_path(work, csv, lines, what, batch):
    """Stores csv's lines by one path; (records stored, seconds)."""
    d4core, store = conftest.Redis(work), conftest.Redis(work)
    d4core.start()
    store.start()
    try:
        relay = conftest.Relay(work, redis=store, sensors=("sensor-a",))
        cfg = json.load(open(relay.config))
        cfg["mixer"] = {"enabled": False}
        cfg.pop("ingest", None)
        cfg["d4"]["enabled"] = what == "d4"
        if what == "queue":
            cfg["d4core"] = {"redis": "redis://127.0.0.1:%d/0" % d4core.port,
                             "batch": batch, "queues": [{"uuid": QUEUE}]}
        json.dump(cfg, open(relay.config, "w"))
        n = len(lines)
        if what == "import":
            t0 = time.time()
            p = subprocess.run([conftest.BIN, "import", "-c", relay.config, csv],
                               capture_output=True, text=True)
            secs = time.time() - t0
            if p.returncode:
                sys.exit(p.stderr)
        else:
            if what == "queue":
                q = d4core.client()
                for i in range(0, n, 10000):
                    q.lpush(SRC, *lines[i:i + 10000])
            relay.logf = open(relay.log, "ab")
            t0 = time.time()
            relay.proc = subprocess.Popen([conftest.BIN, "run", "-c", relay.config],
                                          stdout=relay.logf, stderr=relay.logf)
            conftest.wait_port(relay.http_port, relay.proc, 30)
            if what == "d4":
                conftest.wait_port(relay.d4_port, relay.proc, 30)
                subprocess.run([conftest.BIN, "send", "--host", "127.0.0.1", "--port",
                                str(relay.d4_port), "--uuid", conftest.SENSORS["sensor-a"][0],
                                "--key-file", os.path.join(work, "sensor-a.key"), "--insecure",
                                csv], check=True, capture_output=True)
            st = store.client()
            while True:
                done = int(st.hget("st:info", "records") or 0) >= n
                if done or time.time() - t0 > 600:
                    break
                time.sleep(0.01)
            secs = time.time() - t0
            relay.stop()
        return int(store.client().hget("st:info", "records") or 0), secs
    finally:
        d4core.stop()
        store.stop()


def main():
    print(benchutil.machine())
    work = benchutil.workdir()
    here = os.path.dirname(__file__)
    mixes = (("Zipf-like (gen_csv.py)", ["gen_csv.py", str(N)]),
             ("~63 % new triples (gen_pdns.py 0.6)", ["gen_pdns.py", str(N), "0.6"]))
    print("\nevery source -> store, %d generated lines a mix, each path from the relay's "
          "start until the store holds every record" % N)
    print("| lines | path | records stored | seconds | records/s | vs import |")
    print("|---|---|---|---|---|---|")
    for mix, gen in mixes:
        csv = os.path.join(work, "q.csv")
        with open(csv, "w") as f:
            subprocess.run([sys.executable, os.path.join(here, gen[0])] + gen[1:], stdout=f,
                           check=True)
        lines = open(csv, "rb").read().splitlines()
        base = None
        for what, label, batch in (("import", "pdns-relay import (baseline)", None),
                                   ("d4", "D4/TLS -> store (pdns-relay send)", None),
                                   ("queue", "d4-core queue -> store, d4core.batch 2000", 2000),
                                   ("queue", "d4-core queue -> store, d4core.batch 10000", 10000)):
            got, secs = run_path(work, csv, lines, what, batch)
            rate = got / secs
            base = base or rate
            print("| %s | %s | %d | %.2f | %.0f | %.2fx |" % (mix, label, got, secs, rate,
                                                              rate / base), flush=True)


if __name__ == "__main__":
    main()
