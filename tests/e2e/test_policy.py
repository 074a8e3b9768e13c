"""Partner policies end to end: the running relay applies each partner's
policy to the mixer's batches and writes what passes to the partner's
outbox; editing a policy while sensors stream changes the next batches; a
broken edit leaves the old policy in force. And the coordinator's tools:
policy check, preview, diff."""
import json
import os
import subprocess
import time

from conftest import BIN, DATA, SENSORS
import d4sensor
import pytest

FAST_MIXER = {"interval": 1, "hold_min": 0, "hold_jitter": 0, "min_batch": 1,
              "send_fraction": 1.0, "pool_min": 0, "min_sensors": 2, "sensor_quota": 1.0,
              "time_resolution": 3600, "max_hold": 60}


def write_policy(path, **over):
    pol = {"partner": "alpha", "rrtypes": {"allow": ["A"]}, "names": {"allow": ["."]},
           "sensors": {"allow": ["*"]}, "sensor_id": "strip"}
    pol.update(over)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(pol, f)
    os.rename(tmp, path)  # as an editor's save would, atomically


def stream(relay, name, lines):
    s = d4sensor.connect(relay.d4_port)
    s.sendall(d4sensor.frame(SENSORS[name][0], SENSORS[name][1], "".join(lines).encode()))
    s.close()


def outbox(relay):
    p = os.path.join(relay.dir, "outbox", "alpha.ndjson")
    if not os.path.exists(p):
        return []
    with open(p) as f:  # records only: trailer lines close each batch
        return [json.loads(l) for l in f if not l.startswith('{"pdns_relay_batch"')]


def batch(tag, n, rrtype="A"):
    out = []
    for i in range(n):
        ans = "10.7.%d.%d" % (i // 250, i % 250) if rrtype == "A" else "2001:db8::%x" % (i + 1)
        out.append("1795930651.1||c||s||IN||h%d.%s.test.||%s||%s||60||1\n" % (i, tag, rrtype, ans))
    return out


def test_policy_applied_and_reloaded(relay_factory):
    relay = relay_factory(extra={"mixer": FAST_MIXER,
                                 "policies": {"dir": "partners", "outbox_dir": "outbox"}})
    os.makedirs(os.path.join(relay.dir, "partners"))
    pfile = os.path.join(relay.dir, "partners", "alpha.json")
    write_policy(pfile)
    relay.start()
    log = relay.log_text
    assert relay.wait_for(lambda: "partner alpha: version" in log())
    # round 1: A and AAAA from both sensors; the policy allows A only
    for name in ("sensor-a", "sensor-b"):
        stream(relay, name, batch("r1", 50) + batch("r1", 20, "AAAA"))
    assert relay.wait_for(lambda: len(outbox(relay)) >= 50)
    time.sleep(1.5)
    got = outbox(relay)
    assert len(got) == 50 and {o["rrtype"] for o in got} == {"A"}
    assert all("sensor_id" not in o for o in got)
    m = relay.metrics()
    assert m['pdns_relay_partner_denied_total{partner="alpha",reason="rrtype"}'] == 20
    version1 = [k for k in m if k.startswith("pdns_relay_partner_info")][0]

    # round 2: edit the policy while the relay runs: AAAA too, pseudonyms
    with open(os.path.join(relay.dir, "alpha.key"), "w") as f:
        f.write("a pseudonym secret for partner alpha, 32+ bytes\n")
    os.chmod(os.path.join(relay.dir, "alpha.key"), 0o600)
    write_policy(pfile, rrtypes={"allow": ["A", "AAAA"]}, sensor_id="pseudonym",
                 pseudonym_key_file="../alpha.key")
    assert relay.wait_for(lambda: "partner alpha: %s ->" % version1.split('"')[3] in log())
    for name in ("sensor-a", "sensor-b"):
        stream(relay, name, batch("r2", 30) + batch("r2", 10, "AAAA"))
    assert relay.wait_for(lambda: len(outbox(relay)) >= 90)
    time.sleep(1.5)
    r2 = [o for o in outbox(relay) if ".r2." in o["rrname"]]
    assert len(r2) == 40 and sum(o["rrtype"] == "AAAA" for o in r2) == 10
    ids = {o["sensor_id"] for o in r2}
    assert len(ids) == 1 and len(ids.pop()) == 65  # two pseudonyms, the same for every record

    # round 3: a broken edit is refused; the last good policy stays in force
    with open(pfile, "w") as f:
        f.write('{"partner": "alpha", "rrtypes": {"allow": ["A", "BOGUS"]}')
    assert relay.wait_for(lambda: "refused; the partner keeps its previous policy" in log())
    assert "policy: %s:1:" % pfile in log()  # the reason, with its place
    for name in ("sensor-a", "sensor-b"):
        stream(relay, name, batch("r3", 10) + batch("r3", 5, "AAAA"))
    assert relay.wait_for(lambda: len([o for o in outbox(relay) if ".r3." in o["rrname"]]) == 15)
    assert relay.metrics()["pdns_relay_policy_refused_total"] >= 1


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60)


