"""The mixing stage in the running relay: two sensors send real sensor
output over D4; only triples both saw (k = 2) come out of the mixer, merged,
with coarsened times and no sensor identifiers. The expectation is computed
here from the raw CSV, not from the relay's parser."""
import collections
import ipaddress
import json
import os
import time

import pytest

from conftest import DATA, SENSORS
import d4sensor

NAME_TYPES = {"CNAME", "NS", "PTR", "DNAME", "MX", "SRV", "SOA", "RP"}
RCODES = {"NXDOMAIN", "SERVFAIL", "REFUSED", "FORMERR", "NOTIMPL", "YXDOMAIN",
          "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"}


def norm(name):
    name = name.lower()
    return name[:-1] if len(name) > 1 and name.endswith(".") else name


def triples(path):
    """(rrname, rrtype, rdata) -> [min time, max time, count] from raw CSV."""
    out = {}
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            ts, _c, _s, _cls, q, t, a, ttl, n = line.rstrip("\n").split("||")
            if ttl == "0" and a in RCODES:
                continue
            if t in ("A", "AAAA"):
                a = str(ipaddress.ip_address(a))
            elif t in NAME_TYPES:
                a = norm(a)
            k = (norm(q), t, a)
            sec = int(ts.split(".")[0])
            v = out.setdefault(k, [sec, sec, 0])
            v[0], v[1], v[2] = min(v[0], sec), max(v[1], sec), v[2] + int(n)
    return out


def test_mixer_releases_only_shared_triples(relay_factory):
    relay = relay_factory(extra={"mixer": {
        "interval": 1, "hold_min": 0, "hold_jitter": 0, "min_batch": 1,
        "send_fraction": 1.0, "pool_min": 0, "min_sensors": 2, "sensor_quota": 0.5,
        "time_resolution": 3600, "count_buckets": False, "output_file": "mixed.ndjson"}})
    relay.start()
    assert relay.metrics()["pdns_relay_mixer_last_batch_time_seconds"] == 0
    t_start = time.time()
    a = triples(os.path.join(DATA, "sensor-a.full.csv"))
    b = triples(os.path.join(DATA, "sensor-b.full.csv"))
    shared = {k: (min(a[k][0], b[k][0]), max(a[k][1], b[k][1]), a[k][2] + b[k][2])
              for k in a.keys() & b.keys()}
    assert len(shared) > 500
    for name in ("sensor-a", "sensor-b"):
        s = d4sensor.connect(relay.d4_port)
        with open(os.path.join(DATA, name + ".full.csv"), "rb") as f:
            s.sendall(d4sensor.frame(SENSORS[name][0], SENSORS[name][1], f.read()))
        assert relay.wait_for(lambda: relay.sensor_records(name) > 0)
        s.close()
    mixed = os.path.join(relay.dir, "mixed.ndjson")

    def lines():
        if not os.path.exists(mixed):
            return []
        with open(mixed) as f:
            return [json.loads(l) for l in f]

    assert relay.wait_for(lambda: len(lines()) >= len(shared), 15)
    time.sleep(1.5)  # one more epoch: nothing else may come out
    out = lines()
    got = collections.Counter((o["rrname"], o["rrtype"], o["rdata"]) for o in out)
    assert set(got) == set(shared)           # k = 2: single-sensor triples never leave
    assert max(got.values()) == 1            # each once: merged across sensors
    for o in out:
        tf, tl, count = shared[(o["rrname"], o["rrtype"], o["rdata"])]
        assert "sensor_id" not in o and "time_first_ms" not in o
        assert o["time_first"] % 3600 == 0 and o["time_last"] % 3600 == 0
        assert o["time_first"] <= tf and o["time_last"] >= tl   # rounded outward
        assert o["time_last"] - o["time_first"] <= (tl - tf) + 2 * 3600
        assert o["count"] == count           # summed over both sensors
    m = relay.metrics()
    assert m["pdns_relay_mixer_released_total"] == len(shared)
    assert m["pdns_relay_mixer_batches_total"] >= 1
    assert t_start - 1 <= m["pdns_relay_mixer_last_batch_time_seconds"] <= time.time()
    assert m['pdns_relay_mixer_last_batch{figure="distinct_sensors"}'] == 2
    assert "mixer: batch 1" in relay.log_text()


