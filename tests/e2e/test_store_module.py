"""The optional Redis module (relay/store/module/pdnsrelay.c): PDNSRELAY.INGEST
writes exactly what the store's script writes, the relay uses it when Redis
has it and the script when not, and its writes reach the AOF (and replicas)
as plain commands, so a server without the module can load them."""
import os
import random
import re
import shutil
import subprocess
import time

import pytest

from conftest import BIN, MODULE, Redis
from test_store import (Api, aggregate, as_set, expect, make_records, send_d4, store_relay,
                        wait_stored)

HERE = os.path.dirname(__file__)
SCRIPT = open(os.path.join(HERE, "..", "..", "relay", "store", "lua",
                           "store_ingest.lua"), "rb").read()


def dump(r, skip=()):
    """Every key of the server: its type and whole value (an index key
    that is the module's tree as the sorted set of score 0 it stands
    for)."""
    out = {}
    for k in r.scan_iter(count=10000):
        if k in skip:
            continue
        t = r.type(k)
        if t == b"hash":
            out[k] = sorted(r.hgetall(k).items())
        elif t == b"zset":
            out[k] = r.zrange(k, 0, -1, withscores=True)
        elif t == b"pdns-tree":
            ms = r.execute_command("PDNSRELAY.IXRANGE", k, "-", "+")
            assert r.execute_command("PDNSRELAY.IXCARD", k) == len(ms)
            out[k] = [(m, 0.0) for m in ms]
        elif t == b"string":
            out[k] = r.get(k)
        else:
            out[k] = t
    return out


def differences(a, b):
    keys = sorted(set(a) | set(b))
    return [(k, a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)][:5]


def random_call(rng, boot, seq, unit_ids="", cluster=False):
    """The arguments of one store call as the relay composes them
    (store_ingest.lua's header): entries drawn from small pools, so that
    triples, names and buckets repeat within a call and across calls,
    several sensors see one triple, and error lines and bailiwicks come
    and go. cluster: as a cluster's shard takes it: every key after the
    shard's prefix, every key asked first (EXISTS), and the address index
    members passed apart (those of the shard's addresses)."""
    P = "{s3}" if cluster else ""
    entries, members = [], []
    for _ in range(rng.randint(1, 40)):
        name = "h%d.z%d.test" % (rng.randint(0, 30), rng.randint(0, 4))
        rev = ".".join(reversed(name.split(".")))
        if rng.random() < 0.1:  # an error line: e:<name>, no indexes
            entries += [P + "e:" + name, "1 %d" % rng.choice((2, 3)), "", "", "", name, rev,
                        "", "", "", "", "", ""]
        else:
            rrtype, rdata = rng.choice([(1, "192.0.2.%d" % rng.randint(0, 9)),
                                        (28, "2001:db8::%d" % rng.randint(0, 9)),
                                        (5, "c%d.test" % rng.randint(0, 5)),
                                        (16, "txt %d" % rng.randint(0, 3))])
            if rrtype in (1, 28):
                ixk, ixm = P + "ix:ip", "%s%08x %s" % ("4" if rrtype == 1 else "6",
                                                       rng.randint(0, 9), name)
                if cluster:
                    members.append(ixm)
                    ixk, ixm = "", ""
            elif rrtype == 5:
                ixk, ixm = P + "d:%d" % rng.randint(0, 3), "%s %d %s" % (rdata, rrtype, name)
            else:
                ixk, ixm = "", ""
            zone = ".".join(name.split(".")[-2:])
            entries += [P + "n:" + name, "%d %s" % (rrtype, rdata), ""]
            entries += ["", "", name, rev, P + "f:%d" % rng.randint(0, 7), P + "r:" + zone, zone,
                        ixk, ixm, rng.choice(("", "", "z0.test", "test"))]
        tf = rng.randint(1700000000, 1700001000)
        cnt = rng.choice((1, 2, 5, 9007199254740990))
        e = entries[-13:]
        e[2] = "%d %d %d" % (tf, tf + rng.randint(0, 500), cnt)
        e[3] = rng.choice(("s-a", "s-b", "s-c", "import"))
        e[4] = str(rng.randint(1, 4))
        entries[-13:] = e
    umark = P + "st:unit:q" if unit_ids else ""
    return [P + "st:applied:x", P + "st:applied:x", boot, str(seq), umark, unit_ids, P,
            "1" if cluster else "0", str(len(members))] + members + entries


