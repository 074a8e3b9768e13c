"""The relay as a Debian service: it tells systemd when it is ready, when it
reloads and when it stops (sd_notify, Type=notify); its unit's sandbox is
rated by systemd-analyze; `make install` lays out the files a package
ships; its man page passes mandoc's lint."""
import os
import shutil
import signal
import socket
import subprocess

import pytest

from conftest import BIN, free_port, wait_port

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def test_sd_notify_ready_reload_stop(relay_factory, tmp_path):
    """With NOTIFY_SOCKET set (as systemd sets it), READY=1 comes once
    GET /readyz says ready; SIGHUP brings RELOADING=1 then READY=1;
    SIGTERM brings STOPPING=1."""
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(20)
    relay = relay_factory()
    relay.env = dict(os.environ, NOTIFY_SOCKET=path)
    relay.start(ready=False)

    def next_message():
        return sock.recv(4096).decode()

    msg = next_message()
    assert msg.startswith("READY=1") and "STATUS=ready" in msg
    assert relay.readyz()[0] == 200
    relay.proc.send_signal(signal.SIGHUP)
    assert next_message().startswith("RELOADING=1")
    assert next_message().startswith("READY=1")
    relay.proc.send_signal(signal.SIGTERM)
    assert next_message().startswith("STOPPING=1")
    assert relay.proc.wait(15) == 0
    sock.close()


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is missing")
def test_unit_sandbox_exposure():
    """`systemd-analyze security` rates the shipped unit at 2.0 or less."""
    unit = os.path.join(ROOT, "dist", "pdns-relay.service")
    p = subprocess.run(["systemd-analyze", "security", "--offline=true", unit],
                       capture_output=True, text=True, timeout=60)
    line = [l for l in p.stdout.splitlines() if "Overall exposure level" in l]
    assert line, p.stdout + p.stderr
    level = float(line[0].split(":")[1].split()[0])
    assert level <= 2.0, line[0]


def test_make_install_layout(tmp_path):
    """`make install DESTDIR=... PREFIX=/usr` lays out the binary, the unit,
    the man page, the example configuration and policies, and the private
    key and state directories."""
    dest = tmp_path / "root"
    p = subprocess.run(["make", "-s", "-C", ROOT, "install", "DESTDIR=%s" % dest, "PREFIX=/usr",
                        "INSTALL_BIN=%s" % os.path.abspath(BIN)], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    want = {"usr/sbin/pdns-relay": 0o755, "lib/systemd/system/pdns-relay.service": 0o644,
            "usr/share/man/man8/pdns-relay.8": 0o644,
            "usr/share/man/man5/pdns-relay.conf.5": 0o644,
            "usr/share/man/man5/pdns-relay-policy.5": 0o644,
            "usr/share/doc/pdns-relay/guide.md": 0o644,
            "etc/pdns-relay/relay.example.json": 0o640,
            "etc/pdns-relay/partners.example/open-data.json": 0o640}
    for rel, mode in want.items():
        st = os.stat(dest / rel)
        assert st.st_mode & 0o777 == mode, rel
    assert os.path.isdir(dest / "etc/pdns-relay/partners")
    for d in ("var/lib/pdns-relay", "etc/pdns-relay/keys"):
        assert os.stat(dest / d).st_mode & 0o777 == 0o700, d
    unit = (dest / "lib/systemd/system/pdns-relay.service").read_text()
    assert "ExecStart=/usr/sbin/pdns-relay run -c /etc/pdns-relay/relay.json" in unit
    v = subprocess.run([str(dest / "usr/sbin/pdns-relay"), "version"], capture_output=True,
                       text=True)
    assert v.returncode == 0 and v.stdout.startswith("pdns-relay ")


def man_text(page):
    import re
    out = subprocess.run(["mandoc", "-T", "ascii", page], capture_output=True, text=True).stdout
    return re.sub(".\b", "", out)


def accepted_keys(source):
    """The JSON keys a loader accepts: the string lists it checks objects
    against (`static const char *const ...[] = {...}`)."""
    import re
    text = open(os.path.join(ROOT, source)).read()
    keys = set()
    for body in re.findall(r"static const char \*const \w+\[\] = \{(.*?)\};", text, re.S):
        keys.update(re.findall(r'"([a-z0-9_]+)"', body))
    return keys


@pytest.mark.skipif(not shutil.which("mandoc"), reason="mandoc is missing")
@pytest.mark.parametrize("page,source", [("pdns-relay.conf.5", "relay/config.c"),
                                         ("pdns-relay-policy.5", "policy/policy.c")])
def test_file_format_pages_lint_and_name_every_key(page, source):
    """pdns-relay.conf(5) and pdns-relay-policy(5) pass mandoc's lint and
    describe every key the relay's loaders accept."""
    import re
    path = os.path.join(ROOT, "man", page)
    p = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", path], capture_output=True,
                       text=True)
    assert p.returncode == 0 and not p.stdout.strip(), p.stdout + p.stderr
    words = set(re.findall(r"[a-z0-9_]+", man_text(path)))
    keys = accepted_keys(source)
    assert len(keys) > 20
    missing = sorted(k for k in keys if k not in words)
    assert not missing, "%s does not describe %s" % (page, missing)


