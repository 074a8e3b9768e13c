"""Interconnecting relays: relay A mixes, filters for partner B and signs;
B takes A's batches over D4/TLS (type 2 "pdns-cof" + 254), verifies each
whole before using any record, drops resends, refuses a tampered batch
and closes that session, and never sends A's records back to A."""
import json
import os
import subprocess
import time

import pytest

from conftest import BIN, SENSORS, free_port
from test_policy import FAST_MIXER, batch, stream, write_policy
import d4sensor

A_UUID = "a0a0a0a0a0a0400080000000000000aa"
A_HMAC = b"hmac key B issued to A"


def batches_of(path):
    """A's outbox as a list of batch texts (records + trailer)."""
    out, cur = [], []
    with open(path) as f:
        for line in f:
            cur.append(line)
            if line.startswith('{"pdns_relay_batch"'):
                out.append("".join(cur))
                cur = []
    return out


def send_batches(port, texts, tamper=None):
    s = d4sensor.connect(port)
    s.sendall(d4sensor.frame(A_UUID, A_HMAC, b'{"type": "pdns-cof"}', ftype=2))
    for i, t in enumerate(texts):
        data = t.encode()
        if tamper is not None and i == tamper:
            data = data.replace(b"10.7.", b"10.9.", 1)
        s.sendall(d4sensor.frame(A_UUID, A_HMAC, data, ftype=254))
    return s


def test_two_relays(relay_factory, workdir, tmp_path):
    # relay A: two sensors, a policy for partner "relay-b"
    a = relay_factory(extra={"relay_id": "relay-a", "mixer": FAST_MIXER,
                             "policies": {"dir": "partners", "outbox_dir": "outbox"}})
    os.makedirs(os.path.join(a.dir, "partners"))
    with open(os.path.join(a.dir, "pseudo.key"), "w") as f:
        f.write("pseudonym secret of relay-a for relay-b, long enough\n")
    os.chmod(os.path.join(a.dir, "pseudo.key"), 0o600)
    write_policy(os.path.join(a.dir, "partners", "b.json"), partner="relay-b",
                 sensor_id="pseudonym", pseudonym_key_file="../pseudo.key")
    a.start()
    for name in ("sensor-a", "sensor-b"):
        stream(a, name, batch("p", 60) + batch("p", 10, "AAAA"))
    box = os.path.join(a.dir, "outbox", "relay-b.ndjson")
    assert a.wait_for(lambda: len([l for l in open(box)] if os.path.exists(box) else []) >= 61)
    texts = batches_of(box)
    sent = [json.loads(l) for t in texts for l in t.splitlines()
            if not l.startswith('{"pdns_relay_batch"')]
    assert len(sent) == 60

    # relay B: knows A as a partner relay; shares on to "relay-a" and "third"
    (tmp_path / "a.hmac").write_bytes(A_HMAC)
    os.chmod(tmp_path / "a.hmac", 0o600)
    b = relay_factory(sensors=("sensor-c",), extra={
        "relay_id": "relay-b",
        "mixer": dict(FAST_MIXER, min_sensors=1),
        "partners_in": [{"name": "relay-a", "uuid": A_UUID, "key_file": str(tmp_path / "a.hmac"),
                         "pubkey": os.path.join(workdir, "relay.pub")}],
        "policies": {"dir": "partners", "outbox_dir": "outbox"}})
    os.makedirs(os.path.join(b.dir, "partners"))
    common = dict(sources={"allow": ["d4", "partner"]}, min_sensors=1, sensor_id="relay")
    write_policy(os.path.join(b.dir, "partners", "back.json"), partner="relay-a", **common)
    write_policy(os.path.join(b.dir, "partners", "third.json"), partner="third", reshare=True,
                 **common)
    write_policy(os.path.join(b.dir, "partners", "closed.json"), partner="closed", **common)
    b.start()

    s = send_batches(b.d4_port, texts)
    assert b.wait_for(lambda: len(b.output_lines()) == 60), b.log_text()[-2000:]
    got = b.output_lines()
    assert sorted((o["rrname"], o["rdata"]) for o in got) == \
        sorted((o["rrname"], o["rdata"]) for o in sent)
    # provenance: the partner, then A's pseudonymous sensor ids
    assert all(o["sensor_id"].startswith("relay-a/") and len(o["sensor_id"]) == 8 + 65
               for o in got)
    m = b.metrics()
    assert m['pdns_relay_partner_in_batches_total{partner="relay-a",result="taken"}'] == len(texts)
    # resends (after a reconnect) are dropped by sequence number
    s.sendall(d4sensor.frame(A_UUID, A_HMAC, texts[0].encode(), ftype=254))
    assert b.wait_for(lambda: b.metrics()[
        'pdns_relay_partner_in_batches_total{partner="relay-a",result="duplicate"}'] == 1)
    time.sleep(0.3)
    assert len(b.output_lines()) == 60
    s.close()

    # loop prevention: B's mixer releases A's records; B never sends them back
    # to A, sends them to "third" (reshare), and not to "closed" (no reshare)
    assert b.wait_for(lambda: len(outbox_of(b, "third")) == 60, 15)
    time.sleep(1.5)
    assert outbox_of(b, "relay-a") == []
    assert outbox_of(b, "closed") == []
    m = b.metrics()
    assert m['pdns_relay_partner_denied_total{partner="relay-a",reason="own"}'] == 60
    assert m['pdns_relay_partner_denied_total{partner="closed",reason="reshare"}'] == 60

    # a batch addressed to another partner is refused: B3's relay_id is
    # not the partner A's policy named
    b3 = relay_factory(sensors=("sensor-c",), extra={
        "relay_id": "relay-b3",
        "partners_in": [{"name": "relay-a", "uuid": A_UUID, "key_file": str(tmp_path / "a.hmac"),
                         "pubkey": os.path.join(workdir, "relay.pub")}]})
    b3.start()
    s = send_batches(b3.d4_port, texts[:1])
    assert d4sensor.closed_by_peer(s)
    assert b3.wait_for(lambda: 'is addressed to "relay-b", not to us ("relay-b3")' in b3.log_text())
    assert b3.output_lines() == []

    # a tampered batch is refused whole and ends the session (B2 is known
    # to A as "relay-b": it says so)
    b2 = relay_factory(sensors=("sensor-c",), extra={
        "relay_id": "relay-b2",
        "partners_in": [{"name": "relay-a", "uuid": A_UUID, "key_file": str(tmp_path / "a.hmac"),
                         "pubkey": os.path.join(workdir, "relay.pub"), "addressee": "relay-b"}]})
    b2.start()
    s = send_batches(b2.d4_port, texts[:1], tamper=0)
    assert d4sensor.closed_by_peer(s)
    assert b2.wait_for(lambda: b2.metrics()[
        'pdns_relay_partner_in_batches_total{partner="relay-a",result="refused"}'] == 1)
    assert b2.metrics()['pdns_relay_d4_rejected_sessions_total{reason="batch"}'] == 1
    assert b2.output_lines() == []
    assert "do not match the signed Merkle root" in b2.log_text()