def random_calls(rng, count, bad_at):
    """count calls: mostly new ones (some with unit ids, boot ids that
    change, a third as a cluster's shard takes them), now and then one
    sent again; call bad_at is always new and for one server, for the
    caller to break (its first entry's key, args[9], holding another
    type). Yields (i, args)."""
    seq, sent = 0, []
    for i in range(count):
        roll = rng.random()
        if roll < 0.05 and sent and i != bad_at:
            args = rng.choice(sent)  # sent again: its marker says applied
        else:
            seq += 1
            ids = " ".join("1700-%d" % rng.randint(0, 60) for _ in range(rng.randint(1, 3))) \
                if roll < 0.3 else ""
            args = random_call(rng, rng.choice(("boot1", "boot2")), seq, ids,
                               i != bad_at and rng.random() < 0.3)
            sent.append(args)
        yield i, args


def test_module_and_script_write_the_same_store(redis_server, module_redis):
    """Hundreds of random calls, each sent to the script on one server and
    to the module on the other: the same reply every time, and in the end
    the same keys with the same values (markers and all). Among them calls
    sent again (the marker: nothing applied), unit ids seen before, an
    entry whose key holds a string (BAD, nothing written), values an older
    relay wrote that the script cannot read, and counts at 2^53 - 1."""
    a, b = redis_server.client(), module_redis.client()
    rng = random.Random(2026)
    for r in (a, b):  # what an older relay left: an unreadable value, a count past 2^53
        r.hset("n:h1.z1.test", "1 192.0.2.1", "garbage")
        r.hset("n:h2.z2.test", "1 192.0.2.2", "1700000000 1700000001 -5 |1|")
    for i, args in random_calls(rng, 400, 200):
        if i == 200:  # a name's key holds another type: the call names the entry
            for r in (a, b):
                r.set(args[9], "a string")
        ra = a.eval(SCRIPT, 1, args[0], *args[1:])
        rb = b.execute_command("PDNSRELAY.INGEST", "1", "1", args[0], *args[1:])
        assert ra == rb, (i, ra, rb)
        if i == 200:
            assert ra.startswith(b"BAD 0 WRONGTYPE"), ra
            for r in (a, b):
                r.delete(args[9])
        if i % 50 == 0:
            assert not differences(dump(a), dump(b)), i
    da, db = dump(a), dump(b)
    assert not differences(da, db), differences(da, db)
    assert len(da) > 50 and b"st:unit:q" in da and any(k.startswith(b"e:") for k in da)
    assert b"{s3}st:unit:q" in da and b"{s3}ix:ip" in da and b"{s3}st:info" in da
    # what the module stores answers as the script's store does
    info = b.hgetall("st:info")
    assert int(info[b"records"]) > 1000 and int(info[b"triples"]) > 100, info


def test_a_triple_many_sensors_saw(redis_server, module_redis):
    """A triple's value names every sensor that saw it: seen by 1,500
    sensors (a large network and a popular name) it is over 6 KB, and the
    module keeps it as the script does, call after call."""
    a, b = redis_server.client(), module_redis.client()
    for call in range(3):
        entries = []
        for k in range(500):
            entries += ["n:popular.test", "1 192.0.2.1", "%d %d 1" % (1700000000 + call,
                                                                     1700000100 + call),
                        "sensor-%04d" % (call * 500 + k), "1", "popular.test", "test.popular",
                        "f:1", "r:popular.test", "popular.test", "ix:ip",
                        "4c0000201 popular.test", ""]
        args = ["st:applied:x", "st:applied:x", "boot", str(call + 1), "", "", "", "0", "0"]
        args += entries
        ra = a.eval(SCRIPT, 1, args[0], *args[1:])
        rb = b.execute_command("PDNSRELAY.INGEST", "1", "1", args[0], *args[1:])
        assert ra == rb == 500, (ra, rb)
    value = b.hget("n:popular.test", "1 192.0.2.1")
    assert len(value) > 6000 and value.count(b"|") == 1501, value[:200]
    assert not differences(dump(a), dump(b)), differences(dump(a), dump(b))


