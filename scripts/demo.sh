#!/usr/bin/env bash
# `make run`: the relay end to end on this machine, with nothing set up by
# hand. Installs missing Debian packages (as root), builds, starts a
# throwaway redis-server, makes a TLS certificate and sensor keys, starts
# the relay with conf/relay.example.json, replays the sample sensor data
# over real D4/TLS connections from three simulated sensors (and through a
# d4-core analyzer queue), prints what arrived, and keeps running until
# Ctrl-C. Everything lives in one temporary directory, removed at the end.
# PDNS_DEMO_ONESHOT=1 exits after printing (used by the tests).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

PKGS="build-essential pkg-config libsodium-dev libhiredis-dev libwebsockets-dev
  libwebsockets-evlib-uv libjansson-dev libuv1-dev libssl-dev libcmocka-dev
  redis-server openssl python3 python3-pytest python3-redis python3-websocket
  python3-nacl python3-requests libidn2-dev libsystemd-dev tzdata"
missing=()
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "== installing: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing Debian packages; run as root:"
    echo "  apt-get update && apt-get install -y ${missing[*]}"
    exit 1
  fi
fi
make -s -j2 all
BIN="$top/build/pdns-relay"
PY=/usr/bin/python3

tmp=$(mktemp -d /tmp/pdns-relay-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
  echo "== cleaned up $tmp"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

freeport() { $PY -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
REDIS_PORT=$(freeport); D4_PORT=$(freeport); HTTP_PORT=$(freeport); ADMIN_PORT=$(freeport)

echo "== throwaway redis-server on 127.0.0.1:$REDIS_PORT ($tmp)"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$tmp" --save "" >"$tmp/redis.log" 2>&1 &
pids+=($!)

echo "== self-signed TLS certificate and demo sensor keys"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/tls.key" -out "$tmp/tls.crt" \
  -days 7 -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
for s in sensor-a sensor-b sensor-c; do
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$tmp/$s.key"
  chmod 600 "$tmp/$s.key"
done

# the shipped partner policies, with their secrets made here and short
# delays so that the demo shows deliveries within seconds
mkdir -p "$tmp/keys"
for k in csirt-north.hmac.key csirt-north.pseudonym.key vendor-intel.hmac.key; do
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$tmp/keys/$k"
  chmod 600 "$tmp/keys/$k"
done
"$BIN" keygen --out "$tmp/keys/relay" >/dev/null
cp -r "$top/conf/partners" "$tmp/partners"
$PY - "$tmp/partners" <<'PYEOF'
import json, os, sys
for f in os.listdir(sys.argv[1]):
    p = os.path.join(sys.argv[1], f)
    pol = json.load(open(p))
    pol.update({"delay_min": 0, "delay_jitter": 1})
    json.dump(pol, open(p, "w"), indent=2)
PYEOF

# the shipped example, with this run's ports; paths resolve next to it
$PY - "$top/conf/relay.example.json" "$tmp/relay.json" "$D4_PORT" "$HTTP_PORT" "$REDIS_PORT" "$ADMIN_PORT" <<'PYEOF'
import json, sys
src, dst, d4, http, redis, admin = sys.argv[1:]
c = json.load(open(src))
c["d4"]["listen"] = "127.0.0.1:" + d4
c["http"]["listen"] = "127.0.0.1:" + http
c["admin"]["listen"] = "127.0.0.1:" + admin
c["redis"] = "redis://127.0.0.1:%s/0" % redis
c["d4core"]["redis"] = "redis://127.0.0.1:%s/2" % redis
c["stats_interval"] = 30
# short epochs so that the demo shows a mixed batch within seconds
c["mixer"].update({"interval": 5, "hold_min": 1, "hold_jitter": 2, "min_batch": 20,
                   "max_hold": 3600, "time_resolution": 3600})
json.dump(c, open(dst, "w"), indent=2)
PYEOF

echo "== starting: pdns-relay run -c $tmp/relay.json"
"$BIN" run -c "$tmp/relay.json" 2>"$tmp/relay.log" &
pids+=($!)
for _ in $(seq 300); do  # until the relay says it is ready (GET /readyz)
  $PY -c "import urllib.request;urllib.request.urlopen('http://127.0.0.1:$HTTP_PORT/readyz',timeout=1)" 2>/dev/null && break
  sleep 0.1
done

uuid() { $PY -c "import json;print([s['uuid'] for s in json.load(open('$tmp/relay.json'))['sensors'] if s['name']=='$1'][0])"; }
echo "== replaying sample sensor data over D4/TLS"
$PY "$top/tests/bench/gen_csv.py" 20000 7 > "$tmp/sensor-c.csv"
for pair in "sensor-a:tests/data/sensor-a.full.csv" "sensor-b:tests/data/sensor-b.full.csv" "sensor-c:$tmp/sensor-c.csv"; do
  s=${pair%%:*}; f=${pair#*:}
  "$BIN" send --host 127.0.0.1 --port "$D4_PORT" --uuid "$(uuid "$s")" \
    --key-file "$tmp/$s.key" --ca "$tmp/tls.crt" "$f" 2>&1 | sed "s/^/   $s: /"
done
echo "== and 1000 lines through a d4-core analyzer queue (Redis list)"
$PY - "$REDIS_PORT" <<'PYEOF'
import sys, redis
r = redis.Redis(port=int(sys.argv[1]), db=2)
lines = open("tests/data/sensor-b.default.csv").read().splitlines()[:1000]
r.lpush("analyzer:8:6d2b1f3c4a5e4f60a1b2c3d4e5f60718", *lines)
PYEOF
echo "== waiting for the mixer's first batch (5 s epochs in the demo; 10 min by default)"
for _ in $(seq 60); do [ -s "$tmp/mixed.ndjson" ] && break; sleep 0.5; done
sleep 4  # the partners' delay lines

echo
echo "== what arrived (GET http://127.0.0.1:$ADMIN_PORT/stats, the admin listener)"
$PY - "$ADMIN_PORT" "$tmp/records.ndjson" <<'PYEOF'
import json, os, sys, urllib.request
st = json.load(urllib.request.urlopen("http://127.0.0.1:%s/stats" % sys.argv[1]))
print("   %-10s %9s %12s %9s %7s" % ("sensor", "records", "error lines", "rejected", "frames"))
for s in st["sensors"]:
    print("   %-10s %9d %12d %9d %7d" % (s["name"], s["records"], s["error_lines"], s["rejected"], s["frames"]))
m = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1]).read().decode()
q = [l for l in m.splitlines() if l.startswith('pdns_relay_records_total{source="queue"}')]
print("   d4-core queue: %d records" % float(q[0].split()[-1]))
print("\n== a few records as COF (%s)" % sys.argv[2])
with open(sys.argv[2]) as f:
    for i, line in enumerate(f):
        if i % 8000 == 0:
            print("   " + line.rstrip())
fig = {}
for l in m.splitlines():
    if l.startswith("pdns_relay_mixer_last_batch{"):
        fig[l.split('"')[1]] = float(l.split()[-1])
    elif l.startswith("pdns_relay_mixer_released_total"):
        fig["released"] = float(l.split()[-1])
print("\n== the mixer: %d triples released so far (only triples k=2 sensors saw)" % fig.get("released", 0))
print("   last batch: %d triples from %d sensors, entropy %.2f bits (anonymity set %.1f), min-entropy %.2f"
      % (fig.get("size", 0), fig.get("distinct_sensors", 0), fig.get("entropy_bits", 0),
         fig.get("anonymity_set", 0), fig.get("min_entropy_bits", 0)))
mixed = sys.argv[2].replace("records.ndjson", "mixed.ndjson")
try:
    with open(mixed) as f:
        first = f.readline().rstrip()
    print("   a mixed record (times to the hour, no sensor): " + first)
except OSError:
    pass
sent, denied = {}, {}
for l in m.splitlines():
    if l.startswith("pdns_relay_partner_records_total{"):
        sent[l.split('"')[1]] = int(float(l.split()[-1]))
    elif l.startswith("pdns_relay_partner_denied_total{") and float(l.split()[-1]) > 0:
        part, why = l.split('"')[1], l.split('"')[3]
        denied.setdefault(part, []).append("%s %d" % (why, float(l.split()[-1])))
print("\n== partners (policies in conf/partners/; outboxes in %s/outbox)" % os.path.dirname(mixed))
for part in sorted(sent):
    print("   %-13s received %5d   denied: %s" % (part, sent[part], ", ".join(denied.get(part, [])) or "-"))
box = os.path.join(os.path.dirname(mixed), "outbox", "csirt-north.ndjson")
if os.path.exists(box) and os.path.getsize(box):
    lines = open(box).read().splitlines()
    print("   csirt-north gets pseudonymous sensor ids: " + lines[0])
    trailer = [l for l in lines if l.startswith('{"pdns_relay_batch"')][0]
    print("   each batch ends with a signed trailer: " + trailer[:150] + "...")
PYEOF
echo
echo "== the local store: COF queries (GET http://127.0.0.1:$HTTP_PORT/...)"
for q in /info "/query/www.example-corp.test" "/query/10.20.1.0/28?limit=3" \
         "/query/*.example-corp.test?limit=2&saf=1" "/rdata/api-gw.cdn.example"; do
  echo "   GET $q"
  $PY - "http://127.0.0.1:$HTTP_PORT$q" <<'PYEOF' | sed 's/^/      /'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1]) as r:
    body = r.read().decode().splitlines()
    cur = r.headers.get("x-cursor")
for line in body[:4]:
    print(line)
if cur:
    print("(more: X-Cursor %s)" % cur)
PYEOF
done
if [ -s "$tmp/outbox/csirt-north.ndjson" ]; then
  echo "== pdns-relay verify --pubkey keys/relay.pub outbox/csirt-north.ndjson"
  "$BIN" verify --pubkey "$tmp/keys/relay.pub" "$tmp/outbox/csirt-north.ndjson" 2>&1 | sed 's/^/   /'
fi
echo
echo "The relay keeps running: D4/TLS on 127.0.0.1:$D4_PORT, HTTP on 127.0.0.1:$HTTP_PORT"
echo "(/query/..., /rdata/..., /pdns/query/..., /info, /healthz, /readyz), admin on"
echo "127.0.0.1:$ADMIN_PORT (/metrics, /stats),"
echo "log in $tmp/relay.log. Try: curl 'http://127.0.0.1:$HTTP_PORT/query/*.shop.example?limit=5'"
echo "Ctrl-C stops and cleans up."
if [ "${PDNS_DEMO_ONESHOT:-0}" = 1 ]; then exit 0; fi
wait "${pids[1]}"
