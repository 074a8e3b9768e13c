"""End-to-end fixtures: a real redis-server, a real pdns-relay process with
a TLS certificate and sensor keys made for the test, all on loopback and
on free ports, all torn down afterwards."""
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import pytest

BIN = os.environ.get("PDNS_RELAY_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "pdns-relay")
DATA = os.path.join(os.path.dirname(__file__), "..", "data")
# the store's optional Redis module (make builds it beside the relay)
MODULE = os.environ.get("PDNS_RELAY_MODULE") or os.path.join(os.path.dirname(BIN),
                                                             "pdnsrelay.so")

SENSORS = {
    "sensor-a": ("3f2b9c1e7a444d2e9b1f0c5a8e6d2f10", b"key-of-sensor-a"),
    "sensor-b": ("9c1d5e2f3a4b4c6d8e7f001122334455", b"key-of-sensor-b"),
    "sensor-c": ("0a0b0c0d0e0f40118899aabbccddeeff", b"key-of-sensor-c"),
}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a long wait that tests timing, not memory "
                            "(left out of the sanitizer run)")


SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak|Undefined)Sanitizer|runtime error: ")


_GIVEN_PORTS = set()
_PORT_RNG = random.Random(os.getpid())


def free_port():
    """A port free now and never handed out before in this run. Ports come
    from below the kernel's ephemeral range (32768 and up), so no outgoing
    connection takes one between this call and the server's bind, and the
    kernel cannot give the same one to two calls in a row (a relay whose D4
    and admin listeners got one port would not start). Under pytest-xdist
    each worker has a range of its own: 15000 + 4000 * worker, 4000 wide;
    a Redis Cluster node's bus (+10000) lands in 25000-32999, no one's."""
    w = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    lo = 15000 + 4000 * (int(w[2:]) if w[2:].isdigit() else 0)
    for _ in range(10000):
        p = _PORT_RNG.randrange(lo, lo + 4000)
        if p in _GIVEN_PORTS:
            continue
        _GIVEN_PORTS.add(p)
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", p))
            return p
        except OSError:  # something else holds it
            continue
    raise RuntimeError("no free port left in %d-%d" % (lo, lo + 3999))


def wait_port(port, proc=None, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d never opened" % port)


@pytest.fixture(scope="session")
def workdir():
    d = tempfile.mkdtemp(prefix="pdns-e2e-")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", os.path.join(d, "tls.key"), "-out",
                    os.path.join(d, "tls.crt"), "-days", "2", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    for name, (_, key) in SENSORS.items():
        p = os.path.join(d, name + ".key")
        with open(p, "wb") as f:
            f.write(key + b"\n")
        os.chmod(p, 0o600)
    # the relays' batch-signing key pair: relay.key, relay.pub
    subprocess.run([BIN, "keygen", "--out", os.path.join(d, "relay")], check=True,
                   capture_output=True)
    yield d
    if os.environ.get("PDNS_E2E_KEEP"):  # the relays' configs and logs, to read after
        print("\ne2e work directory kept: " + d)
    else:
        shutil.rmtree(d, ignore_errors=True)


class Redis:
    def __init__(self, workdir, extra=(), password=None):
        """password: the server wants it (requirepass) from the default user;
        ACL users come in extra ("--user", "NAME", "on", ">PASSWORD", ...)."""
        self.port = free_port()
        self.dir = tempfile.mkdtemp(dir=workdir, prefix="redis-")
        self.proc = None
        self.password = password
        self.extra = list(extra) + (["--requirepass", password] if password else [])
        # E2E_REDIS_MODULE=<pdnsrelay.so>: every test's Redis loads the
        # store's module, so that the whole suite stores through it
        # (docs/hacking.md)
        mod = os.environ.get("E2E_REDIS_MODULE")
        if mod and "--loadmodule" not in self.extra:
            self.extra += ["--loadmodule", os.path.abspath(mod)]

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", self.dir, "--save", "", "--appendonly", "yes"] + self.extra,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc)
        # the port opens before Redis has loaded its data (LOADING): ready
        # once it answers PING
        import redis
        end = time.time() + 30
        while True:
            try:
                if self.client().ping():
                    return
            except (redis.exceptions.BusyLoadingError, redis.exceptions.ConnectionError):
                if time.time() > end:
                    raise
            time.sleep(0.05)

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def client(self):
        import redis
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password)


@pytest.fixture
def redis_server(workdir):
    r = Redis(workdir)
    r.start()
    yield r
    r.stop()


