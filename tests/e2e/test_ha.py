"""One relay on several processes (ha.enabled), active-active: every
process takes sensors, stores what it takes and answers queries; the mixer's
input of every process goes to one stream in Redis, and the process holding
the lease consumes it: one mixer, whose thresholds count sensors seen by any
process, and one delivery to each partner. When the holder dies (kill -9:
within the lease) or stops (at once: it gives the lease back), another
process takes over the pool (checkpoint plus the stream since) and the
partners' chains: every triple once, no chain broken, nothing dropped as a
resend."""
import os
import re
import signal
import struct
import time

import pytest

from test_partners import a_and_b, policy_to_b, rrnames
from test_policy import FAST_MIXER, batch, outbox, stream, write_policy

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
    policy to B and the store."""
    a = relay_factory(extra={
        "relay_id": "relay-a", "redis": url, "store": {"enabled": True},
        "mixer": dict(FAST_MIXER, journal="redis"), "ha": {"enabled": True, "lease": LEASE},
        "policies": {"dir": "partners", "outbox_dir": "outbox"}})
    os.makedirs(os.path.join(a.dir, "partners"))
    policy_to_b(a, b, tmp_path)
    return a


def holds(relay):
    return relay.metrics().get("pdns_relay_ha_holder") == 1


def holder_and_b(relay_factory, redis_server, workdir, tmp_path, lease=LEASE, **policy):
    """Partner B, and relay-a holding the lease (its mixer's journal in
    redis_server) with its policy to B; and the Redis URL."""
    url = "redis://127.0.0.1:%d/0" % redis_server.port
    a1, b = a_and_b(relay_factory, None, workdir, tmp_path, a_extra={
        "redis": url, "mixer": dict(FAST_MIXER, journal="redis"),
        "ha": {"enabled": True, "lease": lease}})
    policy_to_b(a1, b, tmp_path, **policy)
    a1.start()
    assert a1.wait_for(lambda: holds(a1)), a1.log_text()
    return a1, b, url


def follower(relay_factory, url, lease=LEASE, sensors=("sensor-a", "sensor-b")):
    """Another relay-a process, following."""
    a2 = relay_factory(sensors=sensors, extra={
        "relay_id": "relay-a", "redis": url, "mixer": dict(FAST_MIXER, journal="redis"),
        "ha": {"enabled": True, "lease": lease}}).start()
    assert a2.wait_for(lambda: "follows" in a2.log_text())
    return a2


def stored_counts(relay, tag):
    """{name: count} of the store's triples under *.<tag>.test, asked of relay."""
    from test_store import Api
    got, _ = Api(relay.http_port).page("/query/*.%s.test?limit=1000" % tag)
    return {o["rrname"]: o["count"] for o in got}