def test_policy_check_preview_diff(tmp_path):
    good = tmp_path / "alpha.json"
    good.write_text(json.dumps({"partner": "alpha", "rrtypes": {"allow": ["A", "CNAME"]},
                                "names": {"allow": ["."], "deny": ["example-corp.test"]},
                                "sensors": {"allow": ["*"]}}))
    bad = tmp_path / "bad.json"
    bad.write_text('{"partner": "alpha",\n "rrtypes": {"allow": ["A", "BOGUS"]},\n "colour": 1}\n')
    p = run("policy", "check", str(good), str(bad))
    assert p.returncode == 1
    assert "%s: ok: partner alpha, version" % good in p.stdout
    assert "%s:2:29: 'rrtypes.allow[1]': unknown rrtype \"BOGUS\"" % bad in p.stderr
    assert "%s:3:2: 'colour': unknown key" % bad in p.stderr
    assert run("policy", "check", str(good)).returncode == 0

    p = run("policy", "preview", "--policy", str(good), "--explain", "www.shop.example",
            "sensor-a=" + os.path.join(DATA, "sensor-a.full.csv"),
            "sensor-b=" + os.path.join(DATA, "sensor-b.full.csv"))
    assert p.returncode == 0, p.stderr
    out = [json.loads(l) for l in p.stdout.splitlines()]
    assert out and all(o["rrtype"] in ("A", "CNAME") for o in out)
    assert not any(o["rrname"].endswith("example-corp.test") for o in out)
    assert "explain: www.shop.example CNAME shop.cdn.example: released by the mixer" in p.stderr
    summary = dict((l[:36].strip(), l[36:].split()[0]) for l in p.stderr.splitlines()
                   if l.startswith("  ") and len(l) > 36)
    assert int(summary["sent to the partner"]) == len(out)
    assert int(summary["denied: rrtype"]) > 0 and int(summary["denied: name (suffix rules)"]) > 0
    # the same input gives the same output
    assert run("policy", "preview", "--policy", str(good),
               "sensor-a=" + os.path.join(DATA, "sensor-a.full.csv"),
               "sensor-b=" + os.path.join(DATA, "sensor-b.full.csv")).stdout == p.stdout

    new = tmp_path / "alpha2.json"
    new.write_text(json.dumps({"partner": "alpha", "rrtypes": {"allow": ["A"]},
                               "names": {"allow": ["."]}, "sensors": {"allow": ["*"]},
                               "min_sensors": 3}))
    p = run("policy", "diff", str(good), str(new))
    assert p.returncode == 0
    assert "will no longer receive CNAME records" in p.stdout
    assert "no longer denied: names under example-corp.test" in p.stdout
    assert "min_sensors raised from 2 to 3" in p.stdout

    # the policy in words, section by section; the relay's mixer (-c)
    # makes the stricter threshold and time rounding the ones that act
    p = run("policy", "show", str(good), str(bad))
    assert p.returncode == 1 and "unknown rrtype" in p.stderr
    words = p.stdout
    assert words.startswith("partner alpha, policy version ")
    for line in ("gets:\n", "  - Records of type A, CNAME.\n", "never:\n",
                 "  - Names: example-corp.test.\n", "thresholds:\n",
                 "  - A triple goes only once at least 2 allowed sensors saw it.\n",
                 "identifiers:\n", "  - No sensor identifier: sensor_id is removed.\n",
                 "  - First and last seen times are rounded outward to 6 h "
                 "(the relay's setting).\n"):
        assert line in words, (line, words)
    cfg = tmp_path / "relay.json"
    cfg.write_text(json.dumps({"d4": {"enabled": False},
                               "mixer": {"min_sensors": 4, "time_resolution": 3600}}))
    p = run("policy", "show", "-c", str(cfg), str(good))
    assert p.returncode == 0, p.stderr
    assert "at least 4 allowed sensors saw it (the relay's setting; the policy asks for " \
           "fewer)." in p.stdout and "rounded outward to 1 h (the relay's setting)" in p.stdout


