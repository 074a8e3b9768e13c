#!/usr/bin/python3
"""Soak and chaos: the relay's bounds together, for SOAK_SECONDS (600 by
default; not in CI).

Load, all at once, on loopback:
  - 100 D4 sensors (10 organisations) streaming passivedns lines over TLS,
    SOAK_RATE lines/s in all, each line a new triple;
  - 20 partners with pdns-cof endpoints: 14 read promptly, 3 read slowly
    (a frame every 0.2 s), 3 never listen (down for the whole run);
  - 50 /stream WebSocket clients, 25 reading, 25 never reading;
  - one client querying /pdns/query for names already sent, back to back.
Chaos, at fixed fractions of the run:
  - 20 % and 70 %: the store's Redis is stopped for 10 s, then restarted;
  - 35 % to 55 %: the output file's file system (a 4 MiB tmpfs, as root)
    is full; at 55 % it grows to 1 GiB: space returns;
  - 50 %: the sensors pause until the store has written everything the
    relay accepted, the relay is killed with SIGKILL and started again.

Printed: RSS and counters every 30 s; records sent by the sensors,
accepted, refused, stored (summed over the relay's two lives); per kind of
partner: records put in outboxes, received, batches received twice,
reconnects; query latency percentiles and errors; stream clients cut off.
"Lost" is sent - stored - refused: what the relay took and did not keep."""
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
import benchutil  # noqa: E402
import conftest  # noqa: E402
import d4sensor  # noqa: E402
import websocket  # noqa: E402
from test_policy import write_policy  # noqa: E402

SECONDS = float(os.environ.get("SOAK_SECONDS", "600"))
RATE = int(os.environ.get("SOAK_RATE", "5000"))
N_SENSORS, N_ORGS, N_CLIENTS = 100, 10, 50
PARTNER_MODES = ["ok"] * 14 + ["slow"] * 3 + ["down"] * 3
MIXER = {"interval": 2, "hold_min": 0, "hold_jitter": 1, "min_batch": 1, "send_fraction": 1.0,
         "pool_min": 0, "min_sensors": 2, "sensor_quota": 1.0, "time_resolution": 3600,
         "max_hold": 60}

stop = threading.Event()
paused = threading.Event()
lock = threading.Lock()
sent = {"lines": 0, "failed_lines": 0, "reconnects": 0}
names = []


class Receiver:
    """A partner's D4 server: counts record lines and batches by sequence."""

    def __init__(self, work, mode):
        self.mode, self.records, self.batches, self.dupes, self.conns = mode, 0, 0, 0, 0
        self.dupe_records = 0
        self.seqs = set()
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        if mode == "down":
            s.close()  # nothing listens: connections are refused all along
            return
        s.listen(8)
        self.srv = s
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(os.path.join(work, "tls.crt"), os.path.join(work, "tls.key"))
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not stop.is_set():
            try:
                raw, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(raw,), daemon=True).start()


    def serve(self, raw):
        try:
            a = self.ctx.wrap_socket(raw, server_side=True)
        except OSError:
            return
        with lock:
            self.conns += 1
        lines = 0  # record lines of the batch being read
        try:
            while True:
                fr = d4sensor.read_frame(a)
                if fr is None:
                    break
                payload = fr[1]
                for line in payload.split(b"\n"):
                    if line.startswith(b'{"pdns_relay_batch"'):
                        seq = json.loads(line)["seq"]
                        with lock:
                            self.batches += 1
                            if seq in self.seqs:
                                self.dupes += 1
                                self.dupe_records += lines
                            self.seqs.add(seq)
                        lines = 0
                    elif line:
                        lines += 1
                        with lock:
                            self.records += 1
                if self.mode == "slow":
                    time.sleep(0.2)
        except OSError:
            pass
        a.close()