def outbox_of(relay, partner):
    p = os.path.join(relay.dir, "outbox", partner + ".ndjson")
    if not os.path.exists(p):
        return []
    with open(p) as f:
        return [json.loads(l) for l in f if not l.startswith('{"pdns_relay_batch"')]


def a_and_b(relay_factory, redis_server, workdir, tmp_path, a_extra=None):
    """B, which takes relay-a's batches; and A (with Redis, not started yet;
    a_extra: more of A's configuration, such as another `redis`)."""
    (tmp_path / "a.hmac").write_bytes(A_HMAC)
    os.chmod(tmp_path / "a.hmac", 0o600)
    b = relay_factory(sensors=("sensor-c",), extra={
        "relay_id": "relay-b", "state_dir": str(tmp_path),
        "partners_in": [{"name": "relay-a", "uuid": A_UUID, "key_file": str(tmp_path / "a.hmac"),
                         "pubkey": os.path.join(workdir, "relay.pub")}]})
    b.start()
    a = relay_factory(redis=redis_server, extra=dict({
        "relay_id": "relay-a", "mixer": FAST_MIXER,
        "policies": {"dir": "partners", "outbox_dir": "outbox"}}, **(a_extra or {})))
    os.makedirs(os.path.join(a.dir, "partners"))
    return a, b


def policy_to_b(a, b, tmp_path, **extra):
    write_policy(os.path.join(a.dir, "partners", "b.json"), partner="relay-b", sensor_id="relay",
                 endpoint={"host": "127.0.0.1", "port": b.d4_port, "uuid": A_UUID,
                           "hmac_key_file": str(tmp_path / "a.hmac"), "insecure": True},
                 **extra)


def a_delivering_to_b(relay_factory, redis_server, workdir, tmp_path, tag, n, env=None):
    """A (started, with env added to its environment) delivering to B,
    which has A's first n records (a batch of n names `tag`, from both
    sensors)."""
    a, b = a_and_b(relay_factory, redis_server, workdir, tmp_path)
    policy_to_b(a, b, tmp_path)
    if env:
        a.env = dict(os.environ, **env)
    a.start()
    for name in ("sensor-a", "sensor-b"):
        stream(a, name, batch(tag, n))
    assert b.wait_for(lambda: len(rrnames(b)) == n, 20), a.log_text()[-1500:]
    return a, b


def rrnames(relay):
    """The names in relay's COF output file, in order."""
    return [o["rrname"] for o in relay.output_lines()]


def test_delivery_a_to_b_survives_restarts(relay_factory, redis_server, workdir, tmp_path):
    """A delivers to B over D4/TLS from its Redis outbox. B is stopped for a
    while, A is killed with SIGKILL mid-stream: B ends with every record A's
    policy allows, none twice."""
    import signal
    a, b = a_delivering_to_b(relay_factory, redis_server, workdir, tmp_path, "d1", 40)
    assert all(o["sensor_id"] == "relay-a/relay-a" for o in b.output_lines())

    # B goes away; A keeps making batches; B comes back and gets them
    b.stop()
    for name in ("sensor-a", "sensor-b"):
        stream(a, name, batch("d2", 30))
    time.sleep(2.5)
    b.start()
    assert b.wait_for(lambda: len(rrnames(b)) == 70, 30), a.log_text()[-1500:]

    # A is killed mid-stream and restarts from its Redis outbox
    for name in ("sensor-a", "sensor-b"):
        stream(a, name, batch("d3", 30))
    time.sleep(1.5)
    a.stop(signal.SIGKILL)
    a.start()
    for name in ("sensor-a", "sensor-b"):
        stream(a, name, batch("d4", 20))
    assert b.wait_for(lambda: len(set(rrnames(b))) == 120, 30), a.log_text()[-1500:]
    time.sleep(2)
    n = rrnames(b)
    assert len(n) == len(set(n)) == 120  # everything, none twice
    assert a.wait_for(lambda: a.metrics()['pdns_relay_partner_outbox_batches{partner="relay-b"}'] == 0)
    assert b.metrics()['pdns_relay_partner_in_batches_total{partner="relay-a",result="refused"}'] == 0


@pytest.mark.parametrize("bound", ["memory", "file"])
def test_batches_made_while_redis_is_away_are_delivered(relay_factory, redis_server,
                                                        workdir, tmp_path, bound):
    """A's outboxes are in Redis. Batches A signs while that Redis is down
    wait in memory and reach B, in order, once it is back: none lost.
    Beyond what may wait in memory (PDNS_RELAY_PENDING_MAX here, 64 MiB by
    default) they wait in the outbox file alone, and go from there."""
    env = {"PDNS_RELAY_PENDING_MAX": "1"} if bound == "file" else None  # not one batch
    a, b = a_delivering_to_b(relay_factory, redis_server, workdir, tmp_path, "before", 10, env)
    redis_server.stop()
    for i in range(3):
        for name in ("sensor-a", "sensor-b"):
            stream(a, name, batch("away%d" % i, 10))
        assert a.wait_for(lambda: a.metrics().get(
            'pdns_relay_partner_batches_total{partner="relay-b"}', 0) >= i + 2, 20)
    if bound == "memory":
        assert "Redis is away: new batches wait in memory" in a.log_text()
    else:
        assert "waits in the outbox file alone (counted)" in a.log_text()
    redis_server.start()
    assert b.wait_for(lambda: len(rrnames(b)) == 40, 30), a.log_text()[-1500:]
    n = rrnames(b)
    assert len(n) == len(set(n)) == 40
    assert "3 batches from the outbox file appended to its outbox in Redis" in a.log_text()
    if bound == "memory":
        assert "3 batches made while Redis was away are in the outbox now" in a.log_text()
    assert b.metrics()['pdns_relay_partner_in_missing_batches_total{partner="relay-a"}'] == 0