def test_shipped_examples_are_valid(tmp_path):
    """conf/partners/*.json pass `policy check` against the example config
    as shipped: the key files they name (the operator's secrets) do not
    exist yet, which is a warning with its place, an error with --strict;
    once the keys exist, they pass --strict too."""
    import shutil
    conf = os.path.join(os.path.dirname(__file__), "..", "..", "conf")
    shutil.copytree(conf, tmp_path / "conf")
    files = sorted(str(p) for p in (tmp_path / "conf" / "partners").glob("*.json"))
    cfg = str(tmp_path / "conf" / "relay.example.json")
    p = run("policy", "check", "-c", cfg, *files)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count(": ok: partner") == 3
    assert "relay.example.json:37:7: warning: key 'sensors[0].key_file'" in p.stderr
    assert "trusted-csirt.json:27:3: warning: 'pseudonym_key_file': key file" in p.stderr
    assert "does not exist yet" in p.stderr
    assert run("policy", "check", "--strict", "-c", cfg, *files).returncode == 1
    keys = tmp_path / "conf" / "keys"  # the examples name ../keys/
    keys.mkdir()
    for k in ("csirt-north.hmac.key", "csirt-north.pseudonym.key", "vendor-intel.hmac.key"):
        (keys / k).write_text(os.urandom(32).hex())
        (keys / k).chmod(0o600)
    subprocess.run([BIN, "keygen", "--out", str(keys / "relay")], check=True, capture_output=True)
    for s in ("sensor-a", "sensor-b", "sensor-c"):
        (tmp_path / "conf" / (s + ".key")).write_text("secret\n")
        (tmp_path / "conf" / (s + ".key")).chmod(0o600)
    assert len(files) == 3
    p = run("policy", "check", "--strict", "-c", cfg, *files)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count(": ok: partner") == 3 and "does not exist" not in p.stderr


# ---- signed batches: verify, independently of the C code ----------------------

import hashlib  # noqa: E402

import nacl.signing  # noqa: E402 (python3-nacl, Debian)


def H(b):
    return hashlib.blake2b(b, digest_size=32).digest()


