"""The README's first command, `make run`, end to end (in its one-shot
mode): it must bring everything up, replay the samples and report them."""
import os
import re
import subprocess

TOP = os.path.join(os.path.dirname(__file__), "..", "..")


def test_make_run_oneshot():
    env = dict(os.environ, PDNS_DEMO_ONESHOT="1")
    p = subprocess.run(["./scripts/demo.sh"], cwd=TOP, env=env, capture_output=True,
                       text=True, timeout=180)
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    assert re.search(r"sensor-a\s+1229\s+56\s+0\s+9", out), out
    assert re.search(r"sensor-b\s+1625\s+257\s+0", out), out
    assert re.search(r"sensor-c\s+20000\s+0\s+0", out), out
    assert "d4-core queue: 1000 records" in out
    assert '"sensor_id":"sensor-a"' in out
    assert re.search(r"the mixer: [1-9]\d* triples released", out), out
    assert "a mixed record (times to the hour, no sensor)" in out
    assert re.search(r"csirt-north\s+received\s+[1-9]", out), out
    assert "csirt-north gets pseudonymous sensor ids" in out
    assert re.search(r"verify: .*csirt-north.ndjson: [1-9]\d* batches, [1-9]\d* records: all verified", out), out
    # the store has every record, queryable
    assert '"records":23854' in out, out
    assert '{"rrname":"www.example-corp.test","rrtype":"CNAME"' in out, out
    assert '{"cond":"limited"' in out, out
    assert "== cleaned up" in out