def test_a_malformed_entry_writes_nothing(redis_server, module_redis):
    """A call whose entry has times and count that are not three numbers,
    or a record count that is not one (the relay never builds one; a
    hand-made call can), is refused before anything is written, as an
    entry whose key holds another type is: "BAD <entry> <reason>" from
    the script and the module alike, the store as it was (the entries
    before it included), and the relay would set that entry aside and
    send the rest again."""
    a, b = redis_server.client(), module_redis.client()

    def entry(name, head="1700000000 1700000100 1", nrec="1"):
        return ["n:" + name, "1 192.0.2.1", head, "s-a", nrec, name,
                ".".join(reversed(name.split("."))), "f:1", "r:" + name, name, "ix:ip",
                "4c0000201 " + name, ""]

    def call(seq, *entries):
        args = ["st:applied:x", "st:applied:x", "boot", str(seq), "", "", "", "0", "0"]
        for e in entries:
            args += e
        ra = a.eval(SCRIPT, 1, args[0], *args[1:])
        rb = b.execute_command("PDNSRELAY.INGEST", "1", "1", args[0], *args[1:])
        assert ra == rb, (ra, rb)
        return ra

    assert call(1, entry("old.test")) == 1
    before = dump(a)
    assert not differences(before, dump(b))
    for seq, (head, nrec) in enumerate([("1700000000 x 1", "1"), ("1700000000 1700000100", "1"),
                                       ("1700000000  1700000100 1", "1"),
                                       ("-1 1700000100 1", "1"),
                                       ("1700000000 1700000100 1 ", "1"),
                                       ("1700000000 1700000100 " + "9" * 20, "1"),
                                       ("1700000000 1700000100 1", "many"),
                                       ("1700000000 1700000100 1", "")], 2):
        for name in ("old.test", "new.test"):  # merged into a triple, a new one
            out = call(seq, entry("first.test"), entry(name, head, nrec), entry("last.test"))
            assert out.startswith(b"BAD 1 "), (head, nrec, out)
            assert b"not three numbers" in out or b"record count" in out, out
            assert dump(a) == before and dump(b) == before, (head, nrec, name)
    assert call(20, entry("first.test"), entry("old.test", "1699999999 1700000200 2")) == 2
    assert a.hget("n:old.test", "1 192.0.2.1") == b"1699999999 1700000200 3 |1|"
    # the largest time a record can carry (an int64) is stored, not refused
    assert call(21, entry("far.test", "9223372036854775807 9223372036854775807 1")) == 1
    assert not differences(dump(a), dump(b))