def test_mixer_bad_config(relay_factory, tmp_path):
    import subprocess
    from conftest import BIN
    relay = relay_factory(extra={"mixer": {"interval": 600, "max_hold": 300}})
    p = subprocess.run([BIN, "run", "-c", relay.config], capture_output=True, text=True, timeout=10)
    assert p.returncode == 1
    assert "key 'mixer': max_hold must be longer than interval" in p.stderr


# triples wait 6 s, and for two sensors
HOLD_MIXER = {"interval": 1, "hold_min": 6, "hold_jitter": 0, "min_batch": 1,
              "send_fraction": 1.0, "pool_min": 0, "min_sensors": 2, "sensor_quota": 1.0,
              "time_resolution": 3600, "count_buckets": False, "output_file": "mixed.ndjson"}


def pool_35(relay):
    """30 triples from both sensors (released after their hold) and 5 from
    one (k = 2 holds them): 35 in the pool."""
    from test_policy import batch, stream
    for name in ("sensor-a", "sensor-b"):
        stream(relay, name, batch("kept", 30))
        assert relay.wait_for(lambda: relay.sensor_records(name) == 30)
    stream(relay, "sensor-a", batch("alone", 5))
    assert relay.wait_for(lambda: relay.metrics()["pdns_relay_mixer_pool_triples"] == 35)


def test_pool_survives_restarts_and_kill9_and_is_never_released_twice(relay_factory):
    """The pool is checkpointed (state_dir/mixer.pool) and every insert
    journalled (state_dir/mixer.journal). Triples pooled at a clean stop,
    and at a kill -9, come back at the next start and are released then,
    each once and not before its hold time; what was released before a
    kill -9 is not released again."""
    import signal
    from test_policy import batch, stream
    mixed = lambda: lines_of(os.path.join(relay.dir, "mixed.ndjson"))
    relay = relay_factory(extra={"mixer": dict(HOLD_MIXER)})
    relay.start()
    t0 = time.time()
    pool_35(relay)
    assert relay.stop() == 0
    saved = os.path.join(relay.dir, "mixer.pool")
    journal = os.path.join(relay.dir, "mixer.journal")
    assert os.stat(saved).st_mode & 0o077 == 0
    assert "35 pooled triples saved" in relay.log_text()
    assert mixed() == []

    relay.start()
    assert "35 pooled triples restored" in relay.log_text()
    assert relay.wait_for(lambda: len(mixed()) == 30, 30)
    assert time.time() - t0 >= 6                    # not before the hold time
    names = [o["rrname"] for o in mixed()]
    assert len(set(names)) == 30 and all(".kept.test" in n for n in names)
    assert relay.metrics()["pdns_relay_mixer_pool_triples"] == 5

    # pooled, journalled, then killed: back after the restart, released once;
    # the 30 released before the kill are not released again
    size0 = os.path.getsize(journal)
    for name in ("sensor-a", "sensor-b"):
        stream(relay, name, batch("crash", 10))
        assert relay.wait_for(lambda: relay.sensor_records(name) >= 10)
    assert relay.wait_for(lambda: relay.metrics()["pdns_relay_mixer_pool_triples"] == 15)
    assert relay.wait_for(lambda: os.path.getsize(journal) >= size0 + 20 * 60)
    relay.stop(signal.SIGKILL)
    relay.start()
    assert "5 pooled triples restored" in relay.log_text()
    assert "20 records replayed" in relay.log_text()
    assert relay.wait_for(lambda: len(mixed()) == 40, 30), relay.log_text()[-1500:]
    names = [o["rrname"] for o in mixed()]
    assert len(set(names)) == 40 and sum(".crash.test" in n for n in names) == 10
    assert relay.metrics()["pdns_relay_mixer_persist_errors_total{what=\"checkpoint\"}"] == 0


