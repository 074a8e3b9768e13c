"""D4 ingest end to end: Python sensors (not the relay's C code) send real
D4 frames over TLS to a running relay; we check what it accepted, what it
refused, and its counters."""
import collections
import json
import os
import subprocess
import time

import pytest

from conftest import BIN, DATA, SENSORS
import d4sensor

A_UUID, A_KEY = SENSORS["sensor-a"]
B_UUID, B_KEY = SENSORS["sensor-b"]


def read(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


def convert(path):
    """What `pdns-relay convert` makes of a file: the expected records."""
    out = subprocess.run([BIN, "convert", path], check=True, capture_output=True).stdout
    return [json.loads(l) for l in out.decode().splitlines()]


def key(o):
    return (o["rrname"], o["rrtype"], o["rdata"], o["time_first"], o["count"])


def finish(sock):
    """Close like a careful sensor: FIN, then wait for the relay to close."""
    sock.unwrap() if hasattr(sock, "unwrap") else None
    sock.close()


def test_good_frames_any_size(relay):
    data = read("sensor-a.full.csv")
    expected = convert(os.path.join(DATA, "sensor-a.full.csv"))
    s = d4sensor.connect(relay.d4_port)
    # frames of odd sizes cut lines anywhere: a line split across frames
    # must be joined, and several frames go out in one write
    chunks, off, size = [], 0, 1
    while off < len(data):
        chunks.append(data[off:off + size])
        off += size
        size = size * 3 + 7
    batch = b"".join(d4sensor.frame(A_UUID, A_KEY, c) for c in chunks)
    s.sendall(batch)
    assert relay.wait_for(lambda: relay.sensor_records("sensor-a") == len(expected))
    # the output file is flushed at least every 100 ms
    assert relay.wait_for(lambda: len(relay.output_lines()) == len(expected))
    m = relay.metrics()
    assert m['pdns_relay_error_lines_total{source="d4"}'] == 56
    assert sum(v for k, v in m.items() if k.startswith("pdns_relay_rejected_lines_total")) == 0
    got = relay.output_lines()
    assert collections.Counter(map(key, got)) == collections.Counter(map(key, expected))
    assert all(o["sensor_id"] == "sensor-a" for o in got)
    # client and server addresses never leave the relay
    assert not any("10.1.1.1" in json.dumps(o) or "127.0.0.10" in json.dumps(o) for o in got)
    s.close()


def test_split_at_every_byte(relay):
    lines = read("sensor-a.default.csv").splitlines(keepends=True)[:6]
    payload = b"".join(lines)
    stream = d4sensor.frame(A_UUID, A_KEY, payload[:150]) + \
        d4sensor.frame(A_UUID, A_KEY, payload[150:])
    s = d4sensor.connect(relay.d4_port)
    for i in range(len(stream)):  # one TLS record per byte
        s.sendall(stream[i:i + 1])
    assert relay.wait_for(lambda: relay.sensor_records("sensor-a") == 6)
    assert relay.metrics()["pdns_relay_d4_sessions_active"] == 1
    s.close()


def rejected(relay, reason):
    return relay.metrics().get('pdns_relay_d4_rejected_sessions_total{reason="%s"}' % reason, 0)


def test_violations_close_only_that_session(relay):
    """Each bad session is closed and counted; a good sensor streaming at the
    same time loses nothing."""
    good = d4sensor.connect(relay.d4_port)
    lines = read("sensor-b.default.csv").splitlines(keepends=True)
    sent = 0
    cases = [
        ("hmac", lambda: d4sensor.frame(A_UUID, A_KEY, b"x\n", bad_hmac=True)),
        ("unknown_uuid", lambda: d4sensor.frame("11" * 16, A_KEY, b"x\n")),
        ("version", lambda: d4sensor.frame(A_UUID, A_KEY, b"x\n", version=2)),
        ("oversize", lambda: d4sensor.frame(A_UUID, A_KEY, b"", size=1000001)),
        ("type", lambda: d4sensor.frame(A_UUID, A_KEY, b"pcap", ftype=1)),
        ("uuid_change", lambda: d4sensor.frame(A_UUID, A_KEY, b"")
         + d4sensor.frame(SENSORS["sensor-b"][0], B_KEY, b"")),
    ]
    for reason, make in cases:
        before = rejected(relay, reason)
        # the good sensor sends a slice, with a partial line at the end
        chunk = b"".join(lines[sent:sent + 100])
        good.sendall(d4sensor.frame(B_UUID, B_KEY, chunk[:-5]))
        bad = d4sensor.connect(relay.d4_port)
        bad.sendall(make())
        assert d4sensor.closed_by_peer(bad), reason
        good.sendall(d4sensor.frame(B_UUID, B_KEY, chunk[-5:]))
        sent += 100
        assert relay.wait_for(lambda: rejected(relay, reason) == before + 1), reason
    assert relay.wait_for(lambda: relay.sensor_records("sensor-b") == sent)
    assert relay.sensor_records("sensor-a") == 0
    m = relay.metrics()
    assert sum(v for k, v in m.items() if k.startswith("pdns_relay_rejected_lines_total")) == 0
    log = relay.log_text()
    assert "bad HMAC from sensor sensor-a (hmac)" in log
    assert "unknown sensor uuid 11111111111111111111111111111111" in log
    good.close()


def test_duplicate_session_and_extended_types(relay):
    first = d4sensor.connect(relay.d4_port)
    first.sendall(d4sensor.frame(A_UUID, A_KEY, b""))
    assert relay.wait_for(lambda: relay.metrics()["pdns_relay_d4_sessions_active"] == 1)
    second = d4sensor.connect(relay.d4_port)
    second.sendall(d4sensor.frame(A_UUID, A_KEY, b""))
    assert d4sensor.closed_by_peer(second)
    assert relay.wait_for(lambda: rejected(relay, "duplicate") == 1)
    assert not d4sensor.closed_by_peer(first, timeout=0.3)
    # type 2 + 254 "pdns-cof" from a sensor is refused with a reason
    ext = d4sensor.connect(relay.d4_port)
    ext.sendall(d4sensor.frame(B_UUID, B_KEY, b'{"type": "pdns-cof"}', ftype=2)
                + d4sensor.frame(B_UUID, B_KEY, b"{}\n", ftype=254))
    assert d4sensor.closed_by_peer(ext)
    assert 'extended type "pdns-cof" from sensor sensor-b is not accepted' in relay.log_text()
    first.close()


def test_header_timeout(relay_factory):
    relay = relay_factory(extra={"d4": {"header_timeout": 1}}).start()
    s = d4sensor.connect(relay.d4_port)
    s.sendall(d4sensor.frame(A_UUID, A_KEY, b"")[:20])  # a partial header
    assert d4sensor.closed_by_peer(s, timeout=4)
    assert rejected(relay, "timeout") == 1


def test_bad_lines_are_counted_and_logged(relay):
    payload = (b"1.5||c||s||IN||good.test.||A||10.0.0.1||60||1\n"
               b"garbage without fields\n"
               b"1.5||c||s||IN||a.test.||A||999.0.0.1||60||1\n"
               b"1.5||c||s||IN||nx.test.||A||NXDOMAIN||0||1\n")
    s = d4sensor.connect(relay.d4_port)
    s.sendall(d4sensor.frame(A_UUID, A_KEY, payload))
    assert relay.wait_for(lambda: relay.sensor_records("sensor-a") == 1)
    m = relay.metrics()
    assert m['pdns_relay_rejected_lines_total{source="d4",reason="fields"}'] == 1
    assert m['pdns_relay_rejected_lines_total{source="d4",reason="rdata"}'] == 1
    assert m['pdns_relay_error_lines_total{source="d4"}'] == 1
    assert "rejected line (A answer is not an IPv4 address)" in relay.log_text()
    assert not d4sensor.closed_by_peer(s, timeout=0.2)  # bad lines do not end the session


def test_send_command(relay, workdir):
    path = os.path.join(DATA, "sensor-b.full.csv")
    expected = convert(path)
    p = subprocess.run([BIN, "send", "--host", "127.0.0.1", "--port", str(relay.d4_port),
                        "--uuid", B_UUID, "--key-file", os.path.join(workdir, "sensor-b.key"),
                        "--ca", os.path.join(workdir, "tls.crt"), "--frame-size", "1000", path],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "1882 lines in" in p.stderr
    assert relay.wait_for(lambda: relay.sensor_records("sensor-b") == len(expected))
    assert relay.metrics()['pdns_relay_sensor_frames_total{sensor="sensor-b"}'] > 100
    # a wrong CA is refused by the client
    p = subprocess.run([BIN, "send", "--host", "127.0.0.1", "--port", str(relay.d4_port),
                        "--uuid", B_UUID, "--key-file", os.path.join(workdir, "sensor-b.key"),
                        "--ca", "/etc/ssl/certs/ca-certificates.crt", path],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "TLS handshake" in p.stderr


def test_sigterm_drains_and_exits(relay):
    s = d4sensor.connect(relay.d4_port)
    s.sendall(d4sensor.frame(A_UUID, A_KEY, read("sensor-a.default.csv")))
    assert relay.wait_for(lambda: relay.sensor_records("sensor-a") == 1184)
    assert relay.stop() == 0
    assert len(relay.output_lines()) == 1184
    assert "stopped" in relay.log_text()


def test_sighup_reloads_keys_and_keeps_config_on_error(relay, workdir):
    import signal
    keyfile = os.path.join(workdir, "sensor-a.key")
    with open(keyfile, "rb") as f:
        old = f.read()
    try:
        with open(keyfile, "wb") as f:
            f.write(b"rotated-key-a\n")
        relay.proc.send_signal(signal.SIGHUP)
        assert relay.wait_for(lambda: "reload:" in relay.log_text())
        s = d4sensor.connect(relay.d4_port)
        s.sendall(d4sensor.frame(A_UUID, b"rotated-key-a", b"1.5||c||s||IN||r.test.||A||10.0.0.1||1||1\n"))
        assert relay.wait_for(lambda: relay.sensor_records("sensor-a") == 1)
        s.close()
        s = d4sensor.connect(relay.d4_port)
        s.sendall(d4sensor.frame(A_UUID, A_KEY, b"1.5||c||s||IN||r.test.||A||10.0.0.1||1||1\n"))
        assert d4sensor.closed_by_peer(s)  # the old key no longer works
        # a broken file is refused and the running configuration kept
        with open(relay.config) as f:
            good = f.read()
        with open(relay.config, "w") as f:
            f.write(good.replace('"relay_id"', '"relay_idd"'))
        relay.proc.send_signal(signal.SIGHUP)
        assert relay.wait_for(lambda: "keeping the running configuration" in relay.log_text())
        assert "key 'relay_idd': unknown key" in relay.log_text()
        assert relay.proc.poll() is None
    finally:
        with open(keyfile, "wb") as f:
            f.write(old)



def closed_sessions(relay, reason):
    return relay.metrics().get('pdns_relay_d4_closed_sessions_total{reason="%s"}' % reason, 0)


@pytest.mark.slow
def test_long_lived_session(relay):
    """A sensor that keeps one TLS session open (d4-goclient does, for hours)
    keeps it: frames sent over a minute, with a quiet spell longer than any
    lws internal timeout between them, all arrive on the same session."""
    # the fixture's check that the port is open (a TCP connect and close)
    # is now and then counted as a session too: count from here
    base = relay.metrics()["pdns_relay_d4_sessions_total"]
    s = d4sensor.connect(relay.d4_port)
    start = time.time()
    sent = 0
    while time.time() - start < 61:
        line = b"%d.5||c||s||IN||long%d.test.||A||10.0.0.1||1||1\n" % (int(time.time()), sent)
        s.sendall(d4sensor.frame(A_UUID, A_KEY, line))
        sent += 1
        n = sent
        assert relay.wait_for(lambda: relay.sensor_records("sensor-a") == n), \
            "frame %d after %.0f s not taken" % (sent, time.time() - start)
        time.sleep(12 if sent == 2 else 4)
    assert not d4sensor.closed_by_peer(s, timeout=0.5)
    assert relay.stats()["sessions_active"] == 1
    assert relay.metrics()["pdns_relay_d4_sessions_total"] == base + 1
    finish(s)


def test_idle_timeout_is_the_relays_own(relay_factory):
    relay = relay_factory(extra={"d4": {"idle_timeout": 2}}).start()
    s = d4sensor.connect(relay.d4_port)
    s.sendall(d4sensor.frame(A_UUID, A_KEY, b"1.5||c||s||IN||idle.test.||A||10.0.0.1||1||1\n"))
    assert relay.wait_for(lambda: relay.sensor_records("sensor-a") == 1)
    assert d4sensor.closed_by_peer(s, timeout=10)
    assert relay.wait_for(lambda: closed_sessions(relay, "idle") == 1)
    assert "idle for 2 s" in relay.log_text()
    assert rejected(relay, "timeout") == 0


def test_header_alone_decides(relay):
    """An unknown uuid or a type the relay does not take is refused at the
    62-byte header, before any payload: an unauthenticated peer cannot make
    the relay wait for (and hold) the megabyte its header announces."""
    import struct
    unknown = "00112233445566778899aabbccddeeff"
    for uuid, ftype, reason in ((unknown, 8, "unknown_uuid"), (A_UUID, 1, "type")):
        s = d4sensor.connect(relay.d4_port)
        hdr = d4sensor.frame(uuid, A_KEY, b"", ftype=ftype, size=1000000)[:62]
        assert struct.unpack("<I", hdr[58:62])[0] == 1000000
        s.sendall(hdr)
        assert d4sensor.closed_by_peer(s, timeout=5), reason
        assert relay.wait_for(lambda: rejected(relay, reason) == 1)


def test_connection_caps(relay_factory):
    """Connections that have not authenticated are capped; one over the cap
    is refused at once and counted; an authenticated sensor still gets in
    once one of them is gone."""
    relay = relay_factory(extra={"d4": {"max_unauthenticated": 3}}).start()
    idle = [d4sensor.connect(relay.d4_port) for _ in range(3)]
    assert relay.wait_for(lambda: relay.stats()["sessions_active"] == 3)
    try:
        extra = d4sensor.connect(relay.d4_port)
        assert d4sensor.closed_by_peer(extra, timeout=5)
    except OSError:
        pass  # refused before the TLS handshake completed
    assert relay.wait_for(lambda: rejected(relay, "limit") == 1)
    assert "d4.max_unauthenticated reached" in relay.log_text()
    idle.pop().close()
    assert relay.wait_for(lambda: relay.stats()["sessions_active"] == 2)
    s = d4sensor.connect(relay.d4_port)
    s.sendall(d4sensor.frame(A_UUID, A_KEY, b"1.5||c||s||IN||cap.test.||A||10.0.0.1||1||1\n"))
    assert relay.wait_for(lambda: relay.sensor_records("sensor-a") == 1)
    # authenticated now: it no longer counts against the cap
    more = d4sensor.connect(relay.d4_port)
    assert not d4sensor.closed_by_peer(more, timeout=0.5)
    for c in idle + [s, more]:
        c.close()


def test_sensor_timezone_for_local_time(relay_factory, tmp_path):
    """passivedns's H field is the sensor's local time: a sensor configured
    with timezone Europe/Luxembourg is dated in UTC, summer and winter,
    through the D4 listener and through `convert --timezone`; an unknown
    zone is refused at start with its place in the file."""
    lines = (b"2026-07-01 12:00:00.250||c||s||IN||summer.test.||A||10.0.0.1||60||1\n"
             b"2026-01-15 12:00:00||c||s||IN||winter.test.||A||10.0.0.2||60||1\n")
    want = {"summer.test": 1782900000, "winter.test": 1768474800}  # 10:00 and 11:00 UTC
    relay = relay_factory()
    cfg = json.load(open(relay.config))
    cfg["sensors"][0].update(layout="HcsCQTAtn", timezone="Europe/Luxembourg")
    json.dump(cfg, open(relay.config, "w"))
    relay.start()
    s = d4sensor.connect(relay.d4_port)
    s.sendall(d4sensor.frame(A_UUID, A_KEY, lines))
    assert relay.wait_for(lambda: len(relay.output_lines()) == 2)
    finish(s)
    assert {o["rrname"]: o["time_first"] for o in relay.output_lines()} == want
    relay.stop()

    f = tmp_path / "h.csv"
    f.write_bytes(lines)
    out = subprocess.run([BIN, "convert", "--layout", "HcsCQTAtn", "--timezone",
                          "Europe/Luxembourg", str(f)], check=True, capture_output=True).stdout
    assert {o["rrname"]: o["time_first"] for o in map(json.loads, out.splitlines())} == want
    out = subprocess.run([BIN, "convert", "--layout", "HcsCQTAtn", str(f)], check=True,
                         capture_output=True).stdout  # no zone: the wall clock is UTC
    assert {o["rrname"]: o["time_first"] for o in map(json.loads, out.splitlines())} == \
        {k: v + (7200 if k == "summer.test" else 3600) for k, v in want.items()}

    cfg["sensors"][0]["timezone"] = "Europe/Atlantis"
    json.dump(cfg, open(relay.config, "w"), indent=2)
    r = subprocess.run([BIN, "run", "-c", relay.config], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0
    assert 'sensors[0].timezone' in r.stderr and 'unknown time zone "Europe/Atlantis"' in r.stderr