@pytest.mark.slow
def test_module_under_valgrind(workdir):
    """The relay's sanitizers cannot see into the module (redis-server is
    not built with them): the same random calls, the module loaded into a
    redis-server run by valgrind's memcheck: no invalid read or write, no
    use of an uninitialised value, nothing leaked. Loaded with its index
    type (trees): half the calls make trees, which are then queried
    (random pages, PDNSRELAY.QUERY beside the script), read, pruned,
    saved (RDB), copied and unlinked (freed by Redis's lazy-free thread)
    there too."""
    if not shutil.which("valgrind"):
        pytest.fail("valgrind is missing (apt-get install valgrind)")
    srv = Redis(workdir)
    log = os.path.join(srv.dir, "valgrind.log")
    proc = subprocess.Popen(["valgrind", "--leak-check=full", "--show-leak-kinds=definite",
                             "--errors-for-leak-kinds=definite", "--log-file=" + log,
                             "redis-server", "--port", str(srv.port), "--bind", "127.0.0.1",
                             "--dir", srv.dir, "--save", "", "--loadmodule",
                             os.path.abspath(MODULE), "trees"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    r = srv.client()
    import redis
    end = time.time() + 120
    while True:
        try:
            r.ping()
            break
        except redis.exceptions.ConnectionError:
            assert proc.poll() is None and time.time() < end, open(log).read()[-2000:]
            time.sleep(0.2)
    try:
        rng = random.Random(7)
        r.hset("n:h1.z1.test", "1 192.0.2.1", "garbage")
        for i, args in random_calls(rng, 150, 75):
            if i == 75:
                r.set(args[9], "a string")
            out = r.execute_command("PDNSRELAY.INGEST", "1t" if i % 2 else "1", "1", args[0],
                                    *args[1:])
            if i == 75:
                assert out.startswith(b"BAD 0 "), out
                r.delete(args[9])
        assert int(r.hget("st:info", "triples")) > 100
        # query pages by the module, each compared with the script's
        from test_store_query_module import compare_pages
        compared, _ = compare_pages(r, random.Random(3), 400)
        assert compared >= 400
        # sweep steps by the module, each compared with the script's
        for expiry, match in ((",1=0,28=0,5=0,16=0,", ""), (",1=300,", "{s*}")):
            walk = sweep_walk(r, True, 1700001000, expiry, match, 7)
            assert walk == sweep_walk(r, False, 1700001000, expiry, match, 7)
            assert len(walk) > 3
        trees = [k for k in r.scan_iter(count=1000) if r.type(k) == b"pdns-tree"]
        assert len(trees) > 10
        for k in trees:
            ms = r.execute_command("PDNSRELAY.IXRANGE", k, "-", "+")
            assert r.execute_command("PDNSRELAY.IXRANGE", k, "(" + ms[0].decode(), "+", 3) == \
                ms[1:4]
            r.execute_command("PDNSRELAY.IXREM", k, *ms[::2])
        # (without LZF: valgrind reports its reads of uninitialised bytes,
        # Redis's own, as Redis's test suite suppresses them)
        r.config_set("rdbcompression", "no")
        r.save()
        r.copy(trees[0], "copied")
        r.execute_command("PDNSRELAY.IXADD", "big", *("m%04d" % i for i in range(500)))
        r.unlink("big")  # freed by the lazy-free thread
        r.delete("copied")
        # a sorted set into a tree; one whose score is not 0 refused whole
        r.zadd("zs", {"m%04d" % i: 0 for i in range(300)})
        r.zadd("zbad", {"a": 0, "b": 1})
        with pytest.raises(redis.ResponseError, match="score is not 0"):
            r.execute_command("PDNSRELAY.IXCONVERT", "zs", "nokey", "zbad")
        assert r.type("zs") == b"pdns-tree" and r.type("zbad") == b"zset"
        assert r.execute_command("PDNSRELAY.IXCARD", "zs") == 300
        try:
            r.shutdown(nosave=True)
        except redis.exceptions.ConnectionError:
            pass  # the connection closes as Redis exits
        assert proc.wait(120) == 0, open(log).read()[-4000:]
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(60)
    text = open(log).read()
    assert "ERROR SUMMARY: 0 errors" in text, text[-4000:]
    lost = re.search(r"definitely lost: ([\d,]+) bytes", text)
    assert lost is None or lost.group(1) == "0", text[-4000:]


def test_module_refuses_what_it_cannot_take(module_redis):
    b = module_redis.client()
    import redis
    with pytest.raises(redis.ResponseError, match="unknown argument layout"):
        b.execute_command("PDNSRELAY.INGEST", "2", "1", "m", *["x"] * 8)
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        b.execute_command("PDNSRELAY.INGEST", "1", "1", "m")
    assert b.dbsize() == 0


def answered(r, command, args):
    """Sends command with args: a reply or an error is fine, a redis-server
    that died on them is not."""
    import redis
    try:
        r.execute_command(command, *args)
    except redis.ResponseError:
        pass
    except redis.ConnectionError:
        raise AssertionError("redis-server died on %s %r" % (command, args))


def test_arguments_the_relay_never_sends_never_crash_redis(module_redis):
    """The module runs inside the operator's redis-server: whatever a
    client sends it (a member count of 40 digits, a key prefix longer than
    any key, values that are no numbers, keys holding other types, random
    bytes, any number of arguments) gets a reply, and Redis lives on."""
    r = module_redis.client()
    rng = random.Random(7)
    pool = ["", "0", "1", "-1", "13", "9999999999", "x", "n:a", "f:1", "r:a", "ix:ip", "d:1",
            "1 2 3", "-5 -6 -7", "1700000000 1700000001 5", "a b", " ", "|1|", "{s1}",
            "st:info", "st:sid", "4c0000201 a", "1 192.0.2.1", "e:a", "\x00", "z" * 300,
            "9" * 40, "1e308", "-" + "9" * 30]

    def val():
        if rng.random() < 0.85:
            return rng.choice(pool)
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 20)))

    def send(args):
        answered(r, "PDNSRELAY.INGEST", args)
    # the shapes that once crashed it: a member count past any argument
    # count, and a shard prefix too long for a key
    send(["1", "1", "m", "m", "b", "1", "", "", "", "0", "9" * 40])
    send(["1", "1", "m", "m", "b", "1", "", "", "z" * 300, "0", "0"] + random_call(
        random.Random(1), "b", 1)[9:22])
    for i in range(3000):
        n = rng.choice([rng.randint(0, 14), 12 + 13 * rng.randint(0, 4) + rng.randint(0, 3)])
        args = [val() for _ in range(n)]
        if n >= 12 and rng.random() < 0.7:
            args[0], args[1] = "1", "1"
            args[10] = rng.choice(["0", "0", "1", "2", str(n), "-3", "9" * 40])
        if rng.random() < 0.2:  # a key holding another type
            k = val()
            r.delete(k)
            rng.choice([lambda: r.set(k, "v"), lambda: r.lpush(k, "v"),
                        lambda: r.zadd(k, {"m": 1}), lambda: r.hset(k, "f", "v")])()
        send(args)
    # and the sweep's step: any arguments, keys of any type under n: and e:
    for k in ("n:a", "e:a", "n:", "{s1}n:b"):
        r.delete(k)
        rng.choice([lambda: r.set(k, "v"), lambda: r.lpush(k, "v"),
                    lambda: r.zadd(k, {"m": 1}), lambda: r.hset(k, "1 x", val())])()
    for i in range(1000):
        args = [val() for _ in range(rng.choice((0, 1, 5, 6, 6, 6, 7)))]
        if len(args) == 6 and rng.random() < 0.5:
            args[1], args[2] = "0", rng.choice(["1", "200", "0", "-1", "9" * 40])
        answered(r, "PDNSRELAY.SWEEP", args)
    assert r.ping()


