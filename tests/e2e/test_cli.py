"""The command line as an operator meets it: convert, config errors, help."""
import json
import os
import subprocess

from conftest import BIN


def run(*args, stdin=None):
    return subprocess.run([BIN, *args], capture_output=True, text=True, input=stdin, timeout=30)


def test_convert_rejects_and_summary(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("1.5||c||s||IN||A.Test.||A||10.0.0.1||60||3\n"
                   "broken line\n"
                   "1.5||c||s||IN||b.test.||AAAA||not-v6||60||1\n"
                   "1.5||c||s||IN||nx.test.||1||NXDOMAIN||0||1\n")
    p = run("convert", "--sensor", "s1", str(src))
    assert p.returncode == 0
    out = [json.loads(l) for l in p.stdout.splitlines()]
    assert out == [{"rrname": "a.test", "rrtype": "A", "rdata": "10.0.0.1", "time_first": 1,
                    "time_last": 1, "count": 3, "sensor_id": "s1", "time_first_ms": 1500,
                    "time_last_ms": 1500}]
    err = p.stderr.splitlines()
    assert err[0] == "%s:2: too few fields for the layout" % src
    assert err[1] == "%s:3: AAAA answer is not an IPv6 address" % src
    assert err[-1] == "convert: %s: 1 records, 1 error lines, 2 rejected" % src


def test_convert_stdin_layout_separator():
    p = run("convert", "--layout", "SQTA", "--separator", ";", "-",
            stdin="1700000000;x.test.;MX;mx.test.\n")
    assert p.returncode == 0
    assert json.loads(p.stdout)["rdata"] == "mx.test"
    p = run("convert", "--layout", "SQ", "-", stdin="")
    assert p.returncode == 2 and "needs query, type and answer" in p.stderr


def test_convert_missing_file():
    p = run("convert", "/nonexistent.csv")
    assert p.returncode == 1 and "No such file" in p.stderr


def test_run_config_errors(tmp_path):
    cfg = tmp_path / "relay.json"
    cfg.write_text('{\n  "relay_id": "x",\n  "sensor": []\n}\n')
    p = run("run", "-c", str(cfg))
    assert p.returncode == 1
    assert p.stderr.strip() == "run: %s:3:3: key 'sensor': unknown key" % cfg
    p = run("run")
    assert p.returncode == 2 and "-c CONFIG is required" in p.stderr


def test_help():
    p = run("help", "send")
    assert p.returncode == 0 and "--key-file" in p.stdout
    p = run("nonsense")
    assert p.returncode == 2 and "no command 'nonsense'" in p.stderr
    assert run("version").stdout.startswith("pdns-relay ")


def test_example_config_is_valid(tmp_path):
    """The shipped example loads (with its relative paths made real)."""
    conf = os.path.join(os.path.dirname(__file__), "..", "..", "conf", "relay.example.json")
    with open(conf) as f:
        cfg = json.load(f)
    for s in cfg["sensors"]:
        k = tmp_path / os.path.basename(s["key_file"])
        k.write_text("secret\n")
        k.chmod(0o600)
        s["key_file"] = str(k)
    cfg["d4"]["tls_cert"] = cfg["d4"]["tls_key"] = "/nonexistent"
    cfg["d4"]["listen"] = "127.0.0.1:0"  # no TLS files: the listener fails after the config loaded
    cfg["policies"]["dir"] = ""           # the policies have a test of their own
    cfg.pop("stream")
    os.mkdir(tmp_path / "keys")
    run("keygen", "--out", str(tmp_path / "keys" / "relay"))
    path = tmp_path / "relay.json"
    path.write_text(json.dumps(cfg))
    p = run("run", "-c", str(path))
    # every stage started; the listeners open last, and this one cannot
    assert "cannot listen for D4" in p.stderr, p.stderr


def test_passivedns_json_lines_are_taken_as_csv(tmp_path):
    """passivedns -j writes JSON lines; each is taken as the CSV line it
    stands for (here rebuilt independently from the JSON), and a broken one
    is rejected as such, not as "too few fields"."""
    src = os.path.join(os.path.dirname(__file__), "..", "data", "sensor-a.full.json")
    objs = [json.loads(l) for l in open(src)]
    csv = tmp_path / "same.csv"
    csv.write_text("".join("%d.%06d||%s||%s||%s||%s||%s||%s||%d||%d\n" % (
        o["timestamp_s"], o["timestamp_ms"], o["client"], o["server"], o["class"],
        o["query"], o["type"], o["answer"], o["ttl"], o["count"]) for o in objs))
    from_json, from_csv = run("convert", src), run("convert", str(csv))
    assert from_json.returncode == 0 and from_csv.returncode == 0
    assert from_json.stdout == from_csv.stdout and from_json.stdout.count("\n") == 1229
    bad = tmp_path / "bad.json"
    bad.write_text('{"timestamp_s": 1795930651, "query": "x.test."}\n{"broken\n')
    p = run("convert", str(bad))
    assert "without query, type or answer" in p.stderr
    assert "not a passivedns JSON object" in p.stderr
    assert "too few fields" not in p.stderr