@pytest.fixture
def module_redis(workdir):
    """A Redis with the pdnsrelay module (without trees)."""
    if not os.path.exists(MODULE):
        pytest.fail("no %s: make builds it" % MODULE)
    # MODULE UNLOAD, from loopback (Redis 7 turns MODULE off unless told)
    extra = ("--enable-module-command", "local") if redis_version() >= (7, 0) else ()
    r = Redis(workdir, extra=extra + ("--loadmodule", os.path.abspath(MODULE)))
    r.start()
    yield r
    r.stop()


def redis_version():
    """The (major, minor) of the redis-server first on PATH (Redis's, or
    Valkey's: 7 and later of either turn DEBUG off unless told)."""
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    m = re.search(r"v=(\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


@pytest.fixture
def debug_redis(workdir):
    """A redis-server that takes DEBUG commands (DEBUG SLEEP holds it):
    Redis 7 turns them off unless told; 6.2 has no such option."""
    r = Redis(workdir, extra=["--enable-debug-command", "local"]
              if redis_version() >= (7, 0) else [])
    r.start()
    yield r
    r.stop()


@contextlib.contextmanager
def held_busy(redis, secs=0.5):
    """While inside, redis (a debug_redis) is held by one DEBUG SLEEP of
    secs after another: every command waits up to secs."""
    done = threading.Event()

    def hold():
        c = redis.client()
        while not done.is_set():
            c.execute_command("DEBUG", "SLEEP", str(secs))
    t = threading.Thread(target=hold)
    t.start()
    try:
        yield
    finally:
        done.set()
        t.join()


class Relay:
    """A pdns-relay process with its own config in its own directory."""

    def __init__(self, workdir, redis=None, extra=None, sensors=("sensor-a", "sensor-b")):
        self.dir = tempfile.mkdtemp(dir=workdir, prefix="relay-")
        self.d4_port = free_port()
        self.http_port = free_port()
        self.admin_port = free_port()
        self.output = os.path.join(self.dir, "out.ndjson")
        cfg = {
            "relay_id": "e2e",
            "stats_interval": 0,
            "d4": {"listen": "127.0.0.1:%d" % self.d4_port,
                   "tls_cert": os.path.join(workdir, "tls.crt"),
                   "tls_key": os.path.join(workdir, "tls.key")},
            "http": {"listen": "127.0.0.1:%d" % self.http_port},
            "admin": {"listen": "127.0.0.1:%d" % self.admin_port},
            "ingest": {"output_file": self.output},
            "sensors": [{"uuid": SENSORS[n][0], "name": n,
                         "key_file": os.path.join(workdir, n + ".key")}
                        for n in sensors],
        }
        if redis is not None:
            cfg["redis"] = "redis://127.0.0.1:%d/0" % redis.port
        elif "store" not in (extra or {}):
            # no Redis for this relay: say so, rather than point the store at
            # whatever may listen on the default port
            cfg["store"] = {"enabled": False}
        cfg["signing_key"] = os.path.join(workdir, "relay.key")
        for k, v in (extra or {}).items():
            if isinstance(v, dict) and isinstance(cfg.get(k), dict):
                cfg[k].update(v)
            else:
                cfg[k] = v
        self.https = bool(cfg["http"].get("tls_cert"))
        self.config = os.path.join(self.dir, "relay.json")
        with open(self.config, "w") as f:
            json.dump(cfg, f, indent=2)
        self.log = os.path.join(self.dir, "relay.log")
        self.proc = None
        self.env = None  # the process's environment (None: the tests')

    def start(self, ready=True, timeout=30.0, standby=False):
        """Starts the relay; with ready, returns once GET /readyz says 200
        (listeners open, store link up), else once its ports are open; on
        standby (ha: another process holds the lease), at once."""
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen([BIN, "run", "-c", self.config],
                                     stdout=self.logf, stderr=self.logf, env=self.env)
        if standby:
            return self
        try:
            wait_port(self.http_port, self.proc, timeout)
            wait_port(self.d4_port, self.proc, timeout)
        except RuntimeError as e:  # it exited: say why
            raise RuntimeError("%s:\n%s" % (e, self.log_text()[-3000:])) from None
        if ready:
            self.wait_ready(timeout)
        return self

    def readyz(self):
        """GET /readyz: (status, body)."""
        ctx = None
        if self.https:
            import ssl
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        url = "%s://127.0.0.1:%d/readyz" % ("https" if self.https else "http",
                                            self.http_port)
        try:
            with urllib.request.urlopen(url, timeout=5, context=ctx) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def wait_ready(self, timeout=30.0):
        end = time.time() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("relay exited with %s:\n%s" % (
                    self.proc.returncode, self.log_text()[-2000:]))
            try:
                st, why = self.readyz()
            except OSError as e:  # a connection reset while it starts: ask again
                st, why = 0, str(e)
            if st == 200:
                return
            if time.time() > end:
                raise RuntimeError("relay not ready after %.0f s: %s" % (timeout, why))
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(15)
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        return rc

    def metrics(self):
        try:
            text = urllib.request.urlopen(
                "http://127.0.0.1:%d/metrics" % self.admin_port, timeout=5).read().decode()
        except OSError as e:  # say whether the relay is still there, and why not
            state = "running" if self.proc and self.proc.poll() is None else \
                "exited with %s" % (self.proc.returncode if self.proc else None)
            raise OSError("GET /metrics on the admin port %d: %s (relay %s); its log ends:\n%s"
                          % (self.admin_port, e, state, self.log_text()[-3000:])) from e
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def stats(self):
        return json.loads(urllib.request.urlopen(
            "http://127.0.0.1:%d/stats" % self.admin_port, timeout=5).read())

    def sensor_records(self, name):
        return self.metrics().get('pdns_relay_sensor_records_total{sensor="%s"}' % name, 0)

    def wait_for(self, pred, timeout=10.0):
        end = time.time() + timeout
        while time.time() < end:
            if pred():
                return True
            time.sleep(0.05)
        return pred()

    def output_lines(self, torn_ok=0):
        """The COF records written so far. A SIGKILL can tear the line being
        written; torn_ok says how many such lines a test allows."""
        if not os.path.exists(self.output):
            return []
        out, torn = [], 0
        with open(self.output) as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    out.append(json.loads(line))
                except ValueError:
                    torn += 1
        assert torn <= torn_ok, "%d unparseable lines in the output" % torn
        return out

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()


@pytest.fixture
def relay_factory(workdir):
    made = []

    def make(**kw):
        r = Relay(workdir, **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop(signal.SIGKILL)
    # a sanitizer's report ends the relay; whether or not the test noticed,
    # the run fails with the report
    for r in made:
        if os.path.exists(r.log):
            text = r.log_text()
            m = SANITIZER_REPORT.search(text)
            if m:
                pytest.fail("%s: sanitizer report in the relay's log:\n%s"
                            % (r.log, text[max(0, m.start() - 500):m.start() + 6000]))


@pytest.fixture
def relay(relay_factory):
    return relay_factory().start()


def cluster_port():
    """A free port whose cluster bus port (+10000) is free too."""
    import socket
    while True:
        p = free_port()
        if p + 10000 > 65535:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", p + 10000))
            return p
        except OSError:
            continue


class Cluster:
    """A Redis Cluster on loopback: n redis-server processes (3 masters and
    3 replicas by default) made one by `redis-cli --cluster create`, a node
    timeout of 1 s and replicas that take over whatever their data's age.
    Replicas sync at once (no diskless delay), and a master pings them every
    second: CLUSTER SLOTS lists a replica only once its offset has moved."""

    def __init__(self, workdir, n=6, module=None, module_args=()):
        """module: every node loads it (the pdnsrelay module, with
        module_args), and takes MODULE LOAD/UNLOAD from loopback."""
        self.dir = os.path.join(workdir, "cluster")
        os.makedirs(self.dir, exist_ok=True)
        self.n = n
        self.module = module or os.environ.get("E2E_REDIS_MODULE")
        self.module_args = list(module_args)
        self.ports = self.pick_ports()
        self.procs = {}

    def pick_ports(self):
        """n ports whose client and bus ports (+10000) are all distinct: a
        port chosen later may otherwise be an earlier node's bus port, free
        when it was chosen, and one of the two nodes cannot listen."""
        ports, taken = [], set()
        while len(ports) < self.n:
            p = cluster_port()
            if p in taken or p + 10000 in taken:
                continue
            ports.append(p)
            taken.update((p, p + 10000))
        return ports

    def start_node(self, port):
        d = os.path.join(self.dir, str(port))
        os.makedirs(d, exist_ok=True)
        self.procs[port] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", "1000", "--cluster-replica-validity-factor", "0",
             "--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0",
             "--repl-ping-replica-period", "1",
             "--dir", d, "--logfile", os.path.join(d, "redis.log")] +
            (["--loadmodule", os.path.abspath(self.module)] + self.module_args
             if self.module else []) +
            (["--enable-module-command", "local"]
             if self.module and redis_version() >= (7, 0) else []),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(port, self.procs[port])

    def start(self, attempts=3):
        """Starts the nodes and makes them one cluster. If that fails (a
        port taken meanwhile by another process, or a fresh node that
        already knows another node when `--cluster create` asks), once more
        on new ports, with each node's view and log printed."""
        for attempt in range(attempts):
            for p in self.ports:
                self.start_node(p)
            create = subprocess.run(["redis-cli", "--cluster", "create"] +
                                    ["127.0.0.1:%d" % p for p in self.ports] +
                                    ["--cluster-replicas", "1" if self.n >= 6 else "0",
                                     "--cluster-yes"],
                                    capture_output=True, timeout=60)
            try:
                assert create.returncode == 0, create.stdout.decode(errors="replace")
                self.wait_ok()
                return
            except AssertionError as e:
                if attempt == attempts - 1:
                    raise
                print("cluster attempt %d failed: %s" % (attempt + 1, e))
                self.print_nodes()
                self.stop()
                self.ports = self.pick_ports()

    def print_nodes(self):
        """Each node's CLUSTER NODES and the end of its log."""
        for p in self.ports:
            try:
                print("node %d knows:\n%s" % (p, self.client(p).execute_command(
                    "CLUSTER NODES").decode(errors="replace")))
            except Exception as e:  # noqa: BLE001 (diagnostics only)
                print("node %d: %s" % (p, e))
            with open(os.path.join(self.dir, str(p), "redis.log"), errors="replace") as f:
                print("node %d log:\n%s" % (p, "".join(f.readlines()[-15:])))

    def client(self, port):
        import redis
        return redis.Redis(port=port, socket_timeout=5)

    def alive(self):
        return [p for p in self.ports if self.procs[p].poll() is None]

    def wait_ok(self, timeout=60):
        """Until every live node says cluster_state:ok and every slot has a
        live master."""
        import redis
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                ok = all(self.client(p).cluster("info")["cluster_state"] == "ok"
                         for p in self.alive())
                live = self.alive()
                covered = sum(hi - lo + 1 for lo, hi, port in self.slots() if port in live)
                if ok and covered == 16384 and self.replicas_in_sync():
                    return
            except (redis.RedisError, OSError, TypeError):
                pass
            time.sleep(0.2)
        raise AssertionError("the cluster did not settle")

    def replicas_in_sync(self):
        """Every live replica has its master's data (its first sync done):
        until then a master that dies takes its writes with it."""
        for p in self.alive():
            rep = self.client(p).info("replication")
            if rep["role"] == "slave" and (rep["master_link_status"] != "up" or
                                           rep.get("master_sync_in_progress")):
                return False
            # and, while every node lives, every node's map lists them (what
            # a client reads)
            if self.n > 3 and len(self.alive()) == self.n and any(len(r) < 4 for r in
                                  self.client(p).execute_command("CLUSTER SLOTS")):
                return False
        return True

    def slots(self):
        """[(lo, hi, master port)] as a live node sees it."""
        import redis
        for p in self.alive():
            try:
                raw = self.client(p).execute_command("CLUSTER SLOTS")
                return [(r[0], r[1], int(r[2][1])) for r in raw]
            except (redis.RedisError, OSError):
                continue
        return []

    def master_of(self, slot):
        for lo, hi, port in self.slots():
            if lo <= slot <= hi and port in self.alive():
                return port
        return None

    def masters(self):
        """The ports of the masters that serve slots, as a live node sees it."""
        return sorted({port for lo, hi, port in self.slots()})

    def node_id(self, port):
        return self.client(port).execute_command("CLUSTER MYID").decode()

    def url(self):
        return "redis+cluster://127.0.0.1:%d" % self.ports[0]

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()


def started_cluster(workdir, module=None, module_args=()):
    c = Cluster(workdir, module=module, module_args=module_args)
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture
def cluster(workdir):
    """A started Cluster (3 masters, 3 replicas), stopped after the test."""
    yield from started_cluster(workdir)


@pytest.fixture
def module_cluster(workdir):
    """The same, every node loading the pdnsrelay module."""
    if not os.path.exists(MODULE):
        pytest.fail("no %s: make builds it" % MODULE)
    yield from started_cluster(workdir, MODULE)


@pytest.fixture
def tree_cluster(workdir):
    """The same, every node loading the module with its index type
    (the argument trees)."""
    if not os.path.exists(MODULE):
        pytest.fail("no %s: make builds it" % MODULE)
    yield from started_cluster(workdir, MODULE, ("trees",))