@pytest.mark.parametrize("how", ["outbox-after", "redis-away", "foreign-mark"])
def test_a_crash_never_loses_a_batch_from_delivery(relay_factory, redis_server, workdir,
                                                   tmp_path, how):
    """A batch in A's outbox file but not yet in its Redis outbox when A is
    killed (just after the file write, before the append left the
    process; or made while Redis was away and waiting in memory) is
    appended from the file at the next start, in order: B gets every
    record once, and its chain has no gap. The file's batches go only
    where they continue the chain the outbox in Redis names (a mark with
    another chain hash: another process's, nothing is appended)."""
    import signal
    a, b = a_delivering_to_b(relay_factory, redis_server, workdir, tmp_path, "one", 10)
    if how in ("outbox-after", "foreign-mark"):
        a.stop()
        a.env = dict(os.environ, PDNS_RELAY_CRASH_AT="outbox-after:relay-b")
        a.start()
        for name in ("sensor-a", "sensor-b"):
            stream(a, name, batch("two", 10))
        a.proc.wait(30)
        assert a.proc.returncode == -signal.SIGKILL, a.log_text()[-2000:]
        a.env = None
        if how == "foreign-mark":
            r = redis_server.client()
            (key,) = [k for k in r.scan_iter(match="*relay-b*:last")]
            boot, seq, _ = r.get(key).decode().split(" ", 2)
            r.set(key, "%s %s %s" % (boot, seq, "00" * 32))
    else:
        redis_server.stop()
        for name in ("sensor-a", "sensor-b"):
            stream(a, name, batch("two", 10))
        assert a.wait_for(lambda: a.metrics().get(
            'pdns_relay_partner_batches_total{partner="relay-b"}', 0) >= 2, 20)
        a.stop(signal.SIGKILL)
        redis_server.start()
    a.start()
    for name in ("sensor-a", "sensor-b"):
        stream(a, name, batch("three", 10))
    assert b.wait_for(lambda: sum(".three." in n for n in rrnames(b)) == 10, 30), \
        a.log_text()[-2000:]
    if how == "foreign-mark":
        assert "does not go on from it (another chain): not appended" in a.log_text()
        assert sorted(rrnames(b)) == sorted(set(rrnames(b))) and len(rrnames(b)) == 20
        assert "partner relay-a: batches" in b.log_text() and "never arrived" in b.log_text()
        assert b.metrics()['pdns_relay_partner_in_missing_batches_total{partner="relay-a"}'] == 1
        return
    assert b.wait_for(lambda: len(rrnames(b)) == 30, 10), (rrnames(b), a.log_text()[-2000:])
    n = rrnames(b)
    assert len(n) == len(set(n)) == 30
    assert "1 batch from the outbox file appended to its outbox in Redis" in a.log_text()
    assert "never arrived" not in b.log_text()
    assert b.metrics()['pdns_relay_partner_in_missing_batches_total{partner="relay-a"}'] == 0
    assert b.metrics()['pdns_relay_partner_in_batches_total{partner="relay-a",result="refused"}'] == 0


def test_a_partner_refusing_every_batch_is_retried_with_backoff(relay_factory, redis_server,
                                                                 workdir, tmp_path):
    """B refuses A's batch (addressed to a relay B is not) and closes: A
    tries again, waiting longer each time, rather than every half second
    (the wait used to start again from nothing once a batch was written)."""
    a, b = a_and_b(relay_factory, redis_server, workdir, tmp_path)
    write_policy(os.path.join(a.dir, "partners", "b.json"), partner="not-b", sensor_id="relay",
                 endpoint={"host": "127.0.0.1", "port": b.d4_port, "uuid": A_UUID,
                           "hmac_key_file": str(tmp_path / "a.hmac"), "insecure": True})
    a.start()
    for name in ("sensor-a", "sensor-b"):
        stream(a, name, batch("r", 5))
    key = 'pdns_relay_partner_reconnects_total{partner="not-b"}'
    assert a.wait_for(lambda: a.metrics().get(key, 0) >= 2, 20)
    assert 'is addressed to "not-b", not to us ("relay-b")' in b.log_text()
    # backoff from here: at least 0.5, 1, 2 s (jittered down to half):
    # three more tries in 4 s at most; a slow machine makes fewer
    before = a.metrics()[key]
    time.sleep(4)
    assert a.metrics()[key] - before <= 4
    assert a.metrics()['pdns_relay_partner_outbox_batches{partner="not-b"}'] == 1


def test_outbox_bound(relay_factory, redis_server, tmp_path):
    """A partner that is away: its outbox fills up to the policy's bound,
    then refuses new batches (or drops the oldest), counted and logged."""
    (tmp_path / "a.hmac").write_bytes(A_HMAC)
    os.chmod(tmp_path / "a.hmac", 0o600)
    r = redis_server.client()
    for when, action in (("refuse_new", "refused"), ("drop_oldest", "dropped_oldest")):
        a = relay_factory(redis=redis_server, extra={
            "relay_id": "bound-" + when, "mixer": FAST_MIXER,
            "policies": {"dir": "partners", "outbox_dir": "outbox"}})
        os.makedirs(os.path.join(a.dir, "partners"))
        write_policy(os.path.join(a.dir, "partners", "b.json"), partner="away",
                     endpoint={"host": "127.0.0.1", "port": free_port(), "uuid": A_UUID,
                               "hmac_key_file": str(tmp_path / "a.hmac"), "insecure": True},
                     outbox={"max_batches": 3, "when_full": when})
        a.start()
        key = "{pdns-relay:bound-%s:away}:outbox" % when
        for i in range(6):
            for name in ("sensor-a", "sensor-b"):
                stream(a, name, batch("o%d" % i, 5))
            assert a.wait_for(lambda: a.metrics().get(
                'pdns_relay_partner_batches_total{partner="away"}', 0) >= i + 1, 10)
        assert a.wait_for(lambda: a.metrics()[
            'pdns_relay_partner_outbox_full_total{partner="away",action="%s"}' % action] == 3)
        assert r.xlen(key) == 3
        assert a.metrics()['pdns_relay_partner_outbox_batches{partner="away"}'] == 3
        seqs = [int(e[1][b"seq"]) for e in r.xrange(key)]
        assert seqs == ([1, 2, 3] if when == "refuse_new" else [4, 5, 6])
        assert "outbox full (3 batches)" in a.log_text()
        a.stop()


