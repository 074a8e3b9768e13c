#!/usr/bin/python3
"""The Debian package, end to end, as root on a Debian 12 machine (CI runs
it after the test suite; it installs and purges the package on the machine
it runs on):

1. builds the .deb from a copy of the source tree (dpkg-buildpackage -us
   -uc -b) and runs lintian on it (no errors);
2. installs it with apt (dependencies from the archive): the pdns-relay
   user exists, `pdns-relay init` made /etc/pdns-relay with its keys
   owned by that user at 0600 in a 0700 directory, the state directory is
   the user's, the man pages and documentation are in place;
3. `policy check --strict` passes on what was installed;
4. `systemd-analyze verify` accepts the installed unit and `security`
   rates it at 2.0 or less (when systemd-analyze is there);
5. starts the service: with systemctl when systemd runs, else the unit's
   ExecStart as its User, in its WorkingDirectory, with NOTIFY_SOCKET set
   to a socket of this script: READY=1 arrives and /healthz answers; SIGTERM
   brings STOPPING=1 and exit 0;
6. purges it: what postinst made is gone.
Uses the Redis on 127.0.0.1:6379 (relay.json's default) when one listens
there, else starts one for the run."""
import glob
import grp
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def step(msg):
    print("== " + msg, flush=True)


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit("FAILED: %s\n%s%s" % (" ".join(cmd), p.stdout, p.stderr))
    return p.stdout


def check(cond, what):
    if not cond:
        sys.exit("FAILED: " + what)


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        return True
    except OSError:
        return False


def wait(pred, what, timeout=60):
    deadline = time.time() + timeout
    while not pred():
        if time.time() > deadline:
            sys.exit("FAILED: timed out waiting for " + what)
        time.sleep(0.1)


def unit_value(unit, key):
    for line in unit.splitlines():
        if line.startswith(key + "="):
            return line.split("=", 1)[1]
    return None