SWEEP_SCRIPT = open(os.path.join(HERE, "..", "..", "relay", "store", "lua",
                                 "store_sweep.lua"), "rb").read()


def sweep_walk(r, native, now, expiry, match, count):
    """Every step of one walk of the sweep over r: the replies, in order."""
    cursor, replies = "0", []
    while True:
        args = ["st:info", cursor, count, now, expiry, match]
        out = r.execute_command("PDNSRELAY.SWEEP", *args) if native else \
            r.eval(SWEEP_SCRIPT, 1, *args)
        replies.append(out)
        cursor = out[0].decode()
        if cursor == "0" or len(replies) > 10000:
            return replies


def test_the_module_sweeps_as_the_script(module_redis):
    """PDNSRELAY.SWEEP is a step of the expiry sweep's script in C: over a
    store the random calls made (one server's keys and a shard's), beside
    keys under n: and e: the relay never writes (a string, a list, hashes
    whose fields or values are not of its form), every step of a walk gives
    the script's reply, for many expiry tables, times and step sizes, and
    for either match prefix."""
    r = module_redis.client()
    rng = random.Random(11)
    for i, args in random_calls(rng, 120, -1):
        r.execute_command("PDNSRELAY.INGEST", "1", "1", args[0], *args[1:])
    r.set("n:a-string.test", "1700000000 1700000001 1")
    r.rpush("e:a-list.test", "x")
    r.hset("n:odd.test", mapping={"not a field": "1700000000 1700000001 1", "1 x": "bad",
                                  "01 lead.test": "1700000000 1700000001 1",
                                  "1": "1700000000 1700000002 3 more",
                                  "28 z": "9 99999999999999999999 1", "5 c": "7 "})
    r.hset("{s3}n:odd.test", "16 t", "1700000000 1700000003 1")
    found = 0
    for k in range(60):
        expiry = "," + ",".join("%s=%d" % (t, rng.choice((0, 60, 300, 600, 900)))
                                for t in rng.sample(["1", "28", "5", "16", "01", "2"],
                                                    rng.randint(1, 5))) + ","
        now = rng.randint(1700000000, 1700002000)
        match, count = rng.choice(("", "{s*}")), rng.choice((1, 7, 200))
        a = sweep_walk(r, False, now, expiry, match, count)
        b = sweep_walk(r, True, now, expiry, match, count)
        assert b == a, (expiry, now, match, count)
        found += sum((len(x) - 2) // 3 for x in a)
    assert found > 1000  # the walks found expired triples, not only none
    # what the relay never sends: an error, and Redis lives on
    import redis
    for bad in (["k", "nocursor", "10", "1", ",1=1,", ""], ["k", "0", "10", "1", ",1=1,", "x" * 100],
                ["k", "0", "-1", "1", ",1=1,", ""], ["k", "0"]):
        with pytest.raises(redis.ResponseError):
            r.execute_command("PDNSRELAY.SWEEP", *bad)
    assert r.ping()


def test_cluster_status_says_whether_redis_has_the_module(redis_server, module_redis,
                                                          relay_factory, workdir):
    """What an operator asks first when pdns_relay_store_module stays 0,
    or a store of trees waits: whether the store's Redis has the module,
    which of its commands, and whether it was loaded with trees."""
    trees = Redis(workdir, extra=("--loadmodule", os.path.abspath(MODULE), "trees"))
    trees.start()
    without = "loaded: PDNSRELAY.INGEST, PDNSRELAY.QUERY, PDNSRELAY.SWEEP, without trees " \
              "(store.index \"tree\" needs the argument trees)"
    plain = without if os.environ.get("E2E_REDIS_MODULE") else "absent"
    try:
        for r, said in ((module_redis, without), (redis_server, plain),
                        (trees, "loaded: PDNSRELAY.INGEST, PDNSRELAY.QUERY, PDNSRELAY.SWEEP, "
                                "trees")):
            relay = relay_factory(redis=r)
            st = subprocess.run([BIN, "cluster-status", "-c", relay.config],
                                capture_output=True, text=True, timeout=30)
            assert st.returncode == 0, st.stdout + st.stderr
            assert "store's Redis: pdnsrelay module %s\n" % said in st.stdout, st.stdout
    finally:
        trees.stop()


def test_import_through_the_module_equals_the_script(redis_server, module_redis,
                                                      relay_factory, tmp_path):
    """The relay's own calls: the same lines imported by the relay into a
    server with the module (it takes every batch but the first few, sent
    before the relay has asked) and into one without give the same store."""
    lines = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "..", "bench", "gen_pdns.py"),
                            "20000", "0.6"], capture_output=True, text=True, check=True).stdout
    f = tmp_path / "mix.csv"
    f.write_text(lines + "1795930000.5||10.0.0.1||10.1.0.1||IN||gone.test.||A||"
                 "NXDOMAIN||0||1\n")
    stores = []
    for r in (redis_server, module_redis):
        # store.module false on the plain server too: it may have the
        # module (E2E_REDIS_MODULE)
        relay = relay_factory(redis=r, extra={"mixer": {"enabled": False},
                                              "ingest": {"keep_errors": True},
                                              "store": {"batch": 300, "call_ms": 0,
                                                        "module": r is module_redis}})
        p = subprocess.run([BIN, "import", "-c", relay.config, str(f)], capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        assert "20001 records stored" in p.stderr, p.stderr
        calls = r.client().info("commandstats")
        assert ("cmdstat_pdnsrelay.ingest" in calls) == (r is module_redis), calls.keys()
        stores.append(dump(r.client(), skip=(b"st:applied:e2e",)))
    assert len(stores[0]) > 10000
    assert not differences(*stores), differences(*stores)
    assert calls["cmdstat_pdnsrelay.ingest"]["calls"] >= 20000 // 300 // 2


def test_relay_uses_the_module_and_the_script_when_it_is_gone(module_redis, relay_factory):
    """A relay on a server with the module stores through it and asks it
    its query pages (the metrics say so); unloaded while the relay runs,
    the next batch goes to the script and nothing is lost, and the next
    page the module refuses goes to the script: every query answers as
    before."""
    obs = make_records(seed=5)
    relay = store_relay(relay_factory, module_redis)
    assert relay.wait_for(lambda: relay.metrics().get("pdns_relay_store_module") == 1), \
        relay.log_text()[-2000:]
    assert relay.metrics().get("pdns_relay_store_query_module") == 1
    half = len(obs) // 2
    send_d4(relay, obs[:half])
    wait_stored(relay, half)
    r = module_redis.client()
    assert r.info("commandstats").get("cmdstat_pdnsrelay.ingest", {}).get("calls", 0) >= 1
    api = Api(relay.http_port)
    before, _ = api.all_pages("/query/*.test", 100)
    assert r.info("commandstats").get("cmdstat_pdnsrelay.query", {}).get("calls", 0) >= 1
    assert as_set(before) == expect(aggregate(obs[:half]), lambda k, v: k[0].endswith(".test"))
    r.execute_command("MODULE", "UNLOAD", "pdnsrelay")
    again, _ = api.all_pages("/query/*.test", 100)
    assert again == before
    assert relay.metrics().get("pdns_relay_store_query_module") == 0
    assert "Redis refused PDNSRELAY.QUERY" in relay.log_text()
    send_d4(relay, obs[half:])
    wait_stored(relay, len(obs))
    assert relay.metrics().get("pdns_relay_store_module") == 0
    assert "PDNSRELAY.INGEST refused a batch" in relay.log_text()
    assert relay.metrics().get("pdns_relay_store_errors_total", 0) == 0
    got, _ = api.all_pages("/query/*.test", 100)
    assert as_set(got) == expect(aggregate(obs), lambda k, v: k[0].endswith(".test"))


def test_the_sweep_goes_to_the_module_and_to_the_script_when_it_is_gone(module_redis,
                                                                         relay_factory,
                                                                         tmp_path):
    """With the module the expiry sweep's steps go to PDNSRELAY.SWEEP (Redis
    counts them) and the expired triples go; unloaded while the relay runs,
    the step it refuses goes to the script, and so do the steps after it:
    the triples that expire then go too, and the rest stay."""
    r = module_redis.client()
    old, now = int(time.time()) - 7200, int(time.time())

    def import_lines(tag, n):
        f = tmp_path / (tag + ".csv")
        f.write_text("".join("%d.0||c||s||IN||%s%d.exp.test.||A||198.51.100.%d||60||1\n"
                             % (old if i % 2 else now, tag, i, i) for i in range(n)))
        p = subprocess.run([BIN, "import", "-c", relay.config, str(f)], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, p.stderr
    relay = store_relay(relay_factory, module_redis,
                        store={"expire": {"A": 3600}, "sweep_interval": 1})
    m = relay.metrics
    assert relay.wait_for(lambda: m().get("pdns_relay_store_module") == 1), \
        relay.log_text()[-2000:]
    assert "the expiry sweep to PDNSRELAY.SWEEP" in relay.log_text()
    import_lines("first", 100)
    assert relay.wait_for(lambda: m()["pdns_relay_store_expired_triples_total"] == 50, 30)
    assert r.info("commandstats").get("cmdstat_pdnsrelay.sweep", {}).get("calls", 0) >= 1
    r.execute_command("MODULE", "UNLOAD", "pdnsrelay")
    import_lines("second", 60)
    assert relay.wait_for(lambda: m()["pdns_relay_store_expired_triples_total"] == 80, 30), \
        relay.log_text()[-2000:]
    assert "Redis refused PDNSRELAY.SWEEP" in relay.log_text()
    assert "expiry sweep:" not in relay.log_text()  # no step failed
    left = sorted(k.decode() for k in r.scan_iter(match="n:*", count=1000))
    assert left == sorted("n:%s%d.exp.test" % (t, i) for t, n in (("first", 100), ("second", 60))
                          for i in range(0, n, 2))


def test_module_writes_load_from_the_aof_without_the_module(module_redis, relay_factory,
                                                             workdir, tmp_path):
    """The module's writes reach the AOF as HSET, ZADD, HINCRBY and SET: a
    server started on that AOF without the module has the same store."""
    relay = relay_factory(redis=module_redis, extra={"mixer": {"enabled": False}})
    f = tmp_path / "mix.csv"
    f.write_text(subprocess.run(["/usr/bin/python3",
                                 os.path.join(HERE, "..", "bench", "gen_pdns.py"), "5000", "0.6"],
                                capture_output=True, text=True, check=True).stdout)
    p = subprocess.run([BIN, "import", "-c", relay.config, str(f)], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "cmdstat_pdnsrelay.ingest" in module_redis.client().info("commandstats")
    before = dump(module_redis.client())
    assert len(before) > 1000
    module_redis.stop()
    plain = Redis(workdir)
    plain.dir, plain.port = module_redis.dir, module_redis.port
    plain.start()
    try:
        after = dump(plain.client())
    finally:
        plain.stop()
    assert not differences(before, after), differences(before, after)
