#!/usr/bin/python3
"""Every source into the store, on the same lines, in one run: generated
passivedns lines in two mixes, gen_pdns.py's ~63 % new triples
(QUEUE_RECORDS, 300,000) and gen_csv.py's Zipf-like repeats
(QUEUE_ZIPF_RECORDS, ten times as many; QUEUE_MIXES=new or zipf runs one
mix), stored by
  - `pdns-relay import` into a fresh store: the baseline (the store's speed
    where new triples are many; on Zipf-like lines, the relay's parsing);
  - D4 over TLS: `pdns-relay send` as one sensor to a running relay;
  - the d4-core queue: the lines LPUSHed onto analyzer:8:<uuid> in one
    redis-server (d4-core's), drained by a relay into its store in another,
    for d4core.batch 2000 (the default) and 10000.
Each path is timed from the first record in the store to the last (the
store's record count, read every 5 ms), the same way for all three: the
relay's start, its first poll of an idle queue and the import's start are
not the path's rate. The queue holds every line before the relay starts,
as after an outage. Records/s and the ratio to import (target within
10 %); the CPU the relay's process spent a line, from its start to its
end (/proc/<pid>/stat), and its ratio to import's: whether a path is
slower for the relay's own work or for what shares the cores with it;
for D4, the CPU `pdns-relay send` spent a line (it encrypts on the same
cores); for the queue, the CPU d4-core's redis-server spent a line while
the relay drained it (INFO cpu, sys + user: moving, reading and
trimming). QUEUE_MODULE=1: the store's redis-server loads the pdnsrelay
module (build/pdnsrelay.so, or PDNS_RELAY_MODULE) and every path stores
through it; QUEUE_MODULE=tree: into the module's trees (store.index
"tree"). QUEUE_ROUNDS (3) runs every path that many times, in turn, and
prints medians, with each ratio taken against the import of its own
round."""
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
import benchutil  # noqa: E402
import conftest  # noqa: E402

N = int(os.environ.get("QUEUE_RECORDS", "300000"))
# the Zipf-like lines go ten times faster: ten times as many, so that a
# path's span is seconds, not a few polls of the store's count
ZN = int(os.environ.get("QUEUE_ZIPF_RECORDS", str(10 * N)))
# QUEUE_MIXES=zipf or new: one mix only
ONLY = os.environ.get("QUEUE_MIXES", "")
# every path this many times, in turn: the machine's speed drifts
ROUNDS = int(os.environ.get("QUEUE_ROUNDS", "3"))
QUEUE = "6d2b1f3c4a5e4f60a1b2c3d4e5f60718"
MODULE = conftest.MODULE
TREES = os.environ.get("QUEUE_MODULE") == "tree"
STORE_EXTRA = ["--loadmodule", os.path.abspath(MODULE)] + (["trees"] if TREES else []) \
    if os.environ.get("QUEUE_MODULE") in ("1", "tree") else []
SRC = "analyzer:8:" + QUEUE


def stored_span(store, n, proc=None, timeout=600):
    """Polls the store's record count every 5 ms: the seconds from its
    first record to its n-th (the path's steady rate, without any start)."""
    st = store.client()
    t0 = time.time()
    first = None
    while True:
        got = int(st.hget("st:info", "records") or 0)
        now = time.time()
        if got and first is None:
            first = now
        if got >= n or now - t0 > timeout or (proc and proc.poll() not in (None, 0)):
            return got, now - (first or t0)
        time.sleep(0.005)


def redis_cpu(client):
    """Seconds of CPU the redis-server has used (INFO cpu, sys + user)."""
    c = client.info("cpu")
    return c["used_cpu_sys"] + c["used_cpu_user"]