class CsvPair:
    """Relay A delivering passivedns CSV (type 8) to B, which takes A as one
    of its sensors: B stands for a d4-core + analyzer-d4-passivedns, which
    count every line they get and never deduplicate."""

    def __init__(self, relay_factory, redis_server, tmp_path, relay_id="relay-csv",
                 a_extra=None, **pol):
        (tmp_path / "a.hmac").write_bytes(A_HMAC)
        os.chmod(tmp_path / "a.hmac", 0o600)
        self.sensors = __import__("conftest").SENSORS
        self.sensors["relay-a-as-sensor"] = (A_UUID, A_HMAC)
        self.b = relay_factory(sensors=("relay-a-as-sensor",), extra={"relay_id": "plain-d4"})
        # the sensor's key file must hold A_HMAC: write it where the fixture expects it
        key = os.path.join(os.path.dirname(self.b.dir), "relay-a-as-sensor.key")
        with open(key, "wb") as f:
            f.write(A_HMAC)
        os.chmod(key, 0o600)
        self.b.start()
        extra = {"relay_id": relay_id, "mixer": FAST_MIXER,
                 "policies": {"dir": "partners", "outbox_dir": "outbox"}}
        extra.update(a_extra or {})
        self.a = relay_factory(redis=redis_server, extra=extra)
        os.makedirs(os.path.join(self.a.dir, "partners"))
        pol.setdefault("rrtypes", {"allow": ["A", "AAAA"]})
        write_policy(os.path.join(self.a.dir, "partners", "b.json"), partner="plain",
                     endpoint={"host": "127.0.0.1", "port": self.b.d4_port, "uuid": A_UUID,
                               "hmac_key_file": str(tmp_path / "a.hmac"), "insecure": True,
                               "format": "passivedns-csv"}, **pol)
        self.a.start()

    def close(self):
        del self.sensors["relay-a-as-sensor"]


def test_delivery_as_passivedns_csv(relay_factory, redis_server, tmp_path):
    """Compatibility mode: a partner whose d4-core takes only type 8 gets the
    records as passivedns CSV lines (unsigned, by nature)."""
    pair = CsvPair(relay_factory, redis_server, tmp_path)
    a, b = pair.a, pair.b
    try:
        for name in ("sensor-a", "sensor-b"):
            stream(a, name, batch("c", 25) + batch("c", 5, "AAAA"))
        assert b.wait_for(lambda: b.sensor_records("relay-a-as-sensor") == 30, 20), a.log_text()[-1000:]
        assert b.wait_for(lambda: len(b.output_lines()) == 30)
        got = b.output_lines()
        assert sorted(o["rrname"] for o in got) == sorted(
            ["h%d.c.test" % i for i in range(25)] + ["h%d.c.test" % i for i in range(5)])
        assert b.metrics()['pdns_relay_rejected_lines_total{source="d4",reason="fields"}'] == 0
    finally:
        pair.close()


def test_csv_output_the_analyzer_can_read(relay_factory, redis_server, workdir, tmp_path):
    """analyzer-d4-passivedns loses a line it cannot parse and its ingester
    stops: a CSV partner never gets a separator inside a field or an rrtype
    it does not take (each counted by reason), and the root is "." as
    passivedns writes it. Here the sensors use a tab-separated layout, so
    that a TXT value holding "||" reaches the relay at all."""
    tab = [{"uuid": SENSORS[n][0], "name": n, "separator": "\t",
            "key_file": os.path.join(workdir, n + ".key")} for n in ("sensor-a", "sensor-b")]
    pair = CsvPair(relay_factory, redis_server, tmp_path, relay_id="relay-csv2",
                   a_extra={"sensors": tab}, rrtypes={"allow": ["*"]})
    a, b = pair.a, pair.b
    try:
        lines = ["1795930651.1\tc\ts\tIN\t%s\t%s\t%s\t60\t1\n" % t for t in (
            ("ok.csv.test.", "A", "10.9.0.1"),
            ("txt.csv.test.", "TXT", '"v=a||b"'),             # separator inside
            ("txt2.csv.test.", "TXT", '"plain"'),
            ("svc.csv.test.", "HTTPS", "1 . alpn=h2"),        # not an analyzer type
            ("odd.csv.test.", "TYPE65280", "\\# 1 00"),        # a bare number
            (".", "NS", "a.root-servers.net."),               # the root
            ("nomail.csv.test.", "MX", "."))]                  # a root target (null MX)
        for name in ("sensor-a", "sensor-b"):
            stream(a, name, lines)
        assert b.wait_for(lambda: len(b.output_lines()) == 4, 20), a.log_text()[-1500:]
        got = sorted((o["rrname"], o["rrtype"], o["rdata"]) for o in b.output_lines())
        assert got == sorted([("ok.csv.test", "A", "10.9.0.1"),
                              ("txt2.csv.test", "TXT", '"plain"'),
                              (".", "NS", "a.root-servers.net"),
                              ("nomail.csv.test", "MX", ".")]), got
        m = b.metrics()
        assert sum(v for k, v in m.items() if k.startswith("pdns_relay_rejected_lines_total")) == 0
        m = a.metrics()
        skipped = 'pdns_relay_partner_csv_skipped_total{partner="plain",reason="%s"}'
        assert m[skipped % "separator"] == 1
        assert m[skipped % "rrtype"] == 2
    finally:
        pair.close()


def test_clean_restarts_send_nothing_twice(relay_factory, redis_server, tmp_path):
    """After clean restarts of either side of a delivery link, a receiver
    that does not deduplicate (d4-core) holds every line exactly once: only
    what the partner's TCP did not acknowledge is sent again."""
    pair = CsvPair(relay_factory, redis_server, tmp_path, relay_id="relay-once")
    a, b = pair.a, pair.b
    try:

        def deliver(tag, n, total):
            for name in ("sensor-a", "sensor-b"):
                stream(a, name, batch(tag, n))
            assert b.wait_for(lambda: len(set(rrnames(b))) == total, 30), a.log_text()[-1500:]
            # B's TCP acknowledged it all: the outbox keeps nothing for a resend
            assert a.wait_for(lambda: redis_server.client().xlen(
                "{pdns-relay:relay-once:plain}:outbox") == 0, 10)

        deliver("r1", 20, 20)
        assert a.stop() == 0          # the relay restarts cleanly
        a.start()
        deliver("r2", 10, 30)
        assert b.stop() == 0          # the receiver restarts cleanly
        b.start()
        deliver("r3", 10, 40)
        n = rrnames(b)
        assert len(n) == len(set(n)) == 40, "%d lines for %d names" % (len(n), len(set(n)))
        assert a.metrics()['pdns_relay_partner_resent_batches_total{partner="plain"}'] == 0
    finally:
        pair.close()