@pytest.mark.parametrize("where", ["one server", pytest.param("cluster", marks=pytest.mark.slow)])
def test_every_process_takes_sensors_and_one_mixes(where, request, relay_factory, workdir,
                                                    tmp_path):
    import redis as redislib
    if where == "cluster":  # the lease, the pool, the stream, the outboxes and the store
        cl = request.getfixturevalue("cluster")
        url = cl.url()
        r = redislib.RedisCluster(host="127.0.0.1", port=cl.ports[0])
    else:
        rs = request.getfixturevalue("redis_server")
        url = "redis://127.0.0.1:%d/0" % rs.port
        r = rs.client()
    a1, b = a_and_b(relay_factory, None, workdir, tmp_path, a_extra={
        "redis": url, "store": {"enabled": True}, "mixer": dict(FAST_MIXER, journal="redis"),
        "ha": {"enabled": True, "lease": LEASE}})
    policy_to_b(a1, b, tmp_path)
    a1.start()
    assert a1.wait_for(lambda: holds(a1)), a1.log_text()
    # a2 takes sensors at once, while a1 holds the lease
    a2 = relay_a(relay_factory, url, tmp_path, b).start()
    assert a2.wait_for(lambda: "follows" in a2.log_text()) and not holds(a2), a2.log_text()
    # min_sensors 2: one sensor at each process, one mixer sees both
    send(a1, "sensor-a", batch("h1", 40))
    send(a2, "sensor-b", batch("h1", 40))
    assert b.wait_for(lambda: len(rrnames(b)) == 40, 20), a1.log_text()[-1500:]
    assert a2.metrics()["pdns_relay_mixer_batches_total"] == 0
    # the holder says how far behind the stream it reads; a follower reads none
    assert a1.metrics()["pdns_relay_mixer_journal_lag_seconds"] < 5
    assert "pdns_relay_mixer_journal_lag_seconds" not in a2.metrics()
    # given to a2, pooled by a1 (one sensor only), never released
    send(a2, "sensor-a", batch("h2", 20))
    assert a1.wait_for(lambda: a1.metrics()["pdns_relay_mixer_pool_triples"] == 20), \
        a1.log_text()[-1500:]
    a1.stop(signal.SIGKILL)
    t0 = time.time()
    assert a2.wait_for(lambda: holds(a2), LEASE + 10), a2.log_text()[-2000:]
    took = time.time() - t0
    assert took < LEASE + 5, took
    # a1's checkpoint (its last batch) and the stream since: h2's 20 records
    assert "20 records replayed from the journal" in a2.log_text(), a2.log_text()[-2000:]
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
    # the store has every record either process took, once
    for tag, n in (("h1", 40), ("h2", 20), ("h3", 30)):
        assert a2.wait_for(lambda: stored_counts(a2, tag) ==
                           {"h%d.%s.test" % (i, tag): 2 for i in range(n)}, 20), \
            (tag, stored_counts(a2, tag))
    # the stream holds what was taken since the last checkpoint, no more
    assert r.xlen("{pdns-relay:relay-a:mixer}:journal") <= 10
    # what an operator sees: the holder, the mixer's state in Redis
    from conftest import BIN
    import subprocess
    st = subprocess.run([BIN, "cluster-status", "-c", a2.config], capture_output=True,
                        text=True, timeout=30)
    assert st.returncode == 0, st.stdout + st.stderr
    assert ":%d " % a2.proc.pid in st.stdout and "lease: held by" in st.stdout, st.stdout
    assert "mixer in Redis: checkpoint" in st.stdout
    assert "mixer reads the journal up to " in st.stdout, st.stdout

    # a clean stop gives the lease back: a third process takes over at once
    a3 = relay_a(relay_factory, url, tmp_path, b).start()
    assert not holds(a3)
    assert a2.stop() == 0
    assert "the lease is given back" in a2.log_text()
    t0 = time.time()
    assert a3.wait_for(lambda: holds(a3), LEASE + 10), a3.log_text()[-2000:]
    assert time.time() - t0 < LEASE, time.time() - t0
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
    # a process that follows stops cleanly on SIGTERM
    a4 = relay_a(relay_factory, url, tmp_path, b).start()
    assert not holds(a4)
    assert a4.stop() == 0


def test_a_process_with_other_sources_is_not_mixed(relay_factory, redis_server, workdir,
                                                  tmp_path):
    """Journal entries carry source numbers; a process whose sensors are
    listed in another order would have the holder count its sensor-b as
    sensor-a, and release a name only sensor-b saw (min_sensors 2). Each
    entry carries the fingerprint of its writer's sources: the holder
    refuses other ones, says so, counts them, and mixes none of them."""
    a1, b, url = holder_and_b(relay_factory, redis_server, workdir, tmp_path)
    a2 = follower(relay_factory, url, sensors=("sensor-b", "sensor-a"))
    send(a2, "sensor-b", batch("h5", 20))   # a2's source 0
    send(a1, "sensor-b", batch("h5", 20))   # a1's source 1
    assert a1.wait_for(lambda: a1.metrics()["pdns_relay_mixer_journal_foreign_total"] >= 1), \
        a1.log_text()[-1500:]
    assert "differ from this one's" in a1.log_text()
    for name in ("sensor-a", "sensor-b"):
        send(a1, name, batch("h6", 20))
    assert b.wait_for(lambda: len(rrnames(b)) >= 20, 20), a1.log_text()[-1500:]
    assert all(".h6." in n for n in rrnames(b)), rrnames(b)
    assert a1.metrics()["pdns_relay_mixer_pool_triples"] == 20  # h5: sensor-b only


