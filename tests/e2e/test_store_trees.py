"""A store whose indexes are the pdnsrelay module's trees (store.index
"tree", the module loaded with the argument "trees"): it holds what a store
of sorted sets holds and answers every query the same; it comes back whole
from its RDB, its AOF (with and without the RDB preamble) and on replicas;
expiry removes members from its trees; and a relay that cannot write it so
writes nothing and says why."""
import json
import os
import random
import re
import subprocess
import time

import pytest

from conftest import BIN, MODULE, Redis, free_port, redis_version
from test_store import Api, csv_line, make_records, send_d4, store_relay
from test_store_module import differences, dump as module_dump, random_calls

HERE = os.path.dirname(__file__)


def tree_redis(workdir, extra=()):
    if not os.path.exists(MODULE):
        pytest.fail("no %s: make builds it" % MODULE)
    # DEBUG DIGEST from loopback (Redis 7 turns DEBUG off unless told)
    debug = ("--enable-debug-command", "local") if redis_version() >= (7, 0) else ()
    r = Redis(workdir, extra=tuple(extra) + debug +
              ("--loadmodule", os.path.abspath(MODULE), "trees"))
    r.start()
    return r


@pytest.fixture
def trees(workdir):
    r = tree_redis(workdir)
    yield r
    r.stop()


def dump(r):
    """Every key but the layout and the batch markers (see
    test_store_module.dump)."""
    return {k: v for k, v in module_dump(r).items()
            if k != b"st:layout" and not k.startswith(b"st:applied:")}


def lines_file(tmp_path):
    """gen_pdns.py's ~60 % new mix (long-tail names, CNAME chains), the
    query tests' records (a name with 260 addresses, IPv6, NS, MX) and an
    error line."""
    mix = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "..", "bench", "gen_pdns.py"),
                          "20000", "0.6"], capture_output=True, text=True, check=True).stdout
    f = tmp_path / "lines.csv"
    f.write_text(mix + "\n".join(csv_line(o) for o in make_records()) +
                 "\n1795930000.5||10.0.0.1||10.1.0.1||IN||gone.test.||A||NXDOMAIN||0||1\n")
    return f, 20001 + len(make_records())