def test_partner_added_while_running(relay_factory, redis_server, workdir, tmp_path):
    """A partner policy with an endpoint, dropped into the policy directory of
    a running relay, starts delivery without a restart."""
    a, b = a_and_b(relay_factory, redis_server, workdir, tmp_path)
    a.start()
    policy_to_b(a, b, tmp_path)
    assert a.wait_for(lambda: "deliver: partner relay-b: D4 over TLS" in a.log_text())
    for name in ("sensor-a", "sensor-b"):
        stream(a, name, batch("late", 15))
    assert b.wait_for(lambda: len(b.output_lines()) == 15, 20), a.log_text()[-1500:]


def test_ring_of_three_never_loops(relay_factory, redis_server, workdir, tmp_path):
    """A -> B -> C -> A, every link resharing: A's records reach B and C and
    never come back to A (C's policy sees relay-a on their path)."""
    pub = os.path.join(workdir, "relay.pub")
    ids = {"ab": "ab00000000000000000000000000ab01", "bc": "bc00000000000000000000000000bc01",
           "ca": "ca00000000000000000000000000ca01"}
    for link in ids:
        (tmp_path / (link + ".hmac")).write_bytes(b"hmac of link " + link.encode())
        os.chmod(tmp_path / (link + ".hmac"), 0o600)

    def inbound(frm, link):
        return [{"name": frm, "uuid": ids[link], "key_file": str(tmp_path / (link + ".hmac")),
                 "pubkey": pub}]

    relays = {}
    for name, up, sensors, k in (("relay-a", "ca", ("sensor-a", "sensor-b"), 2),
                                 ("relay-b", "ab", ("sensor-c",), 1),
                                 ("relay-c", "bc", ("sensor-c",), 1)):
        relays[name] = relay_factory(redis=redis_server, sensors=sensors, extra={
            "relay_id": name, "state_dir": str(tmp_path),
            "mixer": dict(FAST_MIXER, min_sensors=k),
            "partners_in": inbound({"ca": "relay-c", "ab": "relay-a", "bc": "relay-b"}[up], up),
            "policies": {"dir": "partners", "outbox_dir": "outbox"}})
        os.makedirs(os.path.join(relays[name].dir, "partners"))
    for name, to, link in (("relay-a", "relay-b", "ab"), ("relay-b", "relay-c", "bc"),
                           ("relay-c", "relay-a", "ca")):
        write_policy(os.path.join(relays[name].dir, "partners", to + ".json"), partner=to,
                     reshare=True, sources={"allow": ["d4", "partner"]}, min_sensors=1,
                     sensor_id="relay",
                     endpoint={"host": "127.0.0.1", "port": relays[to].d4_port, "uuid": ids[link],
                               "hmac_key_file": str(tmp_path / (link + ".hmac")), "insecure": True})
    for r in relays.values():
        r.start()
    a, b, c = relays["relay-a"], relays["relay-b"], relays["relay-c"]
    for name in ("sensor-a", "sensor-b"):
        stream(a, name, batch("ring", 25))
    assert b.wait_for(lambda: len(b.output_lines()) == 25, 20), a.log_text()[-1000:]
    assert c.wait_for(lambda: len(c.output_lines()) == 25, 20), b.log_text()[-1000:]
    assert all(o["origin"] == "relay-b,relay-a" for o in c.output_lines())
    assert c.wait_for(lambda: c.metrics().get(
        'pdns_relay_partner_denied_total{partner="relay-a",reason="own"}', 0) == 25, 10)
    time.sleep(2)
    # nothing came back to A: its output holds only its own sensors' records
    assert all(o["sensor_id"] in ("sensor-a", "sensor-b") for o in a.output_lines())
    assert len(a.output_lines()) == 50
    assert outbox_of(c, "relay-a") == []


class TamperProxy:
    """A D4 man in the middle that knows the link's HMAC key (as any D4
    server on the way does) but not the relay's signing key: it re-signs the
    frames it alters. It forwards A's frames to B, altering one batch frame
    by `action` (flip a byte, drop, replay), and records what it forwarded.
    What B writes back (its acknowledgements) goes to A, as through any
    transparent hop."""

    def __init__(self, workdir, target_port, action, which=2):
        import socket as so
        import ssl
        import threading
        self.action, self.which, self.target = action, which, target_port
        self.captured = []
        self.srv = so.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.port = self.srv.getsockname()[1]
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(os.path.join(workdir, "tls.crt"), os.path.join(workdir, "tls.key"))
        self.done = False
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        import struct
        while True:
            try:
                raw, _ = self.srv.accept()
            except OSError:
                return
            try:
                a = self.ctx.wrap_socket(raw, server_side=True)
                b = d4sensor.connect(self.target)
            except OSError:
                continue
            n254 = 0
            try:
                while True:
                    hdr = self.readn(a, 62)
                    if hdr is None:
                        break
                    ftype, size = hdr[1], struct.unpack("<I", hdr[58:62])[0]
                    payload = self.readn(a, size)
                    if payload is None:
                        break
                    uuid = hdr[2:18].hex()
                    out = [payload]
                    if ftype == 254:
                        n254 += 1
                        if n254 == self.which and not self.done:
                            self.done = True
                            if self.action == "flip":
                                out = [payload.replace(b"10.7.", b"10.6.", 1)]
                            elif self.action == "drop":
                                out = []
                            elif self.action == "replay":
                                out = [payload, payload]
                        self.captured += out
                    for p in out:
                        b.sendall(d4sensor.frame(uuid, A_HMAC, p, ftype=ftype))
                    self.pump(b, a)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    @staticmethod
    def pump(src, dst):
        """Passes on what src has to say now, without waiting."""
        import ssl
        src.setblocking(False)
        try:
            while True:
                data = src.recv(4096)
                if not data:
                    break
                dst.sendall(data)
        except (ssl.SSLWantReadError, BlockingIOError):
            pass
        finally:
            src.setblocking(True)

    readn = staticmethod(d4sensor.readn)