# the cluster case adds no code of its own beyond rsync's redirections:
# left out under the sanitizers (slow)
@pytest.mark.parametrize("where", ["one server", pytest.param("cluster", marks=pytest.mark.slow)])
def test_pool_in_redis_survives_the_machine(where, request, relay_factory):
    """mixer.journal "redis": the journal is a stream and the checkpoint a
    string in the relay's Redis (one server, or a Redis Cluster), so the
    pool survives what state_dir does not: each start here is another relay
    process in a fresh directory (another machine) on the same Redis. What
    was pooled at a clean stop and at a kill -9 is released by the next
    one, each triple once, none before its hold time."""
    import signal
    from test_policy import batch, stream
    if where == "cluster":
        url = request.getfixturevalue("cluster").url()
    else:
        r = request.getfixturevalue("redis_server")
        url = "redis://127.0.0.1:%d/0" % r.port
    mixer = dict(HOLD_MIXER, journal="redis")

    def machine():
        return relay_factory(extra={"redis": url, "store": {"enabled": False},
                                    "mixer": dict(mixer)})
    mixed = lambda rl: lines_of(os.path.join(rl.dir, "mixed.ndjson"))  # noqa: E731
    a = machine().start()
    t0 = time.time()
    pool_35(a)
    assert a.stop() == 0
    assert "35 pooled triples saved in Redis" in a.log_text()
    assert mixed(a) == [] and not os.path.exists(os.path.join(a.dir, "mixer.pool"))

    b = machine().start()
    assert "35 pooled triples restored from Redis" in b.log_text()
    assert b.wait_for(lambda: len(mixed(b)) == 30, 30)
    assert time.time() - t0 >= 6                    # not before the hold time
    assert b.metrics()["pdns_relay_mixer_pool_triples"] == 5
    # pooled, journalled, then the machine is gone (kill -9, its directory
    # with it): the next one releases them, once; the 30 released are not
    # released again
    for name in ("sensor-a", "sensor-b"):
        stream(b, name, batch("crash", 10))
        assert b.wait_for(lambda: b.sensor_records(name) >= 10)
    assert b.wait_for(lambda: b.metrics()["pdns_relay_mixer_pool_triples"] == 15)
    import redis as redislib
    if where == "cluster":
        jr = redislib.RedisCluster(host="127.0.0.1", port=int(url.rsplit(":", 1)[1]))
    else:
        jr = r.client()
    journal = "{pdns-relay:e2e:mixer}:journal"
    # the journal goes every 100 ms: its records (60-odd bytes each) are in
    assert b.wait_for(lambda: sum(len(e[1][b"r"]) for e in jr.xrange(journal)) >= 20 * 60)
    b.stop(signal.SIGKILL)
    c = machine().start()
    assert "5 pooled triples restored" in c.log_text()
    assert "20 records replayed" in c.log_text()
    assert c.wait_for(lambda: len(mixed(c)) == 10, 30), c.log_text()[-1500:]
    names = [o["rrname"] for o in mixed(b) + mixed(c)]
    assert len(names) == 40 and len(set(names)) == 40
    assert sum(".crash.test" in n for n in names) == 10
    assert c.metrics()["pdns_relay_mixer_persist_errors_total{what=\"checkpoint\"}"] == 0
    assert c.metrics()["pdns_relay_mixer_persist_errors_total{what=\"journal\"}"] == 0


def test_pool_journal_off(relay_factory):
    """mixer.journal false: nothing is written to the state directory and
    a restart starts with an empty pool, as the log says."""
    from test_policy import batch, stream
    relay = relay_factory(extra={"mixer": {"journal": False, "hold_min": 600}})
    relay.start()
    assert "mixer.journal is off" in relay.log_text()
    for name in ("sensor-a", "sensor-b"):
        stream(relay, name, batch("off", 5))
    assert relay.wait_for(lambda: relay.metrics()["pdns_relay_mixer_pool_triples"] == 5)
    assert relay.stop() == 0
    assert not os.path.exists(os.path.join(relay.dir, "mixer.pool"))
    assert not os.path.exists(os.path.join(relay.dir, "mixer.journal"))
    relay.start()
    assert relay.metrics()["pdns_relay_mixer_pool_triples"] == 0


def lines_of(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f]