def feeder(relay, sensors, rate):
    """Sends rate lines/s from these sensors in frames of 100 lines."""
    socks, n = {}, 0
    per_frame = 100
    while not stop.is_set():
        if paused.is_set():
            for s in socks.values():
                s.close()
            socks = {}
            time.sleep(0.05)
            continue
        t0 = time.time()
        for uuid, key in sensors:
            if stop.is_set() or paused.is_set():
                break
            lines = []
            for _ in range(per_frame):
                n += 1
                name = "n%d.%s.soak.test" % (n, uuid[:6])
                lines.append("%d.1||c||s||IN||%s.||A||10.%d.%d.%d||60||1\n" % (
                    int(time.time()), name, n >> 16 & 255, n >> 8 & 255, n & 255))
            data = d4sensor.frame(uuid, key, "".join(lines).encode())
            try:
                if uuid not in socks:
                    socks[uuid] = d4sensor.connect(relay.d4_port)
                    with lock:
                        sent["reconnects"] += 1
                socks[uuid].sendall(data)
                with lock:
                    sent["lines"] += per_frame
                    if len(names) < 10000:
                        names.append(name)
            except OSError:
                socks.pop(uuid, None)
                with lock:
                    sent["failed_lines"] += per_frame
        wait = len(sensors) * per_frame / rate - (time.time() - t0)
        if wait > 0:
            time.sleep(wait)
    for s in socks.values():
        s.close()


def stream_client(relay, reading, cut):
    url = "ws://127.0.0.1:%d/stream" % relay.http_port
    while not stop.is_set():
        try:
            ws = websocket.create_connection(
                url, timeout=5, sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
        except (OSError, websocket.WebSocketException):
            time.sleep(1)
            continue
        try:
            while not stop.is_set():
                if reading:
                    ws.recv()
                else:
                    time.sleep(0.5)
        except (OSError, websocket.WebSocketException):
            with lock:
                cut[reading] += 1
        ws.close()
        if not reading:
            return  # a client that never reads stays gone once cut off


def querier(relay, lat, errors):
    i = 0
    while not stop.is_set():
        with lock:
            name = names[i % len(names)] if names else None
        i += 7
        if not name:
            time.sleep(0.1)
            continue
        t0 = time.time()
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/pdns/query/%s" % (relay.http_port, name),
                                   timeout=10).read()
            lat.append(time.time() - t0)
        except (OSError, urllib.error.HTTPError):
            errors[0] += 1
            time.sleep(0.1)


def metrics_or_empty(relay):
    try:
        return relay.metrics()
    except OSError:
        return {}


def msum(m, name):
    """A metric summed over its labels."""
    return sum(v for k, v in m.items() if k == name or k.startswith(name + "{"))


def settle(relay, delays_too, timeout=180):
    """Waits until the relay has stored all it accepted (and, with
    delays_too, emptied its delay lines), with nothing new for 2 s; the
    metrics then."""
    end, prev, same_since = time.time() + timeout, None, time.time()
    m = {}
    while time.time() < end:
        m = metrics_or_empty(relay)
        key = (msum(m, "pdns_relay_records_total"), m.get("pdns_relay_store_records_total"))
        if key != prev:
            prev, same_since = key, time.time()
        idle = m and key[0] == key[1] and m.get("pdns_relay_store_buffered_records", 1) == 0 \
            and (not delays_too or msum(m, "pdns_relay_partner_delayed") == 0)
        if idle and time.time() - same_since >= 2:
            break
        time.sleep(0.2)
    return m


