"""The open data stream: a Python WebSocket client (python3-websocket,
Debian) on /stream receives the open policy's records, one COF object per
message, each with a sensor_id, and checks each batch's trailer with the
relay's public key (python3-nacl), independently of the project's C code.
Late clients replay with ?since=SEQ; a client that does not read is cut
off without slowing anyone else."""
import json
import os
import socket
import time

import websocket  # python3-websocket

from test_policy import FAST_MIXER, H, batch, mth, stream, write_policy
import nacl.signing


def open_relay(relay_factory, client_bytes=1 << 20, **stream_extra):
    relay = relay_factory(extra={
        "mixer": FAST_MIXER,
        "policies": {"dir": "partners", "outbox_dir": "outbox"},
        "stream": dict({"policy": "open-data", "max_client_bytes": client_bytes,
                        "history": 50}, **stream_extra)})
    os.makedirs(os.path.join(relay.dir, "partners"))
    write_policy(os.path.join(relay.dir, "partners", "open.json"), partner="open-data",
                 sensor_id="relay", rrtypes={"allow": ["A"]})
    relay.start()
    return relay


def read_batches(ws, want, pubhex, timeout=15):
    """Messages until `want` trailers; each batch verified like a partner would."""
    vk = nacl.signing.VerifyKey(bytes.fromhex(pubhex))
    ws.settimeout(timeout)
    batches, records, leaves = [], [], []
    while len(batches) < want:
        msg = ws.recv()
        o = json.loads(msg)
        if "pdns_relay_batch" not in o:
            assert "rrname" in o and o["sensor_id"] == "e2e"  # relay mode: the relay's id
            records.append(o)
            leaves.append(H(b"\x00" + msg.encode()))
            continue
        text = ("pdns-relay batch v1\norigin=%s\npartner=%s\nseq=%d\ncount=%d\nmerkle_root=%s\n"
                "prev=%s\npolicy=%s\ntime=%d\ntlp=%s\nkey_id=%s\n" % (
                    o["origin"], o["partner"], o["seq"], o["count"], o["merkle_root"],
                    o["prev"], o["policy"], o["time"], o["tlp"], o["key_id"])).encode()
        vk.verify(text, bytes.fromhex(o["sig"]))
        assert o["count"] == len(leaves) and mth(leaves).hex() == o["merkle_root"]
        batches.append(o)
        leaves = []
    return batches, records


def test_stream_verified_by_an_independent_client(relay_factory, workdir):
    relay = open_relay(relay_factory)
    with open(os.path.join(workdir, "relay.pub")) as f:
        pubhex = f.read().strip()
    ws = websocket.create_connection("ws://127.0.0.1:%d/stream" % relay.http_port)
    for r in range(2):
        for name in ("sensor-a", "sensor-b"):
            stream(relay, name, batch("s%d" % r, 30) + batch("s%d" % r, 5, "AAAA"))
        time.sleep(1.2)
    batches, records = read_batches(ws, 2, pubhex)
    assert [b["seq"] for b in batches] == [1, 2]
    assert len(records) == 60 and {o["rrtype"] for o in records} == {"A"}
    first = batches[0]
    message = ("pdns-relay batch v1\norigin=%(origin)s\npartner=%(partner)s\nseq=%(seq)d\n"
               "count=%(count)d\nmerkle_root=%(merkle_root)s\nprev=%(prev)s\npolicy=%(policy)s\n"
               "time=%(time)d\ntlp=%(tlp)s\nkey_id=%(key_id)s\n" % first).encode()
    assert batches[1]["prev"] == H(b"\x02" + message + bytes.fromhex(first["sig"])).hex()
    # a late client replays from the history
    late = websocket.create_connection("ws://127.0.0.1:%d/stream?since=1" % relay.http_port)
    b2, r2 = read_batches(late, 2, pubhex)
    assert [b["seq"] for b in b2] == [1, 2] and len(r2) == 60
    # anything but /stream is refused
    try:
        websocket.create_connection("ws://127.0.0.1:%d/other" % relay.http_port, timeout=3)
        assert False, "upgrade on /other accepted"
    except (websocket.WebSocketException, OSError):
        pass
    assert relay.metrics()["pdns_relay_stream_clients"] == 2
    ws.close()
    late.close()