def test_frames_carry_whole_batches(relay_factory, redis_server, workdir, tmp_path):
    """A release larger than the partner's frame limit goes out as several
    signed batches, each within endpoint.max_frame, each D4 frame exactly
    one batch (records then its trailer); B takes every record and `verify`
    accepts the frames as captured."""
    a, b = a_and_b(relay_factory, redis_server, workdir, tmp_path)
    proxy = TamperProxy(workdir, b.d4_port, "none")
    write_policy(os.path.join(a.dir, "partners", "b.json"), partner="relay-b",
                 sensor_id="relay",
                 endpoint={"host": "127.0.0.1", "port": proxy.port, "uuid": A_UUID,
                           "hmac_key_file": str(tmp_path / "a.hmac"), "insecure": True,
                           "max_frame": 4096})
    a.start()
    for name in ("sensor-a", "sensor-b"):
        stream(a, name, batch("big", 300))
    assert b.wait_for(lambda: len(b.output_lines()) == 300, 30), a.log_text()[-800:]
    frames = list(proxy.captured)
    assert len(frames) >= 300 * 150 // 4096  # ~150 bytes a record
    for f in frames:
        assert len(f) <= 4096
        lines = f.decode().splitlines(keepends=True)
        assert all(l.endswith("\n") for l in lines)
        trailers = [l for l in lines if l.startswith('{"pdns_relay_batch"')]
        assert trailers == [lines[-1]], "a frame must hold exactly one whole batch"
        assert json.loads(lines[-1])["count"] == len(lines) - 1
    seqs = [json.loads(f.decode().splitlines()[-1])["seq"] for f in frames]
    assert seqs == list(range(1, len(frames) + 1))
    cap = tmp_path / "captured.ndjson"
    cap.write_bytes(b"".join(frames))
    q = subprocess.run([BIN, "verify", "--pubkey", os.path.join(workdir, "relay.pub"), str(cap)],
                       capture_output=True, text=True, timeout=30)
    assert q.returncode == 0, q.stderr
    proxy.srv.close()
    a.stop()
    b.stop()


def test_tampering_on_the_way_is_caught(relay_factory, redis_server, workdir, tmp_path):
    """Between A and B a D4 hop flips a byte, drops a batch, replays a batch:
    B refuses or reports each; `verify` reports the same on the captured
    stream."""
    pub = os.path.join(workdir, "relay.pub")
    for action, b_says, verify_says in (
            ("flip", "do not match the signed Merkle root", "a record was altered"),
            ("drop", "never arrived", "are missing (dropped)"),
            ("replay", None, "replayed or reordered")):
        (tmp_path / action).mkdir()
        redis_server.client().flushall()  # each case from an empty outbox
        a, b = a_and_b(relay_factory, redis_server, workdir, tmp_path / action)
        proxy = TamperProxy(workdir, b.d4_port, action)
        write_policy(os.path.join(a.dir, "partners", "b.json"), partner="relay-b",
                     sensor_id="relay",
                     endpoint={"host": "127.0.0.1", "port": proxy.port, "uuid": A_UUID,
                               "hmac_key_file": str(tmp_path / action / "a.hmac"),
                               "insecure": True})
        a.start()
        for r in range(4):  # four batches
            for name in ("sensor-a", "sensor-b"):
                stream(a, name, batch("t%d" % r, 10))
            time.sleep(1.2)
        m = lambda k: b.metrics().get(
            'pdns_relay_partner_in_batches_total{partner="relay-a",result="%s"}' % k, 0)
        if action == "flip":
            assert b.wait_for(lambda: m("refused") >= 1, 10)
            # A's connection was closed; it reconnects and sends again: all arrive
            assert b.wait_for(lambda: len(b.output_lines()) == 40, 30), a.log_text()[-800:]
        if action == "drop":
            assert b.wait_for(lambda: len(b.output_lines()) == 30, 15)
        if action == "replay":
            assert b.wait_for(lambda: m("duplicate") >= 1, 10)
            assert len(b.output_lines()) == 40
        if b_says:
            assert b_says in b.log_text()
        cap = tmp_path / action / "captured.ndjson"
        cap.write_bytes(b"".join(proxy.captured))
        q = subprocess.run([BIN, "verify", "--pubkey", pub, str(cap)], capture_output=True,
                           text=True, timeout=30)
        assert q.returncode == 1 and verify_says in q.stderr, q.stderr
        proxy.srv.close()
        a.stop()
        b.stop()


def make_ca(d, name):
    key, crt = os.path.join(d, name + ".key"), os.path.join(d, name + ".crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "2", "-subj", "/CN=" + name], check=True, capture_output=True)
    return key, crt


def make_cert(d, name, ca, san):
    key, csr, crt = (os.path.join(d, name + e) for e in (".key", ".csr", ".crt"))
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\n" % san)
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + name],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca[1], "-CAkey", ca[0],
                    "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext],
                   check=True, capture_output=True)
    return key, crt