def mth(leaves):
    """RFC 6962 Merkle tree hash over leaf hashes, as docs/formats.md specifies."""
    if not leaves:
        return H(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return H(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def py_verify(path, pubhex):
    """A verifier written from docs/formats.md alone: returns [(seq, count)]."""
    vk = nacl.signing.VerifyKey(bytes.fromhex(pubhex))
    key_id = H(bytes.fromhex(pubhex))[:8].hex()
    out, leaves, prev = [], [], bytes(32)
    with open(path, "rb") as f:
        for raw in f:
            line = raw.rstrip(b"\n")
            if not line.startswith(b'{"pdns_relay_batch":'):
                leaves.append(H(b"\x00" + line))
                continue
            t = json.loads(line)
            msg = ("pdns-relay batch v1\norigin=%s\npartner=%s\nseq=%d\ncount=%d\n"
                   "merkle_root=%s\nprev=%s\npolicy=%s\ntime=%d\ntlp=%s\nkey_id=%s\n" % (
                       t["origin"], t["partner"], t["seq"], t["count"], t["merkle_root"],
                       t["prev"], t["policy"], t["time"], t["tlp"], t["key_id"])).encode()
            sig = bytes.fromhex(t["sig"])
            vk.verify(msg, sig)  # raises when the signature is bad
            assert t["key_id"] == key_id
            assert t["count"] == len(leaves)
            assert mth(leaves).hex() == t["merkle_root"]
            assert t["prev"] == prev.hex()
            prev = H(b"\x02" + msg + sig)
            out.append((t["seq"], t["count"]))
            leaves = []
    assert not leaves
    return out


def test_outbox_is_signed_and_verifiable(relay_factory, workdir, tmp_path):
    relay = relay_factory(extra={"mixer": FAST_MIXER,
                                 "policies": {"dir": "partners", "outbox_dir": "outbox"}})
    os.makedirs(os.path.join(relay.dir, "partners"))
    write_policy(os.path.join(relay.dir, "partners", "alpha.json"), tlp="TLP:GREEN")
    relay.start()
    for r in range(3):  # three rounds: at least three batches
        for name in ("sensor-a", "sensor-b"):
            stream(relay, name, batch("v%d" % r, 40))
        assert relay.wait_for(lambda: len(outbox(relay)) >= 40 * (r + 1))
        time.sleep(1.2)
    box = os.path.join(relay.dir, "outbox", "alpha.ndjson")
    pub = os.path.join(workdir, "relay.pub")
    with open(pub) as f:
        pubhex = f.read().strip()
    batches = py_verify(box, pubhex)
    assert len(batches) >= 3 and [s for s, _ in batches] == list(range(1, len(batches) + 1))
    assert sum(c for _, c in batches) == 120

    p = run("verify", "--pubkey", pub, box)
    assert p.returncode == 0 and "all verified" in p.stderr, p.stderr
    lines = open(box).read().splitlines(keepends=True)
    trailers = [i for i, l in enumerate(lines) if l.startswith('{"pdns_relay_batch"')]

    def check(mutated, expect):
        f = tmp_path / "m.ndjson"
        f.write_text("".join(mutated))
        q = run("verify", "--pubkey", pub, str(f))
        assert q.returncode == 1 and expect in q.stderr, q.stderr

    m = list(lines)
    m[0] = m[0].replace("v0", "vX", 1)
    check(m, "batch seq 1: the records do not match the signed Merkle root (a record was altered")
    check(lines[1:], "batch seq 1: the trailer counts")
    check(lines[:trailers[0] + 1] + lines[trailers[1] + 1:], "batch seq 3 after seq 1: batches 2-2 are missing")
    check(lines + lines[:trailers[0] + 1], "batch seq 1 after seq %d: replayed or reordered" % len(batches))
    m = list(lines)
    m[trailers[0]] = m[trailers[0]].replace("TLP:GREEN", "TLP:CLEAR")
    check(m, "batch seq 1: the signature does not match the trailer (trailer tampered)")
    subprocess.run([BIN, "keygen", "--out", str(tmp_path / "other")], check=True, capture_output=True)
    q = run("verify", "--pubkey", str(tmp_path / "other.pub"), box)
    assert q.returncode == 1 and "(wrong key)" in q.stderr

    # --state carries the chain across runs
    st = tmp_path / "state"
    first = tmp_path / "first.ndjson"
    first.write_text("".join(lines[:trailers[0] + 1]))
    rest = tmp_path / "rest.ndjson"
    rest.write_text("".join(lines[trailers[0] + 1:]))
    assert run("verify", "--pubkey", pub, "--state", str(st), str(first)).returncode == 0
    assert run("verify", "--pubkey", pub, "--state", str(st), str(rest)).returncode == 0
    q = run("verify", "--pubkey", pub, "--state", str(st), str(first))  # replayed
    assert q.returncode == 1 and "replayed or reordered" in q.stderr

    # one record proven part of a signed batch, without the rest
    q = run("verify", "--pubkey", pub, "--prove", "2:7", box)
    assert q.returncode == 0, q.stderr
    proof = tmp_path / "proof.json"
    proof.write_text(q.stdout)
    q = run("verify", "--pubkey", pub, "--proof", str(proof))
    assert q.returncode == 0 and "record 7 of batch seq 2" in q.stdout
    pj = json.loads(proof.read_text())
    pj["record"] = pj["record"].replace("10.7", "10.8")
    proof.write_text(json.dumps(pj))
    q = run("verify", "--pubkey", pub, "--proof", str(proof))
    assert q.returncode == 1 and "is not part of batch seq 2" in q.stderr


def test_rate_limit_delays_never_drops(relay_factory):
    relay = relay_factory(extra={"mixer": FAST_MIXER,
                                 "policies": {"dir": "partners", "outbox_dir": "outbox"}})
    os.makedirs(os.path.join(relay.dir, "partners"))
    write_policy(os.path.join(relay.dir, "partners", "alpha.json"),
                 rate_limit={"records_per_second": 40, "burst": 40})
    relay.start()
    for name in ("sensor-a", "sensor-b"):
        stream(relay, name, batch("rl", 200))
    assert relay.wait_for(lambda: len(outbox(relay)) >= 40)
    t0 = time.time()
    time.sleep(1.0)
    n = len(outbox(relay))
    assert n < 200  # held back by the limit, not all at once
    assert relay.metrics()['pdns_relay_partner_rate_held{partner="alpha"}'] > 0
    assert relay.wait_for(lambda: len(outbox(relay)) == 200, 15)  # all of them, in time
    assert time.time() - t0 >= 2.5  # 160 more at 40/s take about 4 s
    assert relay.metrics()['pdns_relay_partner_delay_full_total{partner="alpha"}'] == 0


def test_policy_change_reaches_the_delay_line(relay_factory):
    """Records already waiting in a partner's delay line are judged again
    by the policy in force when they leave: a partner disabled (or narrowed)
    meanwhile gets none of them."""
    relay = relay_factory(extra={"mixer": FAST_MIXER,
                                 "policies": {"dir": "partners", "outbox_dir": "outbox"}})
    os.makedirs(os.path.join(relay.dir, "partners"))
    pfile = os.path.join(relay.dir, "partners", "alpha.json")
    write_policy(pfile, delay_min=5)
    relay.start()
    log = relay.log_text
    assert relay.wait_for(lambda: "partner alpha: version" in log())
    delayed = 'pdns_relay_partner_delayed{partner="alpha"}'
    for name in ("sensor-a", "sensor-b"):
        stream(relay, name, batch("dl", 50))
    assert relay.wait_for(lambda: relay.metrics()[delayed] == 50, 10)
    write_policy(pfile, delay_min=5, enabled=False)  # revoked while they wait
    assert relay.wait_for(lambda: log().count("partner alpha: ") >= 2 and " -> " in log(), 10)
    assert relay.wait_for(lambda: relay.metrics()[delayed] == 0, 20)
    m = relay.metrics()
    assert outbox(relay) == []
    assert m['pdns_relay_partner_denied_at_release_total{partner="alpha"}'] == 50
    assert m['pdns_relay_partner_denied_total{partner="alpha",reason="disabled"}'] == 50

    # narrowed rather than revoked: A records waiting, then only AAAA allowed
    write_policy(pfile, delay_min=5)
    assert relay.wait_for(lambda: log().count(" -> ") >= 2, 10)
    for name in ("sensor-a", "sensor-b"):
        stream(relay, name, batch("dm", 20) + batch("dm", 5, "AAAA"))
    assert relay.wait_for(lambda: relay.metrics()[delayed] == 20, 10)  # AAAA denied at once
    write_policy(pfile, delay_min=5, rrtypes={"allow": ["AAAA"]})
    assert relay.wait_for(lambda: log().count(" -> ") >= 3, 10)
    assert relay.wait_for(lambda: relay.metrics()[delayed] == 0, 20)
    assert outbox(relay) == []
    assert relay.metrics()['pdns_relay_partner_denied_at_release_total{partner="alpha"}'] == 70


def counted(tag, n, count, ts):
    """n A records tagged tag, each seen count times, first at ts."""
    return ["%d.5||c||s||IN||h%d.%s.test.||A||10.8.0.%d||60||%d\n" % (ts, i, tag, i, count)
            for i in range(n)]


def test_counts_delta_and_total(relay_factory):
    """A triple released three times (across a clean restart and a kill -9)
    reaches a "delta" partner as the sightings since each release and a
    "total" partner as everything sent so far: a consumer that adds the
    first and one that keeps the last record of the second (as
    analyzer-d4-passivedns's COF import does) end with the same, right,
    count and time_first."""
    import signal
    relay = relay_factory(extra={"mixer": dict(FAST_MIXER, count_buckets=False),
                                 "policies": {"dir": "partners", "outbox_dir": "outbox"}})
    pdir = os.path.join(relay.dir, "partners")
    os.makedirs(pdir)
    write_policy(os.path.join(pdir, "adds.json"), partner="adds")
    write_policy(os.path.join(pdir, "keeps.json"), partner="keeps", counts="total")

    def records(partner):
        p = os.path.join(relay.dir, "outbox", partner + ".ndjson")
        if not os.path.exists(p):
            return []
        with open(p) as f:
            return [json.loads(l) for l in f if not l.startswith('{"pdns_relay_batch"')]

    n = 20
    rounds = ((3, 1795930651), (5, 1795800000), (2, 1795990000))
    for k, (count, ts) in enumerate(rounds):
        relay.start()
        for name in ("sensor-a", "sensor-b"):
            stream(relay, name, counted("c", n, count, ts))
        assert relay.wait_for(lambda: len(records("keeps")) == n * (k + 1) and
                              len(records("adds")) == n * (k + 1), 20), relay.log_text()[-2000:]
        if k == 0:
            relay.stop()
        elif k == 1:
            relay.stop(signal.SIGKILL)
    m = relay.metrics()
    assert m['pdns_relay_partner_totals_triples{partner="keeps"}'] == n
    assert 'pdns_relay_partner_totals_triples{partner="adds"}' not in m

    want_count = sum(2 * c for c, _ in rounds)
    want_first = min(ts for _, ts in rounds) // 3600 * 3600  # time_resolution 3600
    added, kept = {}, {}
    for o in records("adds"):
        a = added.setdefault(o["rrname"], {"count": 0, "time_first": o["time_first"]})
        a["count"] += o["count"]
        a["time_first"] = min(a["time_first"], o["time_first"])
    for o in records("keeps"):
        kept[o["rrname"]] = {"count": o["count"], "time_first": o["time_first"]}
    assert len(added) == len(kept) == n
    for name in added:
        assert added[name] == kept[name] == {"count": want_count, "time_first": want_first}
    # each release of the "adds" partner carried only its own round
    assert sorted({o["count"] for o in records("adds")}) == sorted(2 * c for c, _ in rounds)
    relay.stop()


@pytest.mark.parametrize("point", ["outbox-before:alpha", "outbox-torn:alpha",
                                   "outbox-after:alpha", "outbox-before:keeps",
                                   "outbox-torn:keeps"])
def test_a_crash_at_the_outbox_sends_every_record_once(relay_factory, workdir, point):
    """The relay dies (SIGKILL) just before, in the middle of, or just
    after writing a batch to a partner's outbox: after the restart each
    partner's outbox holds every record exactly once, in batches that
    verify (no torn line, no gap or repeat in the chain), and the "total"
    partner's counts hold each sighting once. PDNS_RELAY_CRASH_AT names the
    point and the partner (docs/hacking.md); that partner's first batch
    after the start crashes the relay."""
    import signal
    relay = relay_factory(extra={"mixer": dict(FAST_MIXER, count_buckets=False),
                                 "policies": {"dir": "partners", "outbox_dir": "outbox"}})
    os.makedirs(os.path.join(relay.dir, "partners"))
    write_policy(os.path.join(relay.dir, "partners", "alpha.json"))
    write_policy(os.path.join(relay.dir, "partners", "keeps.json"), partner="keeps",
                 counts="total")
    how, crashed = point.split(":")

    def box(partner):
        return os.path.join(relay.dir, "outbox", partner + ".ndjson")

    def records(partner):
        with open(box(partner), "rb") as f:
            return [json.loads(l) for l in f
                    if l.endswith(b"\n") and not l.startswith(b'{"pdns_relay_batch"')]

    def names(partner):
        return [o["rrname"] for o in records(partner)]

    n = 20
    relay.start()
    for name in ("sensor-a", "sensor-b"):
        stream(relay, name, batch("one", n))
    assert relay.wait_for(lambda: len(names("alpha")) == len(names("keeps")) == n, 20), \
        relay.log_text()[-2000:]
    relay.stop()

    relay.env = dict(os.environ, PDNS_RELAY_CRASH_AT=point)
    relay.start()
    for name in ("sensor-a", "sensor-b"):
        stream(relay, name, batch("two", n))
    relay.proc.wait(30)
    assert relay.proc.returncode == -signal.SIGKILL, relay.log_text()[-2000:]
    seen = names(crashed)
    tail = open(box(crashed), "rb").read().splitlines(keepends=True)[-1]
    if how == "outbox-before":
        assert len(seen) == n
    elif how == "outbox-torn":  # half a batch: no trailer after its records
        assert n <= len(seen) < 2 * n and not tail.startswith(b'{"pdns_relay_batch"'), seen
    else:
        assert len(seen) > n and tail.startswith(b'{"pdns_relay_batch"'), seen

    relay.env = None
    relay.start()
    assert relay.wait_for(lambda: "delayed records restored" in relay.log_text(), 20)
    for name in ("sensor-a", "sensor-b"):  # a third round: what was restored is out before it
        stream(relay, name, batch("three", n))
    pub = open(os.path.join(workdir, "relay.pub")).read().strip()
    for partner in ("alpha", "keeps"):
        assert relay.wait_for(lambda: sum(1 for x in names(partner) if ".three." in x) == n,
                              20), relay.log_text()[-2000:]
        got = names(partner)
        assert sorted(got) == sorted(set(got)) and len(got) == 3 * n, relay.log_text()[-3000:]
        batches = py_verify(box(partner), pub)
        assert [s for s, _ in batches] == list(range(1, len(batches) + 1))
        assert sum(c for _, c in batches) == 3 * n
    # each name was seen once by each of two sensors: its total is 2
    assert {o["count"] for o in records("keeps")} == {2}
    relay.stop()


def test_a_totals_journal_without_markers_is_read_whole(relay_factory):
    """An older relay's totals journal has no batch markers: every entry in
    it counts, and the totals go on from it, across a crash too."""
    import struct
    relay = relay_factory(extra={"mixer": dict(FAST_MIXER, count_buckets=False),
                                 "policies": {"dir": "partners", "outbox_dir": "outbox"}})
    os.makedirs(os.path.join(relay.dir, "partners"))
    write_policy(os.path.join(relay.dir, "partners", "keeps.json"), partner="keeps",
                 counts="total")
    path = os.path.join(relay.dir, "outbox", "keeps.ndjson")
    journal = os.path.join(relay.dir, "outbox", "keeps.totals")

    def counts():
        with open(path) as f:
            return [json.loads(l)["count"] for l in f if not l.startswith('{"pdns_relay_b')]

    n = 10
    relay.start()
    for name in ("sensor-a", "sensor-b"):
        stream(relay, name, counted("j", n, 3, 1795930651))
    assert relay.wait_for(lambda: len(counts()) == n, 20), relay.log_text()[-2000:]
    relay.stop()
    raw = open(journal, "rb").read()
    size = 40  # key[16], count, time_first, time_last
    entries = [raw[i:i + size] for i in range(0, len(raw), size)]
    marker = b"\xff" * 16
    old = [e for e in entries if not (e[:16] == marker and
                                      struct.unpack("<q", e[24:32])[0] == -2 ** 63)]
    assert len(old) == n and len(entries) > n  # it had markers; now it has none
    with open(journal, "wb") as f:
        f.write(b"".join(old))
    # the first batch after it is lost to a crash: that batch's totals are
    # taken back, not the older relay's
    relay.env = dict(os.environ, PDNS_RELAY_CRASH_AT="outbox-before")
    relay.start()
    for name in ("sensor-a", "sensor-b"):
        stream(relay, name, counted("j", n, 2, 1795930651))
    relay.proc.wait(30)
    relay.env = None
    relay.start()
    assert relay.wait_for(lambda: len(counts()) == 2 * n, 20), relay.log_text()[-2000:]
    assert counts()[n:] == [10] * n  # 2 x 3, then 2 x 2 more
    relay.stop()


def test_counts_total_needs_cof(tmp_path):
    p = tmp_path / "csv.json"
    p.write_text(json.dumps({"partner": "csv", "rrtypes": {"allow": ["A"]},
                             "names": {"allow": ["."]}, "sensors": {"allow": ["*"]},
                             "counts": "total",
                             "endpoint": {"host": "127.0.0.1", "port": 4443,
                                          "uuid": "a0a0a0a0a0a0400080000000000000aa",
                                          "format": "passivedns-csv", "insecure": True}}))
    r = run("policy", "check", str(p))
    assert r.returncode != 0
    assert '"total" applies to pdns-cof' in r.stdout + r.stderr
    p.write_text(json.dumps({"partner": "x", "counts": "sum"}))
    r = run("policy", "check", str(p))
    assert r.returncode != 0 and "%s:1:" % p in r.stdout + r.stderr
    assert 'want "delta"' in r.stdout + r.stderr