@pytest.mark.parametrize("how", ["kill -9 and restart", "takeover"])
def test_the_delay_line_survives(how, relay_factory, redis_server, workdir, tmp_path):
    """Records waiting in partner B's delay line (delay_min 1 s plus an
    exponential jitter of mean 2 s) when the relay is killed with -9, part
    of them already at B: the restarted relay (the checkpoint in state_dir), or
    the process that takes over (the checkpoint in Redis), sends the others,
    each once; the partner's outbox says which had left."""
    url = "redis://127.0.0.1:%d/0" % redis_server.port
    extra = {"redis": url, "mixer": dict(FAST_MIXER, journal="redis")} if how == "takeover" \
        else {"state_dir": str(tmp_path / "a-state")}
    if how == "takeover":
        extra["ha"] = {"enabled": True, "lease": LEASE}
    else:
        os.makedirs(extra["state_dir"])
    a1, b = a_and_b(relay_factory, redis_server if how != "takeover" else None, workdir,
                    tmp_path, a_extra=extra)
    policy_to_b(a1, b, tmp_path, delay_min=1, delay_jitter=2)
    if how == "takeover":  # and a partner without an endpoint: its outbox file only
        write_policy(os.path.join(a1.dir, "partners", "alpha.json"), delay_min=1,
                     delay_jitter=2)
    a1.start()
    delayed = 'pdns_relay_partner_delayed{partner="relay-b"}'
    for name in ("sensor-a", "sensor-b"):
        send(a1, name, batch("dl", 60))
    assert a1.wait_for(lambda: a1.metrics()[delayed] + len(rrnames(b)) == 60, 20)
    # some at B (and alpha), the others waiting
    assert b.wait_for(lambda: len(rrnames(b)) >= 1 and (how != "takeover" or outbox(a1)), 30)
    left = a1.metrics()[delayed]
    assert 0 < left < 60, left
    if how == "takeover":
        a2 = relay_a(relay_factory, url, tmp_path, b)
        policy_to_b(a2, b, tmp_path, delay_min=1, delay_jitter=2)
        write_policy(os.path.join(a2.dir, "partners", "alpha.json"), delay_min=1,
                     delay_jitter=2)
        a2.start()
        assert a2.wait_for(lambda: "follows" in a2.log_text())
        a1.stop(signal.SIGKILL)
        assert a2.wait_for(lambda: holds(a2), LEASE + 10), a2.log_text()[-2000:]
        after = a2
    else:
        a1.stop(signal.SIGKILL)
        after = a1.start()
    assert after.wait_for(lambda: "delayed records restored" in after.log_text(), 20), \
        after.log_text()[-2000:]
    assert b.wait_for(lambda: len(rrnames(b)) >= 60, 60), (len(rrnames(b)),
                                                           after.log_text()[-2000:])
    assert after.wait_for(lambda: after.metrics()[delayed] == 0, 30)
    names = rrnames(b)
    assert len(names) == 60 and len(set(names)) == 60, sorted(names)
    m = b.metrics()
    assert m['pdns_relay_partner_in_batches_total{partner="relay-a",result="duplicate"}'] == 0
    assert "chain is broken" not in b.log_text() and "never arrived" not in b.log_text()
    if how == "takeover":
        assert a2.wait_for(
            lambda: a2.metrics()['pdns_relay_partner_delayed{partner="alpha"}'] == 0, 30)
        alpha = [o["rrname"] for rl in (a1, a2) for o in outbox(rl)]
        assert len(alpha) == 60 and len(set(alpha)) == 60, sorted(alpha)
        assert "partner alpha: its chain goes on from its outbox in Redis" in a2.log_text()