def spki_pin(crt):
    import base64
    import hashlib
    pub = subprocess.run(["openssl", "x509", "-in", crt, "-pubkey", "-noout"], check=True,
                         capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub,
                         check=True, capture_output=True).stdout
    return "sha256//" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def test_each_partner_trusts_its_own_ca(relay_factory, redis_server, tmp_path):
    """Two partners, two independent CAs: a certificate issued by partner
    two's CA is refused for partner one's endpoint (one trust store per
    partner), the endpoint's address must be in the certificate, and a
    pinned key (endpoint.pin_sha256) must match."""
    d = str(tmp_path)
    ca1, ca2 = make_ca(d, "ca-one"), make_ca(d, "ca-two")
    b_key, b_crt = make_cert(d, "receiver", ca2, "IP:127.0.0.1")
    (tmp_path / "a.hmac").write_bytes(A_HMAC)
    os.chmod(tmp_path / "a.hmac", 0o600)
    sensors = __import__("conftest").SENSORS
    sensors["relay-a-as-sensor"] = (A_UUID, A_HMAC)
    try:
        b = relay_factory(sensors=("relay-a-as-sensor",), extra={
            "relay_id": "receiver", "d4": {"tls_cert": b_crt, "tls_key": b_key}})
        keyf = os.path.join(os.path.dirname(b.dir), "relay-a-as-sensor.key")
        with open(keyf, "wb") as f:
            f.write(A_HMAC)
        os.chmod(keyf, 0o600)
        b.start()
        a = relay_factory(redis=redis_server, extra={
            "relay_id": "relay-tls", "mixer": FAST_MIXER,
            "policies": {"dir": "partners", "outbox_dir": "outbox"}})
        os.makedirs(os.path.join(a.dir, "partners"))
        for partner, ca, pin in (("one", ca1, None), ("two", ca2, spki_pin(b_crt)),
                                 ("three", ca2, spki_pin(ca2[1]))):
            ep = {"host": "127.0.0.1", "port": b.d4_port, "uuid": A_UUID,
                  "hmac_key_file": str(tmp_path / "a.hmac"), "ca_file": ca[1],
                  "format": "passivedns-csv"}
            if pin:
                ep["pin_sha256"] = pin
            write_policy(os.path.join(a.dir, "partners", partner + ".json"), partner=partner,
                         endpoint=ep)
        a.start()
        up = 'pdns_relay_partner_link_up{partner="%s"}'
        assert a.wait_for(lambda: a.metrics()[up % "two"] == 1, 20), a.log_text()[-1500:]
        assert a.wait_for(lambda: "partner three" in a.log_text() and
                          "pin_sha256" in a.log_text(), 20), a.log_text()[-1500:]
        assert a.wait_for(lambda: "partner one (127.0.0.1" in a.log_text(), 20)
        m = a.metrics()
        assert m[up % "one"] == 0 and m[up % "three"] == 0
        assert "certificate verify failed" in a.log_text()
        # the address must be the one the certificate names
        b.stop()
        b_key2, b_crt2 = make_cert(d, "elsewhere", ca2, "IP:192.0.2.1")
        cfg = json.load(open(b.config))
        cfg["d4"]["tls_cert"], cfg["d4"]["tls_key"] = b_crt2, b_key2
        json.dump(cfg, open(b.config, "w"))
        assert a.wait_for(lambda: a.metrics()[up % "two"] == 0, 20)
        b.start()
        rc = 'pdns_relay_partner_reconnects_total{partner="two"}'
        r0 = a.metrics()[rc]
        assert a.wait_for(lambda: a.metrics()[rc] >= r0 + 2, 30)  # tried, and refused
        assert a.metrics()[up % "two"] == 0
    finally:
        del sensors["relay-a-as-sensor"]


def test_a_disabled_partner_gets_nothing_from_its_outbox(relay_factory, redis_server,
                                                         workdir, tmp_path):
    """Batches wait in a partner's outbox while it is away; its policy is
    disabled meanwhile: when it comes back it gets none of them, until the
    policy allows it again."""
    a, b = a_and_b(relay_factory, redis_server, workdir, tmp_path)
    policy_to_b(a, b, tmp_path)
    a.start()
    b.stop()
    for name in ("sensor-a", "sensor-b"):
        stream(a, name, batch("held", 20))
    key = "{pdns-relay:relay-a:relay-b}:outbox"
    assert a.wait_for(lambda: redis_server.client().xlen(key) >= 1, 20)
    policy_to_b(a, b, tmp_path, enabled=False)
    assert a.wait_for(lambda: a.log_text().count(" -> ") >= 1, 10)
    b.start()
    assert a.wait_for(lambda: "its outbox is held" in a.log_text(), 30), a.log_text()[-1500:]
    assert b.output_lines() == []
    assert redis_server.client().xlen(key) >= 1
    policy_to_b(a, b, tmp_path)
    assert a.wait_for(lambda: "delivery resumes" in a.log_text(), 10)
    assert b.wait_for(lambda: len(b.output_lines()) == 20, 20)


class D4CoreLike:
    """A D4 server that does what d4-core's type-2 worker does with a meta
    type that has no module of its own ("pdns-cof"): every line of every
    type-254 frame, trailers included, is LPUSHed onto
    analyzer:pdns-cof:<queue> in arrival order. It never writes back."""

    def __init__(self, workdir, redis_client, queue):
        import socket as so
        import ssl
        import threading
        self.r, self.key = redis_client, "analyzer:pdns-cof:" + queue
        self.srv = so.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.port = self.srv.getsockname()[1]
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(os.path.join(workdir, "tls.crt"), os.path.join(workdir, "tls.key"))
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                raw, _ = self.srv.accept()
                a = self.ctx.wrap_socket(raw, server_side=True)
            except OSError:
                if self.srv.fileno() < 0:
                    return
                continue
            try:
                while True:
                    fr = d4sensor.read_frame(a)
                    if fr is None:
                        break
                    hdr, payload = fr
                    if hdr[1] == 254:
                        for line in payload.split(b"\n"):
                            if line:
                                self.r.lpush(self.key, line)
            except OSError:
                pass
            a.close()


