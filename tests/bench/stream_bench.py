#!/usr/bin/python3
"""The open stream's memory with clients that never read: CLIENTS WebSocket
clients (a 4 KiB receive buffer each) connect to /stream and never read
while ROUNDS batches of PER records are published; the relay's RSS
(VmRSS) is printed before and after, with the stream's own figure
(pdns_relay_stream_held_bytes) and the clients cut off for falling behind.
Baseline in the same run: the same batches with no client."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
import benchutil  # noqa: E402
import conftest  # noqa: E402
import websocket  # noqa: E402
from test_policy import FAST_MIXER, batch, stream, write_policy  # noqa: E402

CLIENTS = int(os.environ.get("STREAM_CLIENTS", "1000"))
ROUNDS = int(os.environ.get("STREAM_ROUNDS", "10"))
PER = int(os.environ.get("STREAM_PER", "1000"))




def run(work, clients):
    relay = conftest.Relay(work, extra={
        "mixer": FAST_MIXER, "policies": {"dir": "partners", "outbox_dir": "outbox"},
        "store": {"enabled": False},
        "stream": {"policy": "open-data", "max_client_bytes": 4 << 20, "history": 10,
                   "max_clients": clients + 10, "max_clients_per_address": clients + 10}})
    os.makedirs(os.path.join(relay.dir, "partners"))
    write_policy(os.path.join(relay.dir, "partners", "open.json"), partner="open-data",
                 sensor_id="relay", rrtypes={"allow": ["A"]})
    relay.start()
    before = benchutil.rss_mib(relay.proc.pid)
    url = "ws://127.0.0.1:%d/stream" % relay.http_port
    socks = [websocket.create_connection(url, sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
             for _ in range(clients)]
    peak = before
    for r in range(ROUNDS):
        for name in ("sensor-a", "sensor-b"):
            stream(relay, name, batch("b%d" % r, PER))
        relay.wait_for(lambda: relay.metrics()["pdns_relay_mixer_batches_total"] >= r + 1, 30)
        time.sleep(0.3)
        peak = max(peak, benchutil.rss_mib(relay.proc.pid))
    m = relay.metrics()
    row = (clients, before, peak, m["pdns_relay_stream_held_bytes"] / 2 ** 20,
           m["pdns_relay_stream_slow_dropped_total"])
    for s in socks:
        s.close()
    relay.stop()
    return row


def main():
    print(benchutil.machine())
    work = benchutil.workdir()
    print("open stream, %d batches of %d records, stream.max_client_bytes 4 MiB" % (ROUNDS, PER))
    print("| clients not reading | RSS before (MiB) | RSS peak (MiB) | stream holds (MiB) | cut off |")
    print("|---|---|---|---|---|")
    for n in (0, CLIENTS):
        print("| %d | %.1f | %.1f | %.1f | %d |" % run(work, n))


if __name__ == "__main__":
    main()