def main():
    if os.geteuid() != 0:
        sys.exit("check_deb.py installs a package: run it as root")
    work = tempfile.mkdtemp(prefix="pdns-deb-")
    src = os.path.join(work, "src")
    os.mkdir(src)
    step("build the package")
    if shutil.which("git") and os.path.isdir(os.path.join(ROOT, ".git")):
        files = run(["git", "-C", ROOT, "ls-files", "-co", "--exclude-standard"]).split("\n")
    else:  # a tree without git: everything but build products
        files = [os.path.relpath(os.path.join(d, f), ROOT)
                 for d, dirs, fs in os.walk(ROOT) for f in fs]
    files = [f for f in files if f and not f.startswith(("build", ".git/", "pdns-relay"))]
    tar = subprocess.Popen(["tar", "-C", ROOT, "-cf", "-", "-T", "-"], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE)
    untar = subprocess.Popen(["tar", "-C", src, "-xf", "-"], stdin=tar.stdout)
    tar.stdin.write("\n".join(files).encode())
    tar.stdin.close()
    check(tar.wait() == 0 and untar.wait() == 0, "copying the source tree")
    run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src)
    deb = glob.glob(os.path.join(work, "pdns-relay_*.deb"))
    check(len(deb) == 1, "one pdns-relay .deb built")
    step("lintian")
    changes = glob.glob(os.path.join(work, "*.changes"))[0]
    print(run(["lintian", "--fail-on", "error", changes]), end="")

    step("install")
    run(["apt-get", "install", "-y", "-qq", deb[0]],
        env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    user = pwd.getpwnam("pdns-relay")
    grp.getgrnam("pdns-relay")
    for f in ("/usr/sbin/pdns-relay", "/lib/systemd/system/pdns-relay.service",
              "/usr/share/man/man8/pdns-relay.8.gz", "/usr/share/man/man5/pdns-relay.conf.5.gz",
              "/usr/share/man/man5/pdns-relay-policy.5.gz",
              "/usr/share/doc/pdns-relay/guide.md.gz", "/etc/pdns-relay/relay.json",
              "/etc/pdns-relay/partners/open-data.json", "/usr/lib/pdns-relay/pdnsrelay.so"):
        check(os.path.exists(f), f + " installed")
    # the store's Redis module, as installed, loads into Debian's redis-server
    with tempfile.TemporaryDirectory() as rd:
        with socket.socket() as sk:
            sk.bind(("127.0.0.1", 0))
            rport = sk.getsockname()[1]
        redis = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                                  "--dir", rd, "--save", "", "--loadmodule",
                                  "/usr/lib/pdns-relay/pdnsrelay.so"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait(lambda: listening(rport) or redis.poll() is not None, "redis-server")
            out = subprocess.run(["redis-cli", "-p", str(rport), "COMMAND", "INFO",
                                  "pdnsrelay.ingest"], capture_output=True, text=True).stdout
            check("pdnsrelay.ingest" in out, "the module loads into redis-server")
        finally:
            redis.terminate()
            redis.wait(10)
    st = os.stat("/etc/pdns-relay/keys")
    check(st.st_mode & 0o777 == 0o700 and st.st_uid == user.pw_uid, "keys/ 0700, the user's")
    for k in ("relay.key", "tls.key", "sensor-1.key"):
        st = os.stat("/etc/pdns-relay/keys/" + k)
        check(st.st_mode & 0o777 == 0o600 and st.st_uid == user.pw_uid, k + " 0600, the user's")
    st = os.stat("/var/lib/pdns-relay")
    check(st.st_mode & 0o777 == 0o700 and st.st_uid == user.pw_uid, "state dir 0700, the user's")

    step("policy check --strict on the installed configuration")
    print(run(["pdns-relay", "policy", "check", "--strict", "-c", "/etc/pdns-relay/relay.json"]
              + glob.glob("/etc/pdns-relay/partners/*.json")), end="")

    unit_path = "/lib/systemd/system/pdns-relay.service"
    if shutil.which("systemd-analyze"):
        step("systemd-analyze verify and security")
        p = subprocess.run(["systemd-analyze", "verify", unit_path], capture_output=True,
                           text=True)
        bad = [l for l in (p.stdout + p.stderr).splitlines() if "pdns-relay.service" in l]
        check(not bad, "systemd-analyze verify: " + "\n".join(bad))
        out = run(["systemd-analyze", "security", "--offline=true", unit_path])
        level = [l for l in out.splitlines() if "Overall exposure level" in l][0]
        print(level)
        check(float(level.split(":")[1].split()[0]) <= 2.0, "exposure <= 2.0")
    else:
        print("systemd-analyze missing: verify and security skipped")

    redis = None
    if not listening(6379):
        redis = subprocess.Popen(["redis-server", "--port", "6379", "--save", "",
                                  "--appendonly", "no", "--dir", work],
                                 stdout=subprocess.DEVNULL)
        wait(lambda: listening(6379), "redis-server")
    try:
        step("start the service")
        if os.path.isdir("/run/systemd/system"):
            run(["systemctl", "restart", "pdns-relay"])
            run(["systemctl", "is-active", "pdns-relay"])
            wait(lambda: listening(8400), "/healthz")
            body = urllib.request.urlopen("http://127.0.0.1:8400/healthz", timeout=5).read()
            check(body.strip(), "/healthz answers")
            run(["systemctl", "stop", "pdns-relay"])
        else:
            unit = open(unit_path).read()
            argv = unit_value(unit, "ExecStart").split()
            check(unit_value(unit, "User") == "pdns-relay", "the unit's User")
            cwd = unit_value(unit, "WorkingDirectory")
            os.chmod(work, 0o755)   # the relay's user reaches the socket
            path = os.path.join(work, "notify")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(path)
            os.chmod(path, 0o666)
            sock.settimeout(60)

            def as_user():
                os.setgroups([])
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)
                os.umask(0o077)
            relay = subprocess.Popen(argv, cwd=cwd, preexec_fn=as_user,
                                     env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                          "NOTIFY_SOCKET": path},
                                     stderr=open(os.path.join(work, "relay.log"), "w"))
            try:
                msg = sock.recv(4096).decode()
            except socket.timeout:
                relay.kill()
                sys.exit("FAILED: no READY=1\n" + open(os.path.join(work, "relay.log")).read())
            check(msg.startswith("READY=1"), "READY=1 first, got " + msg)
            body = urllib.request.urlopen("http://127.0.0.1:8400/healthz", timeout=5).read()
            check(body.strip(), "/healthz answers")
            relay.terminate()
            check(sock.recv(4096).decode().startswith("STOPPING=1"), "STOPPING=1")
            check(relay.wait(30) == 0, "exit 0 after SIGTERM")
            print("READY=1, /healthz, STOPPING=1, exit 0 as user pdns-relay")
    finally:
        if redis:
            redis.terminate()
            redis.wait(15)

    step("purge")
    run(["apt-get", "purge", "-y", "-qq", "pdns-relay"],
        env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    for f in ("/etc/pdns-relay/relay.json", "/etc/pdns-relay/keys", "/var/lib/pdns-relay",
              "/usr/sbin/pdns-relay"):
        check(not os.path.exists(f), f + " gone after purge")
    shutil.rmtree(work)
    print("package checks passed")


if __name__ == "__main__":
    main()