def test_totals_move_with_the_lease(relay_factory, redis_server, workdir, tmp_path):
    """counts "total": each record B gets carries the sum of what B was sent
    of its triple. The holder keeps a copy of those totals in Redis beside
    B's outbox, so the process that takes over goes on from them: after the
    takeover B gets 4 for a triple it had 2 of, not 2 again."""
    a1, b, url = holder_and_b(relay_factory, redis_server, workdir, tmp_path, counts="total")
    a2 = relay_a(relay_factory, url, tmp_path, b)
    policy_to_b(a2, b, tmp_path, counts="total")
    a2.start()
    assert a2.wait_for(lambda: "follows" in a2.log_text())
    for name in ("sensor-a", "sensor-b"):
        send(a1, name, batch("t1", 20))
    assert b.wait_for(lambda: len(rrnames(b)) == 20, 20)
    assert {o["count"] for o in b.output_lines()} == {2}
    a1.stop(signal.SIGKILL)
    assert a2.wait_for(lambda: holds(a2), LEASE + 10), a2.log_text()[-2000:]
    assert "20 triples' totals taken from Redis" in a2.log_text(), a2.log_text()[-2000:]
    for name in ("sensor-a", "sensor-b"):
        send(a2, name, batch("t1", 20))
    assert b.wait_for(lambda: len(rrnames(b)) == 40, 20), a2.log_text()[-2000:]
    last = {o["rrname"]: o["count"] for o in b.output_lines()}
    assert set(last.values()) == {4}, last


def test_a_partner_reaching_another_process_has_its_resends_dropped(relay_factory, redis_server,
                                                                    workdir, tmp_path):
    """A partner relay's chain as taken (its last sequence number and hash)
    is kept in Redis beside the journal: when the partner reaches another
    process of the relay (its first went away, or a balancer sent it
    there), that process drops what the first took (a batch sent again
    after its acknowledgement was lost) and takes the next, whose chain
    goes on from the first's."""
    from test_partners import A_HMAC, A_UUID, batches_of, send_batches
    a = relay_factory(extra={"relay_id": "relay-a", "mixer": FAST_MIXER,
                             "policies": {"dir": "partners", "outbox_dir": "outbox"}})
    os.makedirs(os.path.join(a.dir, "partners"))
    write_policy(os.path.join(a.dir, "partners", "b.json"), partner="relay-b",
                 sensor_id="relay")
    a.start()
    box = os.path.join(a.dir, "outbox", "relay-b.ndjson")
    for k, tag in enumerate(("p1", "p2", "p3")):  # a batch each
        for name in ("sensor-a", "sensor-b"):
            send(a, name, batch(tag, 10))
        assert a.wait_for(lambda: os.path.exists(box) and len(batches_of(box)) == k + 1, 20)
    texts = batches_of(box)
    (tmp_path / "a.hmac").write_bytes(A_HMAC)
    os.chmod(tmp_path / "a.hmac", 0o600)
    url = "redis://127.0.0.1:%d/0" % redis_server.port

    def relay_b():
        return relay_factory(sensors=("sensor-c",), extra={
            "relay_id": "relay-b", "redis": url, "store": {"enabled": True},
            "mixer": dict(FAST_MIXER, min_sensors=1, journal="redis"),
            "ha": {"enabled": True, "lease": LEASE},
            "partners_in": [{"name": "relay-a", "uuid": A_UUID,
                             "key_file": str(tmp_path / "a.hmac"),
                             "pubkey": os.path.join(workdir, "relay.pub")}]}).start()

    def batches(relay, result):
        return relay.metrics()['pdns_relay_partner_in_batches_total{partner="relay-a",'
                               'result="%s"}' % result]
    b1 = relay_b()
    assert b1.wait_for(lambda: holds(b1))
    b2 = relay_b()
    assert b2.wait_for(lambda: "follows" in b2.log_text())
    s = send_batches(b1.d4_port, texts[:2])
    assert b1.wait_for(lambda: batches(b1, "taken") == 2, 20), b1.log_text()[-1500:]
    s.close()
    # batch 2's acknowledgement was lost: the partner sends it again, to b2
    s = send_batches(b2.d4_port, texts[1:])
    assert b2.wait_for(lambda: batches(b2, "taken") + batches(b2, "duplicate") == 2, 20), \
        b2.log_text()[-1500:]
    s.close()
    assert batches(b2, "duplicate") == 1 and batches(b2, "taken") == 1
    assert batches(b2, "refused") == 0 and "never arrived" not in b2.log_text()
    assert "partner relay-a: batch 2 was taken by another process" in b2.log_text()
    # the store has each of the partner's records once (a count of 2: both
    # of A's sensors saw each name)
    for tag in ("p1", "p2", "p3"):
        assert b2.wait_for(lambda: stored_counts(b2, tag) ==
                           {"h%d.%s.test" % (i, tag): 2 for i in range(10)}, 20), \
            (tag, stored_counts(b2, tag))