def test_signed_stream_through_a_partners_d4core(relay_factory, redis_server, workdir,
                                                 tmp_path):
    """A delivers its signed batches to the partner's d4-core; B consumes
    the analyzer:pdns-cof queue d4-core fills and verifies every batch
    exactly as its D4 listener would: all records arrive, none twice after
    a restart of B, and a line altered in the queue gets its batch refused."""
    import signal
    queue = "7e3c2a1b0c9d4e8f8a7b6c5d4e3f2a10"
    key = "analyzer:pdns-cof:" + queue
    (tmp_path / "a.hmac").write_bytes(A_HMAC)
    os.chmod(tmp_path / "a.hmac", 0o600)
    d4core = D4CoreLike(workdir, redis_server.client(), queue)
    b = relay_factory(sensors=("sensor-c",), extra={
        "relay_id": "relay-b", "state_dir": str(tmp_path),
        "partners_in": [{"name": "relay-a", "uuid": A_UUID, "key_file": str(tmp_path / "a.hmac"),
                         "pubkey": os.path.join(workdir, "relay.pub")}],
        "d4core": {"redis": "redis://127.0.0.1:%d/0" % redis_server.port,
                   "queues": [{"uuid": queue, "type": "pdns-cof", "partner": "relay-a"}]}})
    b.start()
    a = relay_factory(redis=redis_server, extra={
        "relay_id": "relay-a", "mixer": FAST_MIXER,
        "policies": {"dir": "partners", "outbox_dir": "outbox"}})
    os.makedirs(os.path.join(a.dir, "partners"))
    write_policy(os.path.join(a.dir, "partners", "b.json"), partner="relay-b", sensor_id="relay",
                 endpoint={"host": "127.0.0.1", "port": d4core.port, "uuid": A_UUID,
                           "hmac_key_file": str(tmp_path / "a.hmac"), "insecure": True})
    a.start()


    for name in ("sensor-a", "sensor-b"):
        stream(a, name, batch("q1", 30))
    assert b.wait_for(lambda: len(rrnames(b)) == 30, 30), b.log_text()[-1500:]
    assert all(o["sensor_id"] == "relay-a/relay-a" for o in b.output_lines())
    m = 'pdns_relay_partner_in_batches_total{partner="relay-a",result="%s"}'
    assert b.metrics()[m % "taken"] >= 1
    # chain state, written atomically, is the relay's alone
    st = os.stat(tmp_path / "partner-in-relay-a.state")
    assert st.st_mode & 0o777 == 0o600
    assert not os.path.exists(tmp_path / "partner-in-relay-a.state.tmp")
    chains = [f for f in os.listdir(os.path.join(a.dir, "outbox")) if f.endswith(".state")]
    assert chains and all(os.stat(os.path.join(a.dir, "outbox", f)).st_mode & 0o777 == 0o600
                          for f in chains)
    # B killed and restarted: the queue's processing list is read again,
    # nothing is taken twice
    b.stop(signal.SIGKILL)
    for name in ("sensor-a", "sensor-b"):
        stream(a, name, batch("q2", 20))
    assert a.wait_for(lambda: redis_server.client().llen(key) > 0, 20)
    b.start()
    assert b.wait_for(lambda: len(rrnames(b)) == 50, 30), b.log_text()[-1500:]
    time.sleep(1)
    assert len(rrnames(b)) == len(set(rrnames(b))) == 50
    # a record altered while it sat in d4-core's Redis: its batch is refused
    b.stop()
    for name in ("sensor-a", "sensor-b"):
        stream(a, name, batch("q3", 10))
    r = redis_server.client()
    # the fake d4-core pushes a frame line by line: alter a line only once
    # the batch is whole (its trailer is the newest line) and nothing more
    # arrives, or the LSET below could hit a line that moved meanwhile
    last = [None, 0.0]

    def whole(tag=b"q3.test"):
        vals = r.lrange(key, 0, -1)
        if not (vals and vals[0].startswith(b'{"pdns_relay_batch"') and
                any(tag in v for v in vals)):
            return False
        if last[0] != len(vals):
            last[0], last[1] = len(vals), time.time()
        return time.time() - last[1] >= 1.0
    assert a.wait_for(whole, 30)
    vals = r.lrange(key, 0, -1)
    i = next(i for i, v in enumerate(vals) if b"q3.test" in v)
    r.lset(key, i, vals[i].replace(b"10.7.", b"10.6.", 1))
    b.start()
    assert b.wait_for(lambda: b.metrics()[m % "refused"] == 1, 20), b.log_text()[-1500:]
    assert "the batch is refused" in b.log_text()
    assert not any(".q3." in n for n in rrnames(b))
    # a line longer than a D4 frame (a signed batch's line fits one) stays
    # in d4-core's Redis: the relay reads a stand-in and refuses its batch
    b.stop()
    for name in ("sensor-a", "sensor-b"):
        stream(a, name, batch("q4", 10))
    last[0] = None
    assert a.wait_for(lambda: whole(b"q4.test"), 30)
    vals = r.lrange(key, 0, -1)
    i = next(i for i, v in enumerate(vals) if b"q4.test" in v)
    r.lset(key, i, b"x" * 3000000)
    b.start()
    assert b.wait_for(lambda: b.metrics()[m % "refused"] == 1, 20), b.log_text()[-1500:]
    assert "a line of 3000000 bytes, longer than a D4 frame, stayed in d4-core's Redis" \
        in b.log_text()
    assert not any(".q4." in n for n in rrnames(b))
    d4core.srv.close()


def test_a_relay_on_another_machine_goes_on_with_the_chain(relay_factory, redis_server,
                                                           workdir, tmp_path):
    """mixer.journal "redis": A's pool lives in Redis, and so does the last
    batch of each outbox (its seq and chain hash). A relay-a started in a
    fresh directory (another machine: no outbox_dir, no chain state) on
    the same Redis goes on with each partner's chain where the outbox left
    it: B takes its batches (a chain starting again at 1 would read as
    resends and be dropped) and the chain holds."""
    mixer = dict(FAST_MIXER, journal="redis")
    a, b = a_and_b(relay_factory, redis_server, workdir, tmp_path, a_extra={"mixer": mixer})
    policy_to_b(a, b, tmp_path)
    a.start()
    for name in ("sensor-a", "sensor-b"):
        stream(a, name, batch("m1", 40))
    assert b.wait_for(lambda: len(rrnames(b)) == 40, 20), a.log_text()[-1500:]
    assert a.wait_for(lambda: a.metrics()['pdns_relay_partner_outbox_batches{partner="relay-b"}'] == 0)
    sent = a.metrics()['pdns_relay_partner_batches_total{partner="relay-b"}']
    assert a.stop() == 0
    a2 = relay_factory(redis=redis_server, extra={
        "relay_id": "relay-a", "mixer": mixer,
        "policies": {"dir": "partners", "outbox_dir": "outbox"}})
    os.makedirs(os.path.join(a2.dir, "partners"))
    policy_to_b(a2, b, tmp_path)
    a2.start()
    for name in ("sensor-a", "sensor-b"):
        stream(a2, name, batch("m2", 30))
    assert b.wait_for(lambda: len(rrnames(b)) == 70, 20), a2.log_text()[-1500:]
    m = b.metrics()
    assert m['pdns_relay_partner_in_batches_total{partner="relay-a",result="duplicate"}'] == 0
    assert m['pdns_relay_partner_in_batches_total{partner="relay-a",result="refused"}'] == 0
    assert "never arrived" not in b.log_text() and "chain is broken" not in b.log_text()
    assert "its chain goes on from its outbox in Redis at batch %d" % sent in a2.log_text()