@pytest.mark.skipif(not shutil.which("mandoc"), reason="mandoc is missing")
def test_man_page_lints_and_names_every_command():
    """pdns-relay(8) passes `mandoc -T lint` and documents every command
    `pdns-relay help` lists, and the signals."""
    page = os.path.join(ROOT, "man", "pdns-relay.8")
    p = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", page], capture_output=True,
                       text=True)
    assert p.returncode == 0 and not p.stdout.strip(), p.stdout + p.stderr
    import re
    text = re.sub(".\b", "", subprocess.run(["mandoc", "-T", "ascii", page],
                                            capture_output=True, text=True).stdout)
    listed = subprocess.run([BIN, "help"], capture_output=True, text=True).stdout
    commands = [l.split()[0] for l in listed.splitlines()[3:] if l.startswith("  ")]
    assert len(commands) >= 8
    for c in commands:
        assert c in text, c
        # and every option `pdns-relay help CMD` shows
        helptext = subprocess.run([BIN, "help", c], capture_output=True, text=True).stdout
        for opt in set(re.findall(r"--[a-z][a-z0-9-]*", helptext)):
            assert opt in text, "%s %s is not in pdns-relay(8)" % (c, opt)
    for sig in ("SIGHUP", "SIGTERM"):
        assert sig in text


def test_init_then_check_then_run(redis_server, tmp_path):
    """`pdns-relay init DIR` makes a deployment that passes `policy check
    --strict` as made and runs: its first sensor, with the uuid and key
    init wrote, sends a line over TLS verified against init's certificate,
    and the record is stored. Secrets are 0600 in a 0700 directory; a
    second init on the same DIR is refused and changes nothing."""
    import json
    import time
    d = tmp_path / "etc"
    p = subprocess.run([BIN, "init", "--relay-id", "r1", "--tls-name", "localhost", str(d)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "sensor-1" in p.stdout and "fingerprint" in p.stdout
    assert os.stat(d / "keys").st_mode & 0o777 == 0o700
    for f in ("relay.key", "tls.key", "sensor-1.key"):
        assert os.stat(d / "keys" / f).st_mode & 0o777 == 0o600, f
    readme = (d / "README").read_text()
    for f in os.listdir(d / "keys"):
        assert f.split(".")[0] in readme, f
    before = {f: (d / "keys" / f).read_bytes() for f in os.listdir(d / "keys")}
    again = subprocess.run([BIN, "init", str(d)], capture_output=True, text=True)
    assert again.returncode == 1 and "exists" in again.stderr
    assert before == {f: (d / "keys" / f).read_bytes() for f in os.listdir(d / "keys")}

    cfg = d / "relay.json"
    check = subprocess.run([BIN, "policy", "check", "--strict", "-c", str(cfg),
                            str(d / "partners" / "open-data.json")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    # the operator's edits: where Redis is, and free ports for this test
    conf = json.loads(cfg.read_text())
    # everything the relay writes goes to the state directory (DIR/state here)
    assert conf["state_dir"] == "state" and conf["policies"]["outbox_dir"] == "state/outbox"
    d4_port, http_port, admin_port = (free_port() for _ in range(3))
    conf["redis"] = "redis://127.0.0.1:%d/0" % redis_server.port
    conf["d4"]["listen"] = "127.0.0.1:%d" % d4_port
    conf["http"]["listen"] = "127.0.0.1:%d" % http_port
    conf["admin"]["listen"] = "127.0.0.1:%d" % admin_port
    cfg.write_text(json.dumps(conf))
    uuid = conf["sensors"][0]["uuid"]
    relay = subprocess.Popen([BIN, "run", "-c", str(cfg)], stdout=subprocess.DEVNULL,
                             stderr=open(tmp_path / "relay.log", "w"))
    try:
        wait_port(http_port, relay)
        wait_port(d4_port, relay)
        line = "1795930000.000000||10.0.0.1||10.0.0.2||IN||init-test.example.||A||192.0.2.7||300||1\n"
        s = subprocess.run([BIN, "send", "--host", "localhost", "--port", str(d4_port),
                            "--uuid", uuid, "--key-file", str(d / "keys" / "sensor-1.key"),
                            "--ca", str(d / "keys" / "tls.crt")], input=line,
                           capture_output=True, text=True, timeout=30)
        assert s.returncode == 0, s.stderr
        import urllib.request
        deadline = time.time() + 30
        while True:
            try:
                body = urllib.request.urlopen(
                    "http://127.0.0.1:%d/query/init-test.example" % http_port).read().decode()
            except OSError:
                body = ""
            if "192.0.2.7" in body or time.time() > deadline:
                break
            time.sleep(0.1)
        assert "192.0.2.7" in body, (tmp_path / "relay.log").read_text()
    finally:
        relay.terminate()
        assert relay.wait(15) == 0


def test_journal_stream_gets_priorities(relay_factory):
    """Under systemd (stderr is the journal's stream, JOURNAL_STREAM names
    it), each log line starts with its syslog priority, so journalctl -p
    filters by level: <6> for info; a configuration that no longer loads on
    SIGHUP is logged at <3> error and the relay keeps running."""
    relay = relay_factory()
    open(relay.log, "ab").close()
    st = os.stat(relay.log)
    relay.env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
    relay.start()
    lines = relay.log_text().splitlines()
    assert lines and all(l.startswith("<") for l in lines), lines[:3]
    assert any(l.startswith("<6>info ") for l in lines)
    with open(relay.config, "w") as f:
        f.write("{ broken")
    relay.proc.send_signal(signal.SIGHUP)
    relay.wait_for(lambda: any(l.startswith("<3>error ") and "relay.json" in l
                               for l in relay.log_text().splitlines()), 20)
    assert relay.readyz()[0] == 200