def test_a_redis_that_wants_a_password(relay_factory, workdir, tmp_path):
    """The relay's Redis and d4-core's want a password (requirepass, or an
    ACL user's): the URL's credentials, percent-encoded, go with every
    connection the relay makes (store, outbox, mixer journal and lease,
    d4-core queue), and none of them shows in the log. A wrong password is
    logged as refused, the relay is not ready, and it tries again."""
    from urllib.parse import quote
    from test_queue import QUEUE, lines, push
    from conftest import Redis
    pw = "s3cret:@/%x"
    rs = Redis(workdir, password=pw,
               extra=["--user", "relay", "on", ">acl-pw", "~*", "&*", "+@all"])
    rs.start()
    try:
        url = "redis://:%s@127.0.0.1:%d/0" % (quote(pw, safe=""), rs.port)
        a, b = a_and_b(relay_factory, None, workdir, tmp_path, a_extra={
            "redis": url, "store": {"enabled": True},
            "mixer": dict(FAST_MIXER, journal="redis"), "ha": {"enabled": True, "lease": LEASE},
            "d4core": {"redis": "redis://relay:acl-pw@127.0.0.1:%d/0" % rs.port,
                       "queues": [{"uuid": QUEUE, "sensor": "d4core-east"}]}})
        policy_to_b(a, b, tmp_path)
        a.start()
        assert a.wait_for(lambda: holds(a)), a.log_text()
        send(a, "sensor-a", batch("pw", 30))
        send(a, "sensor-b", batch("pw", 30))
        assert b.wait_for(lambda: len(rrnames(b)) == 30, 20), a.log_text()[-1500:]
        push(rs.client(), lines(500))
        assert a.wait_for(lambda: a.metrics().get("pdns_relay_store_records_total", 0) >= 560,
                          20), a.log_text()[-1500:]
        assert rs.client().hget("st:info", "records") == b"560"
        bad = relay_factory(extra={"redis": "redis://relay:n0t-the-pw@127.0.0.1:%d/0" % rs.port,
                                   "store": {"enabled": True}}).start(ready=False)
        assert bad.wait_for(lambda: "AUTH" in bad.log_text(), 20), bad.log_text()
        assert bad.readyz()[0] == 503

        # it tries again with backoff (Redis's ACL LOG counts the refusals)
        # and says so once a link, not at every attempt
        def refusals():
            return sum(e["count"] for e in rs.client().acl_log()
                       if e["reason"] == "auth" and e["username"] == "relay")
        assert bad.wait_for(lambda: refusals() >= 6, 40), refusals()
        said = [line.split(" AUTH refused")[0].split(" ", 2)[-1]
                for line in bad.log_text().splitlines() if "AUTH refused" in line]
        assert said and len(said) == len(set(said)), said
        for r in (a, bad):
            text = r.log_text()
            for secret in (pw, quote(pw, safe=""), "acl-pw", "n0t-the-pw"):
                assert secret not in text, (secret, text[-2000:])
    finally:
        rs.stop()


