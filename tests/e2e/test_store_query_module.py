"""PDNSRELAY.QUERY (relay/store/module/query.c) answers every query page
exactly as the store's query script (relay/store/lua/store_query.lua)
does: the same words in, the same reply out, page after page, over a
store of sorted sets and a store of the module's trees; and the relay
asks the module when Redis has it, the script when not, and gives the
same answers either way."""
import os
import random
import subprocess

import pytest

from conftest import BIN
from test_store import Api, store_relay
from test_store_module import answered
from test_store_trees import answers, import_into, lines_file, query_paths, tree_redis

HERE = os.path.dirname(__file__)
SCRIPT = open(os.path.join(HERE, "..", "..", "relay", "store", "lua",
                           "store_query.lua"), "rb").read()


# IPv6 addresses of every form the address text takes: two zero runs of
# the same length (the first is "::"), a run of one (not "::"), at either
# end, IPv4-mapped and -compatible, all zero
V6_FORMS = ["1:0:0:2:0:0:3:4", "1:0:0:2:3:0:0:4", "1:0:2:3:4:5:6:7", "::1", "1::", "::",
            "::ffff:192.0.2.9", "::192.0.2.10", "0:0:1:0:0:0:1:0", "1:0:0:0:2:0:0:0",
            "2001:db8:0:0:1:0:0:1", "2001:db8::a:b:c:d", "fe80::1:0:0:0", "::ffff:0:1",
            "0:0:0:0:0:1:0:0", "a:b:c:d:e:f:0:1", "2001:DB8::ABCD", "0:1::"]


def both(r, args, members=()):
    """The script's reply and the module's to one page's arguments (the
    script's ARGV; KEYS[1] is st:info), errors as ("error", text)."""
    out = []
    for how in ("script", "module"):
        try:
            if how == "script":
                out.append(r.eval(SCRIPT, 1, "st:info", *args, *members))
            else:
                out.append(r.execute_command("PDNSRELAY.QUERY", "st:info", *args, *members))
        except Exception as e:  # noqa: BLE001 (an error reply is an answer)
            out.append(("error", str(e)))
    return out


def same(a, b):
    """Equal replies; of errors, the word the relay reads (BADCURSOR,
    BADRANGE) or, for Redis's own (a key of another type), the kind."""
    if isinstance(a, tuple) or isinstance(b, tuple):
        if not (isinstance(a, tuple) and isinstance(b, tuple)):
            return False
        wa, wb = a[1].split(" ")[0], b[1].split(" ")[0]
        return wa == wb or ("WRONGTYPE" in a[1] and "WRONGTYPE" in b[1])
    return a == b


def members(r, key):
    if r.type(key) == b"pdns-tree":
        return r.execute_command("PDNSRELAY.IXRANGE", key, "-", "+")
    return r.zrangebylex(key, "-", "+")