def run_path(work, csv, lines, what, batch):
    """Stores csv's lines by one path; (records stored, seconds, seconds of
    d4-core's Redis CPU while the relay drained its queue, or None; seconds
    of the relay process's CPU, start to end; of `pdns-relay send`'s, or
    None)."""
    # d4-core's analyzer Redis as its server/configs/6380.conf runs it: no
    # append-only file (the store's Redis keeps one)
    d4core = conftest.Redis(work, extra=["--appendonly", "no"])
    store = conftest.Redis(work, extra=STORE_EXTRA)
    d4core.start()
    store.start()
    try:
        st = store.client()
        st_cpu0 = redis_cpu(st)

        def edit(cfg):
            cfg["d4"]["enabled"] = what == "d4"
            if TREES:
                cfg.setdefault("store", {}).update({"module": True, "index": "tree"})
            if what == "queue":
                cfg["d4core"] = {"redis": "redis://127.0.0.1:%d/0" % d4core.port,
                                 "batch": batch, "queues": [{"uuid": QUEUE}]}
        relay = benchutil.store_relay(work, store, edit)
        n = len(lines)
        if what == "import":
            p = subprocess.Popen([conftest.BIN, "import", "-c", relay.config, csv],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            got, secs = stored_span(store, n, p)
            store_cpu = redis_cpu(st) - st_cpu0
            cpu = benchutil.cpu_seconds(p.pid, ended=True)
            if p.wait():
                sys.exit(p.stderr.read().decode())
            return got, secs, None, cpu, None, store_cpu
        if what == "queue":  # what d4-core's server pushed, before the relay starts
            q = d4core.client()
            for i in range(0, n, 10000):
                q.lpush(SRC, *lines[i:i + 10000])
            cpu0 = redis_cpu(q)
        relay.logf = open(relay.log, "ab")
        relay.proc = subprocess.Popen([conftest.BIN, "run", "-c", relay.config],
                                      stdout=relay.logf, stderr=relay.logf)
        send = None
        if what == "d4":
            relay.wait_ready(30)
            send = subprocess.Popen([conftest.BIN, "send", "--host", "127.0.0.1", "--port",
                                     str(relay.d4_port), "--uuid",
                                     conftest.SENSORS["sensor-a"][0], "--key-file",
                                     os.path.join(work, "sensor-a.key"), "--insecure", csv],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        got, secs = stored_span(store, n)
        store_cpu = redis_cpu(st) - st_cpu0
        send_cpu = None
        if send:
            send_cpu = benchutil.cpu_seconds(send.pid, ended=True)
            send.wait()
        cpu = redis_cpu(q) - cpu0 if what == "queue" else None
        relay_cpu = benchutil.cpu_seconds(relay.proc.pid)
        relay.stop()
        return got, secs, cpu, relay_cpu, send_cpu, store_cpu
    finally:
        d4core.stop()
        store.stop()


PATHS = (("import", "pdns-relay import (baseline)", None),
         ("d4", "D4/TLS -> store (pdns-relay send)", None),
         ("queue", "d4-core queue -> store, d4core.batch 2000 (default)", 2000),
         ("queue", "d4-core queue -> store, d4core.batch 10000", 10000))


def spread(xs, fmt):
    """The median of xs, and its minimum-maximum when there are several."""
    m = fmt % statistics.median(xs)
    return m if fmt % min(xs) == fmt % max(xs) else "%s (%s-%s)" % (m, fmt % min(xs), fmt % max(xs))


def main():
    print(benchutil.machine())
    work = benchutil.workdir()
    here = os.path.dirname(__file__)
    mixes = (("zipf", "Zipf-like (gen_csv.py)", ["gen_csv.py", str(ZN)]),
             ("new", "~63 % new triples (gen_pdns.py 0.6)", ["gen_pdns.py", str(N), "0.6"]))
    print("\nevery source -> store, %d Zipf-like and %d ~63 %%-new generated lines, each "
          "path from its first stored record to its last, %d round(s) of every path in turn: "
          "medians (minimum-maximum); a ratio is to the import of the same round%s" % (
              ZN, N, ROUNDS, "; the store through the pdnsrelay module" +
              ("'s trees" if TREES else "") if STORE_EXTRA else ""))
    print("| lines | path | records stored | records/s | vs import | the relay's CPU a line "
          "(vs import) | pdns-relay send's CPU a line | d4-core's Redis CPU a line | "
          "the store's Redis CPU a line |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key, mix, gen in mixes:
        if ONLY and key != ONLY:
            continue
        csv = os.path.join(work, "q.csv")
        with open(csv, "w") as f:
            subprocess.run([sys.executable, os.path.join(here, gen[0])] + gen[1:], stdout=f,
                           check=True)
        lines = open(csv, "rb").read().splitlines()
        # per path, per round: records stored, records/s, its ratio to the
        # round's import, and CPU a line (us) of the relay, its ratio,
        # send, d4-core's Redis and the store's Redis
        seen = [[] for _ in PATHS]
        for _ in range(ROUNDS):
            base = None
            for k, (what, _label, batch) in enumerate(PATHS):
                got, secs, cpu, relay_cpu, send_cpu, store_cpu = run_path(
                    work, csv, lines, what, batch)
                rate = got / secs
                per = [v * 1e6 / got if v is not None else None
                       for v in (relay_cpu, send_cpu, cpu, store_cpu)]
                base = base or (rate, per[0])
                seen[k].append((got, rate, rate / base[0], per[0], per[0] / base[1]) +
                               tuple(per[1:]))
        for (what, label, _), runs in zip(PATHS, seen):
            col = list(zip(*runs))

            def us(i):
                if col[i][0] is None:
                    return "-"
                return spread(col[i], "%.2f") + " us"
            print("| %s | %s | %d | %s | %s | %s us (%s) | %s | %s | %s |" % (
                mix, label, min(col[0]), spread(col[1], "%.0f"), spread(col[2], "%.2fx"),
                spread(col[3], "%.2f"), spread(col[4], "%.2fx"), us(5), us(6), us(7)),
                flush=True)


if __name__ == "__main__":
    main()