def main():
    print(benchutil.machine())
    work = benchutil.workdir(fds=65536)
    sensors = []
    for i in range(N_SENSORS):
        uuid = "%08x00004000800000000000%04x" % (0x50a40000 + i, i)
        key = b"soak key of sensor %d" % i
        p = os.path.join(work, "s%03d.key" % i)
        with open(p, "wb") as f:
            f.write(key)
        os.chmod(p, 0o600)
        sensors.append((uuid, key, p, "org-%d" % (i % N_ORGS)))
    hm = os.path.join(work, "partner.hmac")
    with open(hm, "wb") as f:
        f.write(b"soak partner hmac key")
    os.chmod(hm, 0o600)

    redis = conftest.Redis(work)
    redis.start()
    small = os.path.join(work, "small")
    os.makedirs(small)
    full_disk = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", small]).returncode == 0
    receivers = [Receiver(work, m) for m in PARTNER_MODES]
    relay = conftest.Relay(work, redis=redis, sensors=(), extra={
        "mixer": MIXER, "policies": {"dir": "partners", "outbox_dir": "outbox"},
        "ingest": {"output_file": os.path.join(small, "out.ndjson")},
        "stream": {"policy": "open-data", "max_client_bytes": 1 << 20, "history": 10,
                   "max_clients": N_CLIENTS + 10, "max_clients_per_address": N_CLIENTS + 10},
        "d4": {"max_connections": 400, "max_connections_per_address": 400}})
    cfg = json.load(open(relay.config))
    cfg["sensors"] = [{"uuid": u, "name": "s%03d" % i, "key_file": p, "organisation": o}
                      for i, (u, _, p, o) in enumerate(sensors)]
    json.dump(cfg, open(relay.config, "w"), indent=1)
    pdir = os.path.join(relay.dir, "partners")
    os.makedirs(pdir)
    for i, r in enumerate(receivers):
        write_policy(os.path.join(pdir, "p%02d.json" % i), partner="p%02d" % i, sensor_id="relay",
                     endpoint={"host": "127.0.0.1", "port": r.port, "insecure": True,
                               "uuid": "%032x" % (0xd4 << 100 | i), "hmac_key_file": hm},
                     outbox={"max_batches": 100000, "when_full": "refuse_new"})
    write_policy(os.path.join(pdir, "open.json"), partner="open-data", sensor_id="relay")
    relay.start(timeout=60)

    threads = [threading.Thread(target=feeder, args=(relay, [(u, k) for u, k, _, _ in
                                                             sensors[j::4]], RATE / 4))
               for j in range(4)]
    cut, lat, qerr = [0, 0], [], [0]
    threads += [threading.Thread(target=stream_client, args=(relay, i % 2 == 0, cut))
                for i in range(N_CLIENTS)]
    threads.append(threading.Thread(target=querier, args=(relay, lat, qerr)))
    for t in threads:
        t.daemon = True
        t.start()

    base = {}  # counters of the relay's first life
    rows, events, done = [], [], set()
    start = time.time()
    last_row = -30.0

    def event(what):
        events.append((time.time() - start, what))
        print("%6.0f s  %s" % (time.time() - start, what), flush=True)

    while True:
        t = time.time() - start
        f = t / SECONDS
        if f >= 1:
            break
        for at in (0.2, 0.7):
            if f >= at and ("redis", at) not in done:
                done.add(("redis", at))
                event("Redis stopped")
                redis.stop()
                time.sleep(10)
                redis.start()
                event("Redis back")
        if f >= 0.35 and "disk" not in done and full_disk:
            done.add("disk")
            event("output file system filling (4 MiB tmpfs)")
        if f >= 0.5 and "kill" not in done:
            done.add("kill")
            paused.set()
            time.sleep(1)  # the feeders see it between frames
            base = settle(relay, False)
            relay.stop(9)
            event("relay killed (SIGKILL) with the store caught up")
            relay.start(timeout=60)
            event("relay started again")
            paused.clear()
        if f >= 0.55 and "space" not in done and full_disk:
            done.add("space")
            subprocess.run(["mount", "-o", "remount,size=1g", small], check=True)
            event("space returns on the output file system")
        if t - last_row >= 30:
            last_row = t
            m = metrics_or_empty(relay)
            rss = benchutil.rss_mib(relay.proc.pid) if relay.proc else 0
            with lock:
                s = sent["lines"]
            rows.append((t, rss, s, msum(base, "pdns_relay_records_total") +
                         msum(m, "pdns_relay_records_total"),
                         msum(base, "pdns_relay_store_records_total") +
                         msum(m, "pdns_relay_store_records_total"),
                         m.get("pdns_relay_store_buffered_records", 0),
                         msum(m, "pdns_relay_partner_delayed"),
                         m.get("pdns_relay_stream_clients", 0)))
            print("%6.0f s  RSS %.0f MiB, sent %d, stored %d" % (t, rss, s, rows[-1][4]), flush=True)
        time.sleep(0.5)

    # the end: the sensors stop; the store catches up; deliveries drain
    paused.set()
    time.sleep(1)
    m = settle(relay, True)
    live = ['pdns_relay_partner_outbox_batches{partner="p%02d"}' % i
            for i, r in enumerate(receivers) if r.mode != "down"]
    end = time.time() + 180  # deliveries drain to the partners that listen
    while time.time() < end and any(m.get(k, 1) for k in live):
        time.sleep(0.5)
        m = metrics_or_empty(relay)
    m = metrics_or_empty(relay)
    rss_end = benchutil.rss_mib(relay.proc.pid)
    stop.set()
    total = {k: msum(base, k) + msum(m, k) for k in (
        "pdns_relay_records_total", "pdns_relay_rejected_lines_total",
        "pdns_relay_store_records_total", "pdns_relay_store_dropped_total",
        "pdns_relay_store_dead_letters_total")}

    print("\nsoak: %.0f s, %d sensors at %d lines/s, %d partners (%s), %d stream clients "
          "(half not reading), one query client" % (SECONDS, N_SENSORS, RATE, len(receivers),
                                                    "14 ok, 3 slow, 3 down", N_CLIENTS))
    if not full_disk:
        print("(the full-disk phase needs root for its tmpfs: left out)")
    print("\n| t (s) | RSS (MiB) | lines sent | accepted | stored | store buffer | in delay lines | stream clients |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %.0f | %.0f | %d | %d | %d | %d | %d | %d |" % r)
    print("| end | %.0f | | | | | | |" % rss_end)
    lost = sent["lines"] - total["pdns_relay_store_records_total"] - \
        total["pdns_relay_rejected_lines_total"]
    print("\n| lines | count |\n|---|---|")
    for what, v in (("sent by the sensors", sent["lines"]),
                    ("not sent (relay down, connection refused)", sent["failed_lines"]),
                    ("accepted by the relay", total["pdns_relay_records_total"]),
                    ("refused (counted)", total["pdns_relay_rejected_lines_total"]),
                    ("stored", total["pdns_relay_store_records_total"]),
                    ("store dropped (counted)", total["pdns_relay_store_dropped_total"]),
                    ("dead letters (counted)", total["pdns_relay_store_dead_letters_total"]),
                    ("lost: sent - stored - refused", lost)):
        print("| %s | %d |" % (what, v))
    print("\n| partners | records into outboxes | records received once | batches received twice "
          "(their records) | connections | reconnects (relay) | batches left in outboxes |"
          "\n|---|---|---|---|---|---|---|")
    for mode in ("ok", "slow", "down"):
        idx = [i for i, r in enumerate(receivers) if r.mode == mode]
        def both(name):
            return sum(base.get(name % i, 0) + m.get(name % i, 0) for i in idx)
        out = both('pdns_relay_partner_records_total{partner="p%02d"}')
        rc = both('pdns_relay_partner_reconnects_total{partner="p%02d"}')
        left = sum(m.get('pdns_relay_partner_outbox_batches{partner="p%02d"}' % i, 0) for i in idx)
        print("| %d %s | %d | %d | %d (%d) | %d | %d | %d |" % (
            len(idx), mode, out,
            sum(receivers[i].records - receivers[i].dupe_records for i in idx),
            sum(receivers[i].dupes for i in idx), sum(receivers[i].dupe_records for i in idx),
            sum(receivers[i].conns for i in idx), rc, left))
    lat.sort()
    if lat:
        pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
        print("\nqueries: %d answered, p50 %.1f ms, p99 %.1f ms, max %.1f ms; %d errors "
              "(503 while Redis was away, or the relay restarting)" % (
                  len(lat), pct(0.5), pct(0.99), lat[-1] * 1000, qerr[0]))
    print("stream: connections ended by the relay: %d of readers (they reconnect), %d of "
          "clients that never read (cut off for falling behind)" % (cut[1], cut[0]))
    print("output file: write errors %d, dropped %d, failing now %d" % (
        m.get("pdns_relay_output_write_errors_total", 0), m.get("pdns_relay_output_dropped_total", 0),
        m.get("pdns_relay_output_failing", 0)))
    relay.stop()
    redis.stop()
    if full_disk:
        subprocess.run(["umount", small])


if __name__ == "__main__":
    main()
