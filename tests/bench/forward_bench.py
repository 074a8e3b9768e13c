#!/usr/bin/python3
"""Forwarding on loopback: relay A takes N records from two sensors (the
same names, so k = 2 holds), mixes, applies a partner policy, signs, puts
the batches in its Redis outbox and delivers them over D4/TLS to relay B,
which verifies and takes them. Reported: records/s from the first sensor
byte to the last record taken at B (less the idle wait for the mixer tick),
records/s from the mixer's output to the last record taken at B (what issue 6
targets: policy, signing, Redis outbox, D4/TLS and B's verification),
A's CPU time per record in all and after the mixer (from the end of
ingest: the mixer's flush, the policy, COF, hashing and signing, the
outbox, TLS; its inverse is what A alone could forward if B kept up), and the share of A's CPU that hashing
and signing take (A measures the thread CPU time of that work itself:
pdns_relay_partner_signing_seconds_total).
Run twice: with both relays' local stores off (the forwarding path alone)
and on (each relay also writes every record it takes to its store on the
same Redis, on the same two cores)."""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
import benchutil  # noqa: E402
import conftest  # noqa: E402

N = int(os.environ.get("BENCH_FORWARD", "200000"))
# One mixer tick after both sensors are in, so the mixer releases all N at
# once and "mixer output to partner" has a clean start.
TICK = int(os.environ.get("BENCH_FORWARD_TICK", "8"))
A_UUID = "a0a0a0a0a0a0400080000000000000aa"


