#!/usr/bin/python3
"""Memory of unauthenticated D4 connections: 1,000 TLS connections each
send a header with a registered sensor's uuid announcing a 1,000,000-byte
payload, then PAYLOAD bytes of it, and never the HMAC-checked end. The
relay's RSS (VmRSS of /proc) is printed before and with them open, once
with the default d4.max_unauthenticated (64) and once with the cap raised
above 1,000 (as a relay without it behaves), in the same run."""
import json
import os
import ssl
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
import benchutil  # noqa: E402
import conftest  # noqa: E402
import d4sensor  # noqa: E402

CONNS = int(os.environ.get("PREAUTH_CONNS", "1000"))
PAYLOAD = int(os.environ.get("PREAUTH_PAYLOAD", "262144"))




def run(workdir, cap):
    relay = conftest.Relay(workdir, sensors=("sensor-a",))
    cfg = json.load(open(relay.config))
    cfg["store"] = {"enabled": False}
    cfg["d4"]["max_connections"] = cfg["d4"]["max_connections_per_address"] = CONNS + 100
    cfg["d4"]["header_timeout"] = 600
    if cap:
        cfg["d4"]["max_unauthenticated"] = cap
    json.dump(cfg, open(relay.config, "w"))
    relay.start()
    before = benchutil.rss_mib(relay.proc.pid)
    uuid, key = conftest.SENSORS["sensor-a"]
    hdr = d4sensor.frame(uuid, key, b"", size=1000000)[:62]
    assert struct.unpack("<I", hdr[58:62])[0] == 1000000
    chunk = b"x" * PAYLOAD
    socks, refused = [], 0
    t0 = time.time()
    for _ in range(CONNS):
        try:
            s = d4sensor.connect(relay.d4_port)
            s.sendall(hdr + chunk)
            socks.append(s)
        except (OSError, ssl.SSLError):
            refused += 1
    time.sleep(1.0)  # let the relay read what was sent
    with_them = benchutil.rss_mib(relay.proc.pid)
    m = relay.metrics()
    limit = m.get('pdns_relay_d4_rejected_sessions_total{reason="limit"}', 0)
    for s in socks:
        try:
            s.close()
        except OSError:
            pass
    relay.stop()
    return before, with_them, limit, time.time() - t0


def main():
    print(benchutil.machine())
    work = benchutil.workdir()
    print("unauthenticated D4 connections: %d, each a header announcing 1,000,000 bytes "
          "and %d bytes of payload" % (CONNS, PAYLOAD))
    print("| d4.max_unauthenticated | RSS before (MiB) | RSS with them open (MiB) | refused (limit) |")
    print("|---|---|---|---|")
    for cap, label in ((None, "64 (default)"), (CONNS + 100, "%d (no cap in effect)" % (CONNS + 100))):
        before, with_them, limit, _ = run(work, cap)
        print("| %s | %.1f | %.1f | %d |" % (label, before, with_them, limit))


if __name__ == "__main__":
    main()