class Gen:
    """Random query pages over what a store holds, as the relay composes
    them (store.c, query_argv) and beyond: every mode and member kind,
    ranges cut at random places, filters, sensors, positions, numeric
    cursors, limits and budgets from 0 up; and cursors of every kind,
    those the pages gave and made-up ones."""

    def __init__(self, r, rng):
        self.r, self.rng = r, rng
        keys = [k for k in r.scan_iter(count=10000)]
        self.by = {p: sorted(k for k in keys if k.startswith(p))
                   for p in (b"n:", b"e:", b"f:", b"r:", b"d:")}
        self.rrev = b"r-rel" in (r.get("st:layout") or b"")
        # names with many triples (their pages have cursors of fields)
        pipe = r.pipeline(transaction=False)
        for k in self.by[b"n:"]:
            pipe.hlen(k)
        self.big = [k for k, n in zip(self.by[b"n:"], pipe.execute()) if n >= 4]
        assert self.big, "no name with 4 triples or more"
        self.ms = {}
        # times the store holds: filters that fall on them exactly
        self.times = sorted({int(t) for k in self.big[:50] for v in r.hvals(k)
                             for t in v.split()[:2] if t.isdigit()})

    def members(self, key):
        if key not in self.ms:
            self.ms[key] = members(self.r, key)
        return self.ms[key]

    def filters(self):
        rng = self.rng
        if rng.random() < 0.6:
            return ["", "0", "0", "0", "0", "1795935000", ""]
        types = rng.choice(["", "", "", ",1,", ",1,28,", ",5,", ",2,15,16,"])
        t = lambda: str(rng.choice([0, 0, 0, rng.randint(1795929000, 1795940000),  # noqa: E731
                                    rng.choice(self.times)]))
        expiry = rng.choice(["", "", ",1=3600,", ",1=60,28=86400,5=1,", ",1=999999999,",
                             ",28=3600,1=3600,"])
        # now: at times just when a triple's time_last plus 3600 s is
        now = rng.choice([1795935000, rng.choice(self.times) + 3600])
        return [types, t(), t(), t(), t(), str(now), expiry]

    def page(self):
        """(ARGV without the cursor at 6, members of mode get), and how to
        put a cursor in."""
        rng = self.rng
        mode = rng.choice(["name", "name", "lex", "lex", "lex", "lexn", "get"])
        kind, key, a, b = "", "", "", ""
        extra = []
        if mode == "name":
            roll = rng.random()
            pool = self.by[b"e:"] if roll < 0.15 and self.by[b"e:"] else \
                self.big if roll < 0.6 and self.big else self.by[b"n:"]
            kind = "e" if pool is self.by[b"e:"] else ""
            a = rng.choice(pool)[2:].decode() if rng.random() < 0.95 else "none.test"
        elif mode == "lex":
            p = rng.choice([b"f:", b"r:", b"d:", b"ix:ip", b"ix:ip"])
            key = (rng.choice(self.by[p]) if p != b"ix:ip" and self.by[p] else b"ix:ip").decode()
            kind = {b"f:": "fwd", b"r:": "rrev" if self.rrev else "rev", b"d:": "rd",
                    b"ix:ip": rng.choice(["ip", "ip", "ipm"])}[p]
            ms = self.members(key)
            lo, hi = sorted(rng.choice(ms).decode() for _ in range(2)) if ms else ("", "")
            a, b = lo[:rng.randint(0, len(lo))], hi + rng.choice(["", "\xff", "~"])
            if kind == "rrev":
                bucket = key[2:]
                rest = lambda m: "" if m == "." else m  # noqa: E731
                a, b = bucket + rest(lo), bucket + rest(hi) + rng.choice(["", "\xff"])
                if rng.random() < 0.1:
                    a = "elsewhere." + a  # not in the bucket: BADRANGE
        elif mode == "lexn":
            key = "ix:rb"
            kind = "rrev" if self.rrev else "rev"
            ms = self.members(key)
            lo, hi = sorted(rng.choice(ms).decode() for _ in range(2)) if ms else ("", "")
            a, b = lo[:rng.randint(0, len(lo))], hi + rng.choice(["", "\xff"])
        else:
            kind = "ip"
            extra = [m.decode() for m in rng.sample(self.members("ix:ip"), rng.randint(1, 30))]
            extra += rng.choice([[], [], ["4zz"], ["garbage"], ["4c0a80101"]])
        limit = str(rng.choice([1, 2, 3, 7, 50, 1000, 0]))
        budget = str(rng.choice([1000000, 1000000, 5, 40, 1, 0]))
        sensors = rng.choice(["0", "1"])
        positions = rng.choice(["0", "0", "1"])
        return [mode, kind, key, a, b, None, limit, budget] + self.filters() + \
            [sensors, "", "", "", positions], extra