def run(store_on, cluster=False):
    work = benchutil.workdir()
    hm = os.path.join(work, "a.hmac")
    open(hm, "wb").write(b"forward bench hmac")
    os.chmod(hm, 0o600)
    redis = conftest.Redis(work)
    redis.start()
    csv = os.path.join(work, "in.csv")
    with open(csv, "w") as f:
        for i in range(N):
            f.write("1795930651.1||c||s||IN||h%d.fwd.test.||A||10.%d.%d.%d||60||1\n"
                    % (i, (i >> 16) & 255, (i >> 8) & 255, i & 255))
    b = conftest.Relay(work, sensors=("sensor-c",), redis=redis, extra={
        "relay_id": "relay-b", "state_dir": work, "stats_interval": 0,
        "store": {"enabled": store_on, "redis": "redis://127.0.0.1:%d/1" % redis.port},
        "mixer": {"enabled": False},
        "partners_in": [{"name": "relay-a", "uuid": A_UUID, "key_file": hm,
                         "pubkey": os.path.join(work, "relay.pub")}]})
    cfgb = json.load(open(b.config))
    del cfgb["ingest"]  # count only
    json.dump(cfgb, open(b.config, "w"))
    b.start()
    cl = None
    outbox = {}
    if cluster:  # A's outboxes on a 3-master cluster (with replicas) on the same cores
        cl = conftest.Cluster(work)
        cl.start()
        outbox = {"redis": cl.url()}
    a = conftest.Relay(work, redis=None if cluster else redis, extra=dict({
        "relay_id": "relay-a", "stats_interval": 0, "store": {"enabled": store_on},
        "mixer": {"interval": TICK, "hold_min": 0, "hold_jitter": 0, "min_batch": 1,
                  "send_fraction": 1.0, "pool_min": 0, "sensor_quota": 1.0,
                  "time_resolution": 3600, "max_hold": 120, "max_triples": N + 10},
        "policies": {"dir": "partners", "outbox_dir": "outbox"}}, **outbox))
    os.makedirs(os.path.join(a.dir, "partners"))
    json.dump({"partner": "relay-b", "rrtypes": {"allow": ["A"]}, "names": {"allow": ["."]},
               "sensors": {"allow": ["*"]}, "sensor_id": "relay",
               "endpoint": {"host": "127.0.0.1", "port": b.d4_port, "uuid": A_UUID,
                            "hmac_key_file": hm, "insecure": True}},
              open(os.path.join(a.dir, "partners", "b.json"), "w"))
    a.start()
    time.sleep(0.5)
    cpu0 = benchutil.cpu_seconds(a.proc.pid)
    t0 = time.time()
    for name in ("sensor-a", "sensor-b"):
        subprocess.run([conftest.BIN, "send", "--host", "127.0.0.1", "--port", str(a.d4_port),
                        "--uuid", conftest.SENSORS[name][0], "--key-file",
                        os.path.join(work, name + ".key"), "--insecure", csv],
                       check=True, capture_output=True)
    t_ingested = time.time() - t0
    cpu_ingested = benchutil.cpu_seconds(a.proc.pid)  # A idles from here to the tick
    while time.time() - t0 < 300:
        m = b.metrics()
        if m.get('pdns_relay_records_total{source="partner"}', 0) >= N:
            break
        time.sleep(0.01)
    t_end = time.time()
    cpu_fwd = benchutil.cpu_seconds(a.proc.pid) - cpu_ingested
    ma = a.metrics()
    released_first = ma.get("pdns_relay_mixer_released_total", 0) \
        if ma.get("pdns_relay_mixer_batches_total") == 1 else 0
    t_release = ma.get("pdns_relay_mixer_last_batch_time_seconds", 0)
    t = t_end - t0 - max(0.0, t_release - t0 - t_ingested)
    got = b.metrics().get('pdns_relay_records_total{source="partner"}', 0)
    cpu = benchutil.cpu_seconds(a.proc.pid) - cpu0
    # hashing and signing: the CPU time A itself measured around that work
    signing = sum(v for k, v in ma.items()
                  if k.startswith("pdns_relay_partner_signing_seconds_total"))
    batches = sum(v for k, v in ma.items() if k.startswith("pdns_relay_partner_batches_total"))
    a.stop()
    b.stop()
    redis.stop()
    if cl:
        cl.stop()
    shutil.rmtree(work, ignore_errors=True)
    fwd = "%.0f" % (got / (t_end - t_release)) if released_first >= N else "n/a"
    return [
        ("records taken at B", "%d" % got),
        ("records/s, first sensor byte to last at B", "%.0f" % (got / t)),
        ("records/s, mixer output to last at B", fwd),
        ("A's CPU per record after the mixer (ns)", "%.0f" % (cpu_fwd * 1e9 / max(got, 1))),
        ("  A's forwarding capacity, records/s", "%.0f" % (got / max(cpu_fwd, 1e-9))),
        ("A's CPU per forwarded record (ns)", "%.0f" % (cpu * 1e9 / max(got, 1))),
        ("signed batches (records per batch)", "%d (%.0f)" % (batches, got / max(batches, 1))),
        ("hashing + signing per record (ns)", "%.0f" % (signing * 1e9 / max(got, 1))),
        ("hashing + signing share of A's CPU", "%.1f%%" % (100 * signing / max(cpu, 1e-9))),
        ("  ... of A's CPU after the mixer", "%.1f%%" % (100 * signing / max(cpu_fwd, 1e-9))),
    ]


def main():
    print(benchutil.machine())
    off = run(False)
    on = run(True) if not os.environ.get("BENCH_FORWARD_NO_STORE") else off
    cl = run(False, cluster=True) if not os.environ.get("BENCH_FORWARD_NO_CLUSTER") else off
    print("\nForwarding on loopback: %d records, 2 sensors -> relay A (mix, policy, sign, Redis "
          "outbox) -> D4/TLS -> relay B (verify, take)" % N)
    print("(\"n/a\": the mixer split its output over ticks; raise BENCH_FORWARD_TICK)")
    print("(outboxes on cluster: stores off, A's outboxes on a 3-master + 3-replica Redis "
          "Cluster on the same cores, each batch waiting for a replica: WAIT 1)")
    print("%-44s %12s %12s %12s" % ("what", "stores off", "stores on", "on cluster"))
    for (k, a), (_, b), (_, c) in zip(off, on, cl):
        print("%-44s %12s %12s %12s" % (k, a, b, c))


if __name__ == "__main__":
    main()
