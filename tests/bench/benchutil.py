"""What the Python benchmarks share: a work directory with the files a
relay under test needs, a relay that only stores, and a process's
resident memory and CPU time."""
import json
import os
import resource
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
import conftest  # noqa: E402


def workdir(fds=8192):
    """A fresh directory with tls.crt/tls.key, the test sensors' keys and a
    batch-signing key pair (relay.key, relay.pub); the file limit raised
    to fds (many connections)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, fds)), hard))
    work = tempfile.mkdtemp(prefix="pdns-bench-")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    os.path.join(work, "tls.key"), "-out", os.path.join(work, "tls.crt"),
                    "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True)
    for name, (_, key) in conftest.SENSORS.items():
        p = os.path.join(work, name + ".key")
        with open(p, "wb") as f:
            f.write(key)
        os.chmod(p, 0o600)
    subprocess.run([conftest.BIN, "keygen", "--out", os.path.join(work, "relay")], check=True,
                   capture_output=True)
    return work


def gen_csv(work, n, name="bench.csv"):
    """n passivedns CSV lines from gen_csv.py written to work/name; its path."""
    gen = os.path.join(os.path.dirname(__file__), "gen_csv.py")
    path = os.path.join(work, name)
    with open(path, "w") as f:
        subprocess.run([sys.executable, gen, str(n)], stdout=f, check=True)
    return path


def machine():
    """What the figures are measured on: the CPU model and the vector paths
    the relay takes (`pdns-relay version`), printed by every benchmark."""
    out = subprocess.run([conftest.BIN, "version"], capture_output=True, text=True).stdout
    lines = out.splitlines()
    return lines[1] if len(lines) > 1 else "cpu: unknown"


def rss_mib(pid):
    """VmRSS of process pid, MiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def store_relay(work, store, edit=None):
    """A relay (not started) with one sensor, storing into store, without
    the mixer and without an ingest output file; edit(cfg) changes its
    configuration further."""
    relay = conftest.Relay(work, redis=store, sensors=("sensor-a",))
    with open(relay.config) as f:
        cfg = json.load(f)
    cfg["mixer"] = {"enabled": False}
    cfg.pop("ingest", None)
    if edit:
        edit(cfg)
    with open(relay.config, "w") as f:
        json.dump(cfg, f)
    return relay


def cpu_seconds(pid, ended=False):
    """Seconds of CPU process pid has used (user + system); ended: once it
    has ended (waited for without reaping it, so that its stat is there)."""
    if ended:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