def test_slow_client_is_cut_off(relay_factory, workdir):
    import threading
    relay = open_relay(relay_factory, client_bytes=256 * 1024)
    with open(os.path.join(workdir, "relay.pub")) as f:
        pubhex = f.read().strip()
    fast = websocket.create_connection("ws://127.0.0.1:%d/stream" % relay.http_port)
    slow = websocket.create_connection("ws://127.0.0.1:%d/stream" % relay.http_port,
                                       sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
    rounds, per = 15, 300
    got = []
    reader = threading.Thread(target=lambda: got.extend(read_batches(fast, rounds, pubhex, 60)[1]))
    reader.start()
    for r in range(rounds):  # one batch a round: the mixer's epoch is 1 s
        for name in ("sensor-a", "sensor-b"):
            stream(relay, name, batch("x%d" % r, per))
        time.sleep(1.1)
    reader.join(60)
    if len(got) != rounds * per:
        import pytest
        pytest.fail("\n".join(l for l in relay.log_text().splitlines() if "mixer" not in l))
    assert relay.wait_for(lambda: relay.metrics()["pdns_relay_stream_slow_dropped_total"] >= 1, 20)
    assert relay.wait_for(lambda: relay.metrics()["pdns_relay_stream_clients"] == 1, 15)
    assert "fell more than stream.max_client_bytes behind: disconnected" in relay.log_text()
    fast.close()
    slow.close()


def test_stream_ndjson_for_curl(relay_factory, workdir):
    """GET /stream.ndjson: the same stream as chunked NDJSON lines."""
    import http.client
    relay = open_relay(relay_factory)
    with open(os.path.join(workdir, "relay.pub")) as f:
        pubhex = f.read().strip()
    conn = http.client.HTTPConnection("127.0.0.1", relay.http_port, timeout=15)
    conn.request("GET", "/stream.ndjson")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("content-type") == "application/x-ndjson"

    class Lines:  # read_batches wants recv(); give it lines
        def settimeout(self, t):
            pass

        def recv(self):
            return resp.readline().decode().rstrip("\n")

    for name in ("sensor-a", "sensor-b"):
        stream(relay, name, batch("h", 20))
    batches, records = read_batches(Lines(), 1, pubhex)
    assert len(records) == 20 and batches[0]["seq"] == 1
    # ?since= replays over HTTP too
    conn2 = http.client.HTTPConnection("127.0.0.1", relay.http_port, timeout=15)
    conn2.request("GET", "/stream.ndjson?since=1")
    r2 = conn2.getresponse()
    first = json.loads(r2.readline())
    assert "rrname" in first
    conn.close()
    conn2.close()


def test_clients_capped_and_memory_bounded(relay_factory, workdir):
    """Clients are capped per address (and overall); clients that never
    read cost the relay one shared log of at most max_client_bytes, not a
    copy each: they are cut off once that far behind."""
    import http.client
    relay = open_relay(relay_factory, client_bytes=128 * 1024, max_clients_per_address=12)
    url = "ws://127.0.0.1:%d/stream" % relay.http_port
    idle = [websocket.create_connection(url, sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
            for _ in range(12)]
    try:
        websocket.create_connection(url, timeout=5)
        refused = False
    except (websocket.WebSocketException, OSError):
        refused = True
    assert refused
    c = http.client.HTTPConnection("127.0.0.1", relay.http_port, timeout=10)
    c.request("GET", "/stream.ndjson")
    r = c.getresponse()
    assert r.status == 503 and "max_clients_per_address" in r.read().decode()
    assert relay.metrics()["pdns_relay_stream_refused_total"] == 2
    held = []
    for i in range(6):
        for name in ("sensor-a", "sensor-b"):
            stream(relay, name, batch("m%d" % i, 400))
        assert relay.wait_for(lambda: relay.metrics()["pdns_relay_mixer_batches_total"] >= i + 1, 10)
        held.append(relay.metrics()["pdns_relay_stream_held_bytes"])
    # one shared log, bounded: far below twelve copies of what was published
    assert max(held) <= 128 * 1024 + 400 * 400, held
    assert relay.wait_for(lambda: relay.metrics()["pdns_relay_stream_slow_dropped_total"] == 12, 20)
    assert relay.wait_for(lambda: relay.metrics()["pdns_relay_stream_held_bytes"] == 0, 20)
    for ws in idle:
        ws.close()