def made_up_cursor(rng, good):
    return rng.choice(["", "x", "\t", "\n", good + "\n", good + "\t",
                       good[:max(0, len(good) // 2)], good + "\n1 10.0.0.1", "\tzz\nq"])


def compare_pages(r, rng, pages):
    gen = Gen(r, rng)
    compared = follow = 0
    while compared < pages:
        args, extra = gen.page()
        cursor = ""
        for _ in range(rng.randint(1, 12)):  # a query's pages, each cursor from the last
            args[5] = cursor
            got_s, got_m = both(r, args, extra)
            assert same(got_s, got_m), (args, extra, got_s, got_m)
            compared += 1
            if isinstance(got_s, tuple):
                break
            cursor = got_s[0].decode("latin-1")
            if not cursor:
                break
            follow += 1
            if rng.random() < 0.08:
                cursor = made_up_cursor(rng, cursor)
    return compared, follow


def compare_numeric_cursors(r, rng):
    """A dribble client's numeric cursors: stored by either, read by
    either; one bound to another query, or unknown, refused alike."""
    gen = Gen(r, rng)
    for i in range(40):
        args, extra = gen.page()
        if args[0] == "get":
            continue
        args[5], args[6] = "", "2"
        args[16], args[17] = str(1000 + i), "bind%d" % i
        got_s, got_m = both(r, args, extra)
        assert same(got_s, got_m), (args, got_s, got_m)
        if isinstance(got_s, tuple) or not got_s[0]:
            continue
        assert got_s[0] == str(1000 + i).encode()
        for how, other in (("same", "bind%d" % i), ("foreign", "elsewhere")):
            nxt = list(args)
            nxt[5], nxt[16], nxt[17] = str(1000 + i), str(5000 + i), other
            got_s, got_m = both(r, nxt, extra)
            assert same(got_s, got_m), (how, nxt, got_s, got_m)
            if how == "foreign":
                assert isinstance(got_s, tuple) and "FOREIGN" in got_s[1], got_s
    args[5], args[16] = "999999", "1"
    got_s, got_m = both(r, args, extra)
    assert isinstance(got_s, tuple) and same(got_s, got_m) and "BADCURSOR" in got_s[1]


@pytest.mark.parametrize("index", ["sorted sets", "trees"])
def test_the_module_answers_every_page_as_the_script(index, relay_factory, workdir, tmp_path):
    """Thousands of random pages (every mode and member kind, filters,
    sensor names, positions, limits and budgets from 0, the cursors each
    page gives and made-up ones, numeric cursors) over a store the relay
    wrote from the ~60 % new mix and the query tests' records: the module
    gives the script's reply every time, errors included."""
    r_srv = tree_redis(workdir)
    try:
        f, n = lines_file(tmp_path)
        with open(f, "a") as out:  # addresses inet_ntop writes in each of its forms
            for i, a in enumerate(V6_FORMS):
                out.write("1795930%03d.5||10.0.0.1||10.0.0.2||IN||v6-%d.forms.test.||AAAA||%s"
                          "||300||1\n" % (i, i % 7, a))
        n += len(V6_FORMS)
        relay = import_into(relay_factory, r_srv, f, n,
                            **({"index": "tree"} if index == "trees" else {}))
        # the query tests' records and those above seen by two more sensors
        # (a triple's sensors, named in a page, are several)
        again = tmp_path / "again.csv"
        again.write_text("".join(l for l in open(f) if "||10.0.0.2||" in l))
        for sensor in ("sensor-b", "sensor-c"):
            p = subprocess.run([BIN, "import", "-c", relay.config, "--sensor", sensor,
                                str(again)], capture_output=True, text=True, timeout=120)
            assert p.returncode == 0, p.stderr
        r = r_srv.client()
        kinds = {r.type(k) for k in r.scan_iter(match="f:*", count=1000)}
        assert kinds == ({b"pdns-tree"} if index == "trees" else {b"zset"}), kinds
        rng = random.Random(2026 if index == "trees" else 7)
        compared, followed = compare_pages(r, rng, 2500)
        assert followed > 300, followed  # cursors were followed, not only first pages
        compare_numeric_cursors(r, rng)
    finally:
        r_srv.stop()


def test_the_relay_asks_the_module_and_answers_as_with_the_script(module_redis, relay_factory,
                                                                  tmp_path):
    """A relay on a server with the module sends its query pages to
    PDNSRELAY.QUERY (the metric says so; Redis counts the calls), one with
    store.module false to the script: every query form, page after page,
    with sensors shown, in COF and DNSDB, answers the same."""
    f, n = lines_file(tmp_path)
    mod = import_into(relay_factory, module_redis, f, n, show_sensors=True)
    script = store_relay(relay_factory, module_redis,
                         store={"module": False, "show_sensors": True})
    assert mod.wait_for(lambda: mod.metrics().get("pdns_relay_store_query_module") == 1), \
        mod.log_text()[-2000:]
    assert "query pages to PDNSRELAY.QUERY" in mod.log_text()
    assert script.metrics().get("pdns_relay_store_query_module") == 0
    r = module_redis.client()
    paths = query_paths(r)
    assert len(paths) > 150
    r.config_resetstat()
    am, asc = Api(mod.http_port), Api(script.http_port)
    for p in paths:
        got = answers(am, p)
        assert got == answers(asc, p), p
    assert len(answers(am, "/query/big.cdn.test")) == 260
    st = r.info("commandstats")
    assert st["cmdstat_pdnsrelay.query"]["calls"] >= len(paths), st
    assert st["cmdstat_evalsha"]["calls"] >= len(paths), st


def test_query_arguments_the_relay_never_sends_never_crash_redis(module_redis):
    """The module runs inside the operator's redis-server: any number of
    arguments, numbers that are none, keys of other types, cursors and
    members of random bytes get a reply (the script's, or an error), and
    Redis lives on."""
    r = module_redis.client()
    rng = random.Random(11)
    r.hset("n:a.test", mapping={"1 192.0.2.1": "1700000000 1700000001 3 |1|2|",
                                "28 2001:db8::1": "1 2", "x": "y", "": ""})
    r.zadd("ix:ip", {"4c0000201 a.test": 0, "6" + "0" * 32 + " a.test": 0, "4zz b": 0,
                     "4c0000201 1 192.0.2.1 a.test": 0, "garbage": 0})
    r.zadd("d:1", {"a.test 5 a.test": 0, "mx 15 10 mx a.test": 0, "nospace": 0})
    r.zadd("ix:rb", {"test.a": 0, "": 0})
    r.zadd("r:test.a", {".": 0, ".www": 0, "..": 0})
    r.set("f:1", "a string")
    r.lpush("r:x", "a list")
    r.set("cur:7", "nospace")
    pool = ["", "0", "1", "-1", "7", "name", "lex", "lexn", "get", "fwd", "rev", "rrev", "ip",
            "ipm", "rd", "e", "ix:ip", "d:1", "ix:rb", "r:test.a", "f:1", "r:x", "n:a.test",
            "a.test", "test.a", "test.a.", "\t", "\n", "a\tb\nc", "(", "[", "-", "+", "nan",
            "inf", "1e308", "9" * 40, ",1,", ",1=60,", ",=,", "\x00", "z" * 300, "\xff"]

    def val():
        if rng.random() < 0.9:
            return rng.choice(pool)
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 20)))

    for i in range(4000):
        n = rng.choice([rng.randint(0, 24), 21, 21, 21, 22 + rng.randint(0, 5)])
        args = [val() for _ in range(n)]
        if n >= 21 and rng.random() < 0.8:  # the numbers numbers, now and then
            for j in (7, 8, 10, 11, 12, 13, 14):
                if rng.random() < 0.8:
                    args[j] = rng.choice(["0", "1", "3", "1000", "1700000001"])
        answered(r, "PDNSRELAY.QUERY", args)
    assert r.ping()


def test_a_triple_many_sensors_saw_names_them_all(module_redis):
    """A triple seen by 1,500 sensors, half of them with names: the page
    with sensors shown names each (an id without a name as itself), in the
    value's order, as the script does."""
    r = module_redis.client()
    ids = "|" + "|".join(str(i) for i in range(1, 1501)) + "|"
    r.hset("n:popular.test", mapping={"1 192.0.2.1": "1700000000 1700000100 9 " + ids,
                                      "1 192.0.2.2": "1700000000 1700000100 9 |7|7|3|"})
    r.hset("st:sname", mapping={str(i): "sensor-%04d" % i for i in range(1, 1501, 2)})
    args = ["name", "", "", "popular.test", "", "", "10", "1000000", "", "0", "0", "0", "0",
            "1795935000", "", "1", "", "", "", "0"]
    got_s, got_m = both(r, args)
    assert got_s == got_m
    names = got_m[4].decode().split(",")
    assert len(names) == 1500 and names[:3] == ["sensor-0001", "2", "sensor-0003"], names[:3]
    assert got_m[8] == b"sensor-0007,sensor-0007,sensor-0003"