def import_into(relay_factory, redis, f, n, **store):
    relay = store_relay(relay_factory, redis, ingest={"keep_errors": True},
                        store=dict({"batch": 300, "call_ms": 0}, **store))
    p = subprocess.run([BIN, "import", "-c", relay.config, str(f)], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "%d records stored" % n in p.stderr, p.stderr
    return relay


def query_paths(r):
    """Every query form over what the store holds: names, addresses, CIDR
    ranges, left- and right-hand wildcards, rdata names, error lines."""
    names = sorted({k.decode()[2:] for k in r.scan_iter(match="n:*", count=10000)})
    first = r.execute_command("PDNSRELAY.IXRANGE", "ix:ip", "-", "+", 400) \
        if r.type("ix:ip") == b"pdns-tree" else r.zrangebylex("ix:ip", "-", "+", 0, 400)
    ips = sorted({m.decode().split(" ")[0] for m in first})
    paths = ["/query/" + n for n in names[::97]]
    paths += ["/query/*." + ".".join(n.split(".")[-2:]) for n in names[::211]]
    paths += ["/query/" + n.split(".")[0] + ".*" for n in names[::307]]
    paths += ["/query/big.cdn.test", "/query/*.corp.test", "/query/*.test", "/query/www.*",
              "/query/10.1.1.0/24", "/query/10.0.0.0/8", "/query/2001:db8::/32",
              "/query/192.0.2.128/25", "/rdata/host0.corp.test", "/rdata/ns1.dns.test",
              "/rdata/mail.corp.test", "/errors/gone.test", "/dnsdb/v2/lookup/rrset/name/"
              "big.cdn.test", "/dnsdb/v2/lookup/rdata/ip/10.1.9.9"]
    for h in ips[::40]:  # "4<hex>": an address, and its /24
        if h.startswith("4"):
            a = ".".join(str(int(h[i:i + 2], 16)) for i in range(1, 9, 2))
            paths += ["/query/" + a, "/query/%s.0/24" % a.rsplit(".", 1)[0]]
    return paths


def answers(api, path):
    """Every page of path, small pages (cursors), in order."""
    if path.startswith("/dnsdb/"):
        st, _, body = api.get(path)
        assert st == 200, (path, st, body)
        return body.splitlines()
    got, _ = api.all_pages(path, 37)
    return [json.dumps(o, sort_keys=True) for o in got]


def test_a_store_of_trees_holds_and_answers_what_sorted_sets_do(redis_server, trees,
                                                               relay_factory, tmp_path):
    f, n = lines_file(tmp_path)
    zs = import_into(relay_factory, redis_server, f, n, module=False)
    tr = import_into(relay_factory, trees, f, n, index="tree")
    a, b = redis_server.client(), trees.client()
    assert a.get("st:layout") == b"shards 1 ip-name r-rel"
    assert b.get("st:layout") == b"shards 1 ip-name r-rel ix-tree"
    assert b.type("ix:ip") == b"pdns-tree" and b.type("ix:rb") == b"pdns-tree"
    assert a.type("ix:ip") == b"zset"
    da, db = dump(a), dump(b)
    assert len(da) > 10000 and not differences(da, db), differences(da, db)
    assert "cmdstat_zadd" not in b.info("commandstats")
    assert tr.metrics()["pdns_relay_store_index_trees"] == 1
    assert zs.metrics()["pdns_relay_store_index_trees"] == 0
    paths = query_paths(b)
    assert len(paths) > 150
    za, ta = Api(zs.http_port), Api(tr.http_port)
    for p in paths:
        got = answers(ta, p)
        assert got == answers(za, p), p
    assert len(answers(ta, "/query/big.cdn.test")) == 260
    # the trees take less memory than the sorted sets
    mem = [c.execute_command("MEMORY", "USAGE", "ix:ip") for c in (a, b)]
    assert mem[1] < 0.8 * mem[0], mem


def wait_rewritten(r):
    end = time.time() + 60
    while True:
        p = r.info("persistence")
        if not p["aof_rewrite_in_progress"] and not p["aof_rewrite_scheduled"]:
            return
        assert time.time() < end, p
        time.sleep(0.05)


def wait_synced(master, replica):
    """Until the replica has applied all its master has sent."""
    end = time.time() + 60
    while replica.info("replication").get("master_link_status") != "up" or \
            replica.info("replication")["slave_repl_offset"] != \
            master.info("replication")["master_repl_offset"]:
        assert time.time() < end, replica.info("replication")
        time.sleep(0.05)


def typed(r):
    """dump of every key (markers too), with each key's type."""
    return {k: (r.type(k), v) for k, v in module_dump(r).items()}


def test_calls_reach_replicas_and_the_aof_as_they_left_the_master(trees, workdir):
    """With layout "1t" a call reaches replicas and the AOF as itself, not
    as its writes: a replica and a restart from the AOF end with the
    master's keys, types and values, markers included, after hundreds of
    random calls among which calls sent again, cluster-shard calls, an
    entry whose key holds another type (BAD, nothing written) and a call
    refused after it wrote part of its entries (a new triple whose prefix
    index key holds a string, after the call's other entries)."""
    early = tree_redis(workdir, extra=("--replicaof", "127.0.0.1", str(trees.port)))
    try:
        r = trees.client()
        r.hset("n:h1.z1.test", "1 192.0.2.1", "garbage")
        rng = random.Random(5)
        refused = None
        for i, args in random_calls(rng, 300, 100):
            if i == 100:
                r.set(args[9], "a string")
            if i == 200:
                first = 9 + int(args[8])
                bad = args[first:first + 13]
                bad[1], bad[7] = "1 198.51.100.7", "f:broken"
                r.set("f:broken", "a string")
                args = args + bad
            try:
                out = r.execute_command("PDNSRELAY.INGEST", "1t", "1", args[0], *args[1:])
            except Exception as e:  # redis.ResponseError
                out = e
            if i == 100:
                assert out.startswith(b"BAD 0 "), out
            if i == 200:
                assert "a write was refused" in str(out), out
                refused = args[first]
        assert r.exists(refused), "the refused call wrote its first entry"
        want = typed(r)
        assert {t for t, _ in want.values()} >= {b"hash", b"pdns-tree", b"string"}
        wait_synced(r, early.client())
        got = typed(early.client())
        assert not differences(want, got), differences(want, got)
        # DEBUG DIGEST, as an operator checks a replica: trees count in it
        digest = r.execute_command("DEBUG", "DIGEST")
        assert early.client().execute_command("DEBUG", "DIGEST") == digest
        tree = next(k for k, (t, _) in want.items() if t == b"pdns-tree")
        d1 = r.execute_command("DEBUG", "DIGEST-VALUE", tree)
        assert d1 != [b"0" * 40], d1
        r.execute_command("PDNSRELAY.IXADD", tree, "zz-one-more")
        assert r.execute_command("DEBUG", "DIGEST-VALUE", tree) != d1
        r.execute_command("PDNSRELAY.IXREM", tree, "zz-one-more")
        assert r.execute_command("DEBUG", "DIGEST-VALUE", tree) == d1
        trees.stop()
        trees.start()
        got = typed(trees.client())
        assert not differences(want, got), differences(want, got)
        assert trees.client().execute_command("DEBUG", "DIGEST") == digest
    finally:
        early.stop()


def test_trees_come_back_from_aof_rdb_and_on_replicas(trees, relay_factory, tmp_path, workdir):
    """The index writes reach the AOF and replicas as PDNSRELAY.IXADD; an
    AOF rewrite saves the trees in its RDB preamble or, without it, as
    IXADDs; a replica that syncs whole loads them from an RDB."""
    early = tree_redis(workdir, extra=("--replicaof", "127.0.0.1", str(trees.port)))
    f, n = lines_file(tmp_path)
    import_into(relay_factory, trees, f, n, index="tree")
    r = trees.client()
    want = dump(r)
    assert len(want) > 10000

    def same_after_restart():
        trees.stop()
        trees.start()
        got = dump(trees.client())
        assert not differences(want, got), differences(want, got)
    same_after_restart()  # the AOF as written: HSETs, IXADDs
    r = trees.client()
    r.bgrewriteaof()
    wait_rewritten(r)
    same_after_restart()  # an RDB preamble
    r = trees.client()
    r.config_set("aof-use-rdb-preamble", "no")
    r.bgrewriteaof()
    wait_rewritten(r)
    same_after_restart()  # IXADDs a member
    late = tree_redis(workdir, extra=("--replicaof", "127.0.0.1", str(trees.port)))
    try:
        master = trees.client()
        for rep in (early, late):
            c = rep.client()
            wait_synced(master, c)
            got = dump(c)
            assert not differences(want, got), differences(want, got)
    finally:
        early.stop()
        late.stop()


def test_expiry_removes_members_from_the_trees(trees, relay_factory, tmp_path):
    now = int(time.time())
    old, fresh = now - 7200, now - 60
    recs = [("gone.exp.test", "A", "198.51.100.1", old),
            ("mixed.exp.test", "A", "198.51.100.2", old),
            ("mixed.exp.test", "A", "198.51.100.3", fresh),
            ("alias.exp.test", "CNAME", "gone.exp.test", old),
            ("only.gone.test", "A", "198.51.100.9", old)]
    f = tmp_path / "exp.ndjson"
    f.write_text("\n".join(json.dumps({"rrname": n, "rrtype": t, "rdata": d, "time_first": tl,
                                       "time_last": tl, "count": 1})
                           for n, t, d, tl in recs) + "\n")
    relay = store_relay(relay_factory, trees,
                        store={"index": "tree", "expire": {"A": 3600, "CNAME": 3600},
                               "sweep_interval": 1})
    subprocess.run([BIN, "import", "-c", relay.config, str(f)], check=True,
                   capture_output=True, timeout=60)
    r = trees.client()
    assert r.type("ix:ip") == b"pdns-tree"
    assert relay.wait_for(lambda: relay.metrics()["pdns_relay_store_expired_triples_total"] == 4,
                          30), relay.log_text()[-2000:]

    def members(k):
        return [m.decode() for m in r.execute_command("PDNSRELAY.IXRANGE", k, "-", "+")]
    assert [m.split(" ")[1] for m in members("ix:ip")] == ["mixed.exp.test"]
    # the names with nothing left leave their buckets; a bucket left empty
    # leaves ix:rb and is deleted, as a sorted set is
    assert members("r:test.exp") == [".mixed"]
    assert not r.exists("r:test.gone") and "test.gone" not in members("ix:rb")
    assert [k for k in r.scan_iter(match="d:*") if members(k)] == []
    api = Api(relay.http_port)
    got, _ = api.page("/query/*.exp.test")
    assert {(o["rrname"], o["rdata"]) for o in got} == {("mixed.exp.test", "198.51.100.3")}


def test_a_relay_that_cannot_write_trees_writes_nothing_and_says_why(relay_factory, workdir,
                                                                     tmp_path):
    """A store of trees on a Redis whose module was loaded without
    "trees" (or is absent): the relay keeps its records and says what to
    load; store.index "tree" without the module is a configuration error."""
    plain = Redis(workdir, extra=("--loadmodule", os.path.abspath(MODULE)))
    plain.start()
    try:
        relay = store_relay(relay_factory, plain, store={"index": "tree"})
        obs = make_records()[:50]
        send_d4(relay, obs)
        assert relay.wait_for(lambda: "nothing is written until" in relay.log_text(), 20), \
            relay.log_text()[-2000:]
        c = plain.client()
        assert c.get("st:layout") == b"shards 1 ip-name r-rel ix-tree"
        assert list(c.scan_iter(match="n:*")) == []
        assert relay.metrics()["pdns_relay_store_buffered_records"] > 0
    finally:
        plain.stop()
    bad = relay_factory(extra={"store": {"index": "tree", "module": False}})
    p = subprocess.run([BIN, "run", "-c", bad.config], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 1 and "store.index" in p.stderr and "module" in p.stderr, p.stderr


def test_an_unknown_module_argument_is_named(workdir):
    """A mistyped argument stops redis-server, its log says which."""
    d = os.path.join(workdir, "typo")
    os.makedirs(d)
    log = os.path.join(d, "redis.log")
    p = subprocess.run(["redis-server", "--port", str(free_port()), "--bind", "127.0.0.1",
                        "--save", "", "--dir", d, "--logfile", log,
                        "--loadmodule", os.path.abspath(MODULE), "tree"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "pdnsrelay: unknown argument 'tree'" in open(log).read()


def test_tree_commands_refuse_what_they_cannot_take(trees):
    r = trees.client()
    import redis
    r.set("s", "x")
    for cmd in (("PDNSRELAY.IXADD", "s", "m"), ("PDNSRELAY.IXRANGE", "s", "-", "+"),
                ("PDNSRELAY.IXREM", "s", "m"), ("PDNSRELAY.IXCARD", "s")):
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            r.execute_command(*cmd)
    with pytest.raises(redis.ResponseError, match="string range item"):
        r.execute_command("PDNSRELAY.IXRANGE", "k", "a", "+")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        r.execute_command("PDNSRELAY.IXRANGE", "k", "-", "+", "x")
    with pytest.raises(redis.ResponseError, match="wrong number"):
        r.execute_command("PDNSRELAY.IXADD", "k")
    assert r.execute_command("PDNSRELAY.IXADD", "k", "b", "a", "", "a") == 3
    assert r.execute_command("PDNSRELAY.IXRANGE", "k", "(", "+") == [b"a", b"b"]
    assert r.execute_command("PDNSRELAY.IXRANGE", "k", "[a", "[b", "1") == [b"a"]
    assert r.execute_command("PDNSRELAY.IXRANGE", "k", "-", "+", "0") == []
    assert r.execute_command("PDNSRELAY.IXRANGE", "nokey", "-", "+") == []
    # COPY makes a tree of its own; a large tree is unlinked by Redis's
    # lazy-free thread
    assert r.copy("k", "k2")
    assert r.execute_command("PDNSRELAY.IXADD", "k2", "c") == 1
    assert r.execute_command("PDNSRELAY.IXRANGE", "k2", "-", "+") == [b"", b"a", b"b", b"c"]
    assert r.execute_command("PDNSRELAY.IXCARD", "k") == 3
    r.execute_command("PDNSRELAY.IXADD", "big", *("m%05d" % i for i in range(20000)))
    freed = r.info("memory")["lazyfreed_objects"]
    assert r.unlink("big") == 1
    end = time.time() + 20  # counted by the lazy-free thread once it has freed it
    while r.info("memory")["lazyfreed_objects"] != freed + 1:
        assert time.time() < end, r.info("memory")
        time.sleep(0.02)
    assert r.execute_command("PDNSRELAY.IXREM", "k", "", "a", "b", "c") == 3
    assert not r.exists("k")
    assert r.execute_command("PDNSRELAY.IXCARD", "k") == 0


def index_trees(relay, *args):
    return subprocess.run([BIN, "index-trees", "-c", relay.config] + list(args),
                          capture_output=True, text=True, timeout=300)


def index_kinds(r):
    return {r.type(k) for p in ("f:*", "d:*", "r:*", "ix:*") for k in r.scan_iter(match=p,
                                                                                count=10000)}


def test_index_trees_moves_a_store_of_sorted_sets_into_trees(redis_server, trees, relay_factory,
                                                             tmp_path, workdir):
    """`pdns-relay index-trees` on a store of sorted sets: every index key
    becomes a tree of the same members, st:layout gets ix-tree, a replica
    follows, and queries answer as before, also on the way there (a store
    with both kinds: a relay of the sorted-set layout writing into keys
    already converted, more converted by hand); run again it finds nothing
    left; a relay started after it writes trees."""
    early = tree_redis(workdir, extra=("--replicaof", "127.0.0.1", str(trees.port)))
    try:
        f, n = lines_file(tmp_path)
        lines = f.read_text().splitlines(keepends=True)
        f1, f2 = tmp_path / "first.csv", tmp_path / "second.csv"
        f1.write_text("".join(lines[:12000]))
        f2.write_text("".join(lines[12000:]))
        ref = import_into(relay_factory, redis_server, f, n, module=False)
        import_into(relay_factory, trees, f1, 12000, module=True).stop()
        r = trees.client()
        assert r.get("st:layout") == b"shards 1 ip-name r-rel"
        assert index_kinds(r) == {b"zset"}
        some = [k for k in r.scan_iter(match="f:*", count=10000)][::2] + [b"ix:ip"]
        assert r.execute_command("PDNSRELAY.IXCONVERT", *some) == len(some)
        relay = import_into(relay_factory, trees, f2, n - 12000, module=True)
        assert index_kinds(r) == {b"zset", b"pdns-tree"}
        want = dump(redis_server.client())
        got = dump(r)
        assert not differences(want, got), differences(want, got)
        paths = query_paths(r)
        za, ta = Api(ref.http_port), Api(relay.http_port)

        def same_answers():
            for p in paths:
                assert answers(ta, p) == answers(za, p), p
        same_answers()  # both kinds in one store
        relay.stop()
        p = index_trees(relay)
        assert p.returncode == 0, p.stderr
        assert re.search(r"index-trees: \d+ index keys moved into trees \(1 shard\); "
                         r'st:layout "shards 1 ip-name r-rel ix-tree"', p.stdout), p.stdout
        assert int(p.stdout.split()[1]) > 1000
        assert index_kinds(r) == {b"pdns-tree"}
        got = dump(r)
        assert not differences(want, got), differences(want, got)
        wait_synced(r, early.client())
        assert not differences(typed(r), typed(early.client()))
        p = index_trees(relay)
        assert p.returncode == 0 and " 0 index keys moved" in p.stdout, (p.stdout, p.stderr)
        relay.start()
        assert relay.metrics()["pdns_relay_store_index_trees"] == 1
        ta = Api(relay.http_port)
        same_answers()
        send_d4(relay, make_records(seed=5))
        assert relay.wait_for(lambda: int(r.hget("st:info", "records")) >
                              int(redis_server.client().hget("st:info", "records")), 20)
        assert index_kinds(r) == {b"pdns-tree"}
    finally:
        early.stop()


def test_index_trees_says_what_it_cannot_do(redis_server, trees, relay_factory):
    """No store, no module with trees, a member of another score: a reason,
    exit status 1, the layout unchanged."""
    plain = store_relay(relay_factory, redis_server, store={"module": False})
    plain.stop()
    redis_server.client().delete("st:layout")
    p = index_trees(plain)
    assert p.returncode == 1 and "has no store (no st:layout" in p.stderr, p.stderr
    redis_server.client().set("st:layout", "shards 1 ip-name r-rel")
    redis_server.client().zadd("f:0001", {"www.example.test": 0})
    p = index_trees(plain)
    assert p.returncode == 1 and "load the pdnsrelay module with the argument trees" in p.stderr, \
        p.stderr
    r = trees.client()
    relay = store_relay(relay_factory, trees, store={"module": True})
    relay.stop()
    r.zadd("f:0000", {"a.test": 0})
    r.zadd("f:0001", {"b.test": 0, "c.test": 2})
    p = index_trees(relay)
    assert p.returncode == 1, p.stderr
    assert "key 'f:0001' has a member whose score is not 0 (1 converted before it)" in p.stderr
    assert r.type("f:0000") == b"pdns-tree" and r.type("f:0001") == b"zset"
    assert r.get("st:layout") == b"shards 1 ip-name r-rel"
    r.set("f:0002", "a string")
    r.zadd("f:0001", {"c.test": 0})
    p = index_trees(relay)
    assert p.returncode == 1 and "key 'f:0002' is neither a sorted set nor a tree" in p.stderr
    with pytest.raises(Exception, match="wrong number"):
        r.execute_command("PDNSRELAY.IXCONVERT")