def test_a_stalled_holder_asks_redis_before_it_stops(relay_factory, redis_server, workdir,
                                                     tmp_path):
    """A holder whose loop stood still for more than two thirds of the lease
    (a slow takeover, a paused VM, SIGSTOP) asks Redis before it goes on: the
    lease still its own, it renews it and goes on mixing and delivering; the
    lease taken by another meanwhile, it stops at once (exit status 3) and
    delivers nothing more."""
    lease = 9
    a1, b, url = holder_and_b(relay_factory, redis_server, workdir, tmp_path, lease)
    a2 = follower(relay_factory, url, lease)
    # stopped for 6.3 s: past two thirds of the lease (6 s) since its last
    # renewal, and at least 1.2 s before the lease runs out (renewed every
    # 1.5 s): the time it has to wake and ask
    a1.proc.send_signal(signal.SIGSTOP)
    time.sleep(6.3)
    a1.proc.send_signal(signal.SIGCONT)
    assert a1.wait_for(lambda: "still this process's: renewed" in a1.log_text(), 10), \
        a1.log_text()[-1500:]
    assert a1.proc.poll() is None and holds(a1) and not holds(a2)
    for name in ("sensor-a", "sensor-b"):
        send(a1, name, batch("st1", 10))
    assert b.wait_for(lambda: len(rrnames(b)) == 10, 20), a1.log_text()[-1500:]
    # stopped past the lease: a2 takes over, and a1 stops when it wakes
    a1.proc.send_signal(signal.SIGSTOP)
    assert a2.wait_for(lambda: holds(a2), lease + 10), a2.log_text()[-2000:]
    a1.proc.send_signal(signal.SIGCONT)
    a1.proc.wait(15)
    assert a1.proc.returncode == 3, a1.log_text()[-1500:]
    assert "the lease is no longer ours" in a1.log_text(), a1.log_text()[-1500:]
    assert len(rrnames(b)) == 10


def journal_records(blob):
    """The records of a journal entry's "r" field: each a 48-byte header
    (relay/mix.c, jrec: name length at byte 36, rdata length at 40), then
    its name and rdata."""
    n = off = 0
    while off + 48 <= len(blob):
        name_len, rdata_len = struct.unpack_from("<H", blob, off + 36)[0], \
            struct.unpack_from("<I", blob, off + 40)[0]
        off += 48 + name_len + rdata_len
        n += 1
    return n


@pytest.mark.slow
def test_a_long_takeover_keeps_the_lease(relay_factory, redis_server):
    """A takeover replays the mixer's journal since the last checkpoint; with
    a long journal (a holder that stood still while the other processes went
    on taking records) it takes longer than the lease. The process renews
    the lease as it goes, so that it is still the holder when the takeover
    ends, rather than losing the lease to its own takeover (exit 3) and
    leaving the next process to try the same."""
    url = "redis://127.0.0.1:%d/0" % redis_server.port
    r = redis_server.client()
    lease_key = "{pdns-relay:relay-a:mixer}:lease"
    r.set(lease_key, "a-holder-that-stood-still 1", px=600000)
    a2 = follower(relay_factory, url, lease=1)
    send(a2, "sensor-a", batch("lt", 2000))
    journal = "{pdns-relay:relay-a:mixer}:journal"
    assert a2.wait_for(lambda: sum(journal_records(f[b"r"]) for _, f in r.xrange(journal))
                       == 2000)
    entries = r.xrange(journal)
    # the same entries again and again: a journal of millions of records,
    # which take the replay longer than the lease (1 s) on any machine
    copies = 4000
    pipe = r.pipeline(transaction=False)
    for _ in range(copies):
        for _, fields in entries:
            pipe.xadd(journal, fields)
    pipe.execute()
    taken = 2000 * (copies + 1)
    r.delete(lease_key)
    assert a2.wait_for(lambda: "records taken from the journal" in a2.log_text() or
                       a2.proc.poll() is not None, 120), a2.log_text()[-2000:]
    assert a2.proc.poll() is None, a2.log_text()[-2000:]
    assert "%d records taken from the journal" % taken in a2.log_text(), a2.log_text()[-2000:]
    assert a2.wait_for(lambda: holds(a2)), a2.log_text()[-2000:]
    took = re.search(r"taking over took (\d+) ms; the lease is still this process's",
                     a2.log_text())
    assert took and int(took.group(1)) > 1000, a2.log_text()[-2000:]  # longer than the lease
    assert r.get(lease_key).decode().startswith(a2.log_text().split("this process (")[1]
                                                .split(")")[0])
