"""One relay on several processes (ha.enabled): the process holding the
lease in Redis runs everything; another waits on standby and takes over
when the holder dies (kill -9: within the lease) or stops (at once: it gives
the lease back). The pool and the partners' chains are in Redis
(mixer.journal "redis"), so the new holder releases what the old one had
pooled, and partner B takes its batches as the chain's next ones: every
triple once, no chain broken, nothing dropped as a resend."""
import os
import signal
import time

import pytest

from test_partners import a_and_b, policy_to_b, rrnames
from test_policy import FAST_MIXER, batch, stream

LEASE = 2


def send(relay, name, lines):
    """One D4 connection of sensor name, waited for until counted and closed
    (the relay refuses a sensor's second connection while its first is open)."""
    before = relay.sensor_records(name)
    stream(relay, name, lines)
    assert relay.wait_for(lambda: relay.sensor_records(name) >= before + len(lines) and
                          relay.metrics()["pdns_relay_d4_sessions_active"] == 0, 20)


def relay_a(relay_factory, url, tmp_path, b):
    """A relay-a process in a directory of its own (a machine), with the
    policy to B."""
    a = relay_factory(extra={
        "relay_id": "relay-a", "redis": url, "mixer": dict(FAST_MIXER, journal="redis"),
        "ha": {"enabled": True, "lease": LEASE},
        "policies": {"dir": "partners", "outbox_dir": "outbox"}})
    os.makedirs(os.path.join(a.dir, "partners"))
    policy_to_b(a, b, tmp_path)
    return a


@pytest.mark.parametrize("where", ["one server", pytest.param("cluster", marks=pytest.mark.slow)])
def test_a_standby_takes_over_the_mixer_and_delivery(where, request, relay_factory, workdir,
                                                     tmp_path):
    import redis as redislib
    if where == "cluster":  # the lease, the pool, the outboxes and the store
        cl = request.getfixturevalue("cluster")
        url = cl.url()
        r = redislib.RedisCluster(host="127.0.0.1", port=cl.ports[0])
    else:
        rs = request.getfixturevalue("redis_server")
        url = "redis://127.0.0.1:%d/0" % rs.port
        r = rs.client()
    a1, b = a_and_b(relay_factory, None, workdir, tmp_path, a_extra={
        "redis": url, "mixer": dict(FAST_MIXER, journal="redis"),
        "ha": {"enabled": True, "lease": LEASE}})
    policy_to_b(a1, b, tmp_path)
    a1.start()
    assert "holds the lease" in a1.log_text()
    a2 = relay_a(relay_factory, url, tmp_path, b).start(standby=True)
    assert a2.wait_for(lambda: "on standby" in a2.log_text(), 10), a2.log_text()
    for name in ("sensor-a", "sensor-b"):
        send(a1, name, batch("h1", 40))
    assert b.wait_for(lambda: len(rrnames(b)) == 40, 20), a1.log_text()[-1500:]
    # pooled by a1, never released: one sensor only (min_sensors 2)
    send(a1, "sensor-a", batch("h2", 20))
    assert a1.wait_for(lambda: a1.metrics()["pdns_relay_mixer_pool_triples"] == 20)
    # and journalled in Redis (every 100 ms)
    assert a1.wait_for(lambda: sum(len(e[1][b"r"]) for e in
                                   r.xrange("{pdns-relay:relay-a:mixer}:journal")) >= 20 * 60)
    a1.stop(signal.SIGKILL)
    t0 = time.time()
    from conftest import wait_port
    wait_port(a2.http_port, a2.proc, 30)
    took = time.time() - t0
    assert took < LEASE + 5, took
    a2.wait_ready()
    assert "20 records replayed" in a2.log_text() or "20 pooled triples restored" in \
        a2.log_text(), a2.log_text()[-2000:]
    # the other sensor sees the same names at a2: released there, once
    send(a2, "sensor-b", batch("h2", 20))
    for name in ("sensor-a", "sensor-b"):
        send(a2, name, batch("h3", 30))
    assert b.wait_for(lambda: len(rrnames(b)) == 90, 30), a2.log_text()[-2000:]
    names = rrnames(b)
    assert len(set(names)) == 90
    m = b.metrics()
    assert m['pdns_relay_partner_in_batches_total{partner="relay-a",result="duplicate"}'] == 0
    assert m['pdns_relay_partner_in_batches_total{partner="relay-a",result="refused"}'] == 0
    assert "chain is broken" not in b.log_text() and "never arrived" not in b.log_text()
    # what an operator sees: the holder, the mixer's state in Redis
    from conftest import BIN
    import subprocess
    st = subprocess.run([BIN, "cluster-status", "-c", a2.config], capture_output=True,
                        text=True, timeout=30)
    assert st.returncode == 0, st.stdout + st.stderr
    assert ":%d " % a2.proc.pid in st.stdout and "lease: held by" in st.stdout, st.stdout
    assert "mixer in Redis: checkpoint" in st.stdout

    # a clean stop gives the lease back: a third process takes over at once
    a3 = relay_a(relay_factory, url, tmp_path, b).start(standby=True)
    assert a3.wait_for(lambda: "on standby" in a3.log_text(), 10)
    assert a2.stop() == 0
    assert "the lease is given back" in a2.log_text()
    t0 = time.time()
    wait_port(a3.http_port, a3.proc, 30)
    assert time.time() - t0 < LEASE, time.time() - t0
    a3.wait_ready()
    for name in ("sensor-a", "sensor-b"):
        send(a3, name, batch("h4", 10))
    assert b.wait_for(lambda: len(rrnames(b)) == 100, 30), a3.log_text()[-2000:]
    assert len(set(rrnames(b))) == 100
    assert "chain is broken" not in b.log_text() and "never arrived" not in b.log_text()
    # the three processes' signed batches (each kept a COF copy in its own
    # outbox_dir), one after the other, are one chain: `verify` says so
    whole = tmp_path / ("chain-%s.ndjson" % where.replace(" ", "-"))
    with open(whole, "w") as out:
        for rl in (a1, a2, a3):
            with open(os.path.join(rl.dir, "outbox", "relay-b.ndjson")) as f:
                out.write(f.read())
    import subprocess
    from conftest import BIN
    p = subprocess.run([BIN, "verify", "--pubkey", os.path.join(workdir, "relay.pub"),
                        str(whole)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "all verified" in p.stderr, p.stderr
    # a standby stops cleanly on SIGTERM
    a4 = relay_a(relay_factory, url, tmp_path, b).start(standby=True)
    assert a4.wait_for(lambda: "on standby" in a4.log_text(), 10)
    assert a4.stop() == 0
