"""The store on a real Redis Cluster (3 masters, 3 replicas on loopback),
beside the same store on one redis-server:
- every query form gives the same records, in the same order, page by page
  (names, addresses, CIDR, rdata, wildcards on both sides, filters,
  dribble cursors, DNSDB v2, /info); the address index is sharded by
  address prefix, and an address lookup asks only the shards of its
  prefixes and of the names it finds; a store made with the index beside
  the names answers the same;
- the master holding part of the store is killed (-9) during ingest: its
  replica takes over and every record is stored exactly once (the counts
  say so: a batch part applied twice would double them);
- slots move between masters (redis-cli --cluster reshard) during ingest:
  nothing lost, nothing doubled;
- the expiry sweep deletes expired triples from every shard;
- with the pdnsrelay module on every node, the masters store through it,
  the answers are those of the script's store, a slot moving meanwhile
  loses and doubles nothing, and a master without it sends the batches
  back to the script.
The expected answers come from the records the test generated, and from
the one-server relay, never from the relay under test alone."""
import ipaddress
import json
import os
import signal
import subprocess
import time

import pytest
import requests

from conftest import BIN
from test_store import (Api, aggregate, as_set, expect, make_records, send_d4, store_relay,
                        wait_stored)

redis = pytest.importorskip("redis")
from test_store_module import differences  # noqa: E402
from test_store_trees import typed, wait_synced  # noqa: E402


def cluster_relay(relay_factory, cluster, console=True, **store):
    """A relay whose Redis (the store, which follows it, and the outboxes)
    is the cluster."""
    st = {"default_limit": 1000}
    st.update(store)
    return relay_factory(extra={"mixer": {"enabled": False}, "store": st,
                                "admin": {"console": console},
                                "redis": cluster.url()}).start()


def all_pages(api, path, limit, header=None):
    """Every page of path, in order (a list of lists of records)."""
    sep = "&" if "?" in path else "?"
    pages, cursor = [], None
    while True:
        q = "%s%slimit=%d" % (path, sep, limit) + ("&cursor=" + cursor if cursor else "")
        objs, h = api.page(q)
        pages.append(objs)
        cursor = h.get("x-cursor")
        if not cursor:
            return pages
        assert len(pages) < 5000


def flat(pages):
    return [o for p in pages for o in p]


QUERIES = ["/query/big.cdn.test", "/query/corp.test", "/query/MIXED.case.corp.test.",
           "/query/10.1.9.9", "/query/2001:db8:1::a", "/query/10.1.1.0/24",
           "/query/10.0.0.0/8", "/query/0.0.0.0/0", "/query/2001:db8::/32",
           "/query/192.0.2.128/25", "/rdata/ns1.dns.test", "/rdata/host0.corp.test",
           "/rdata/edge.cdn.test", "/query/*.corp.test", "/query/*.test", "/query/www.*",
           "/query/*.cdn.test", "/query/*.corp.test?rrtype=AAAA",
           "/query/10.0.0.0/8?time_first_after=1795100000", "/query/nothing.here.test",
           "/query/*.nothing"]


def one_and_many(relay_factory, redis_server, cluster, seed):
    """A relay on one redis-server and one on the cluster, each with the
    same generated records stored: (one, many, the records)."""
    obs = make_records(seed=seed)
    one = store_relay(relay_factory, redis_server)
    # no console: its charts read the store's size (a script on every
    # shard) every 10 s, which Redis would count among a query's calls
    many = cluster_relay(relay_factory, cluster, console=False)
    for r in (one, many):
        send_d4(r, obs)
    for r in (one, many):
        wait_stored(r, len(obs), 30)
    return one, many, obs


def test_the_cluster_store_answers_as_one_server(cluster, redis_server, relay_factory):
    one, many, obs = one_and_many(relay_factory, redis_server, cluster, 11)
    a, b = Api(one.http_port), Api(many.http_port)
    agg = aggregate(obs)
    m = many.metrics()
    assert m["pdns_relay_store_shards"] == 12 and m["pdns_relay_store_up"] == 1
    # the shards are spread over the three masters, four each
    masters = {}
    for p in cluster.alive():
        n = cluster.client(p)
        if n.execute_command("ROLE")[0] == b"master":
            masters[p] = sum(1 for key in n.scan_iter(match="{s*}st:info", count=1000))
    assert sorted(masters.values()) == [4, 4, 4], masters
    for path in QUERIES:
        whole_a, _ = a.page(path + ("&" if "?" in path else "?") + "limit=100000")
        whole_b, _ = b.page(path + ("&" if "?" in path else "?") + "limit=100000")
        assert whole_b == whole_a, path  # the same records in the same order
        for limit in (1, 7, 100):
            pa, pb = all_pages(a, path, limit), all_pages(b, path, limit)
            assert flat(pb) == flat(pa), (path, limit)
            assert pb[0] == pa[0], (path, limit)  # the first page, exactly
    check_address_shards(cluster, many, obs)
    # against the generated records too, not only the other relay
    got, _ = b.page("/query/*.test?limit=100000")
    assert as_set(got) == expect(agg, lambda k, v: k[0].endswith(".test"))
    # the dribble API (numeric cursors, kept in the cluster), as PyPDNS pages
    for q in ("big.cdn.test", "*.corp.test", "10.0.0.0/8"):
        for api in (a, b):
            got, cursor = [], None
            while True:
                h = {"dribble-paginate-count": "13"}
                if cursor:
                    h["dribble-paginate-cursor"] = cursor
                r = requests.get("%s/pdns/query/%s" % (api.base, q), headers=h, timeout=15)
                assert r.status_code == 200, (q, api is b, r.text)
                got += [json.loads(l) for l in r.text.splitlines() if l]
                cursor = r.headers.get("x-dribble-cursor")
                if not cursor:
                    break
            if api is a:
                want = got
        assert got == want, q
    # a numeric cursor is bound to its query
    r = requests.get("%s/pdns/query/big.cdn.test" % b.base,
                     headers={"dribble-paginate-count": "10"}, timeout=15)
    cur = r.headers["x-dribble-cursor"]
    r = requests.get("%s/pdns/query/*.corp.test" % b.base,
                     headers={"dribble-paginate-count": "10", "dribble-paginate-cursor": cur},
                     timeout=15)
    assert r.status_code == 400 and "another query" in r.json()["error"]
    r = requests.get("%s/pdns/query/*.corp.test" % b.base,
                     headers={"dribble-paginate-count": "10", "dribble-paginate-cursor": "99"},
                     timeout=15)
    assert r.status_code == 400 and "cursor" in r.json()["error"]
    # DNSDB v2 and /info
    for path in ("/dnsdb/v2/lookup/rrset/name/*.corp.test", "/dnsdb/v2/lookup/rdata/ip/10.1.0.0,16",
                 "/dnsdb/v2/summarize/rrset/name/big.cdn.test"):
        assert b.get(path)[2] == a.get(path)[2], path
    # what an operator sees: each shard on its master, the spread
    st = subprocess.run([BIN, "cluster-status", "-c", many.config], capture_output=True,
                        text=True, timeout=30)
    assert st.returncode == 0, st.stdout + st.stderr
    out = st.stdout
    assert "store %s: ready" % cluster.url() in out
    assert "store layout: shards 12 ip-by-prefix ip-name r-rel\n" in out
    shards = [l for l in out.splitlines() if l.startswith("shard ")]
    assert len(shards) == 12
    assert sum(int(l.split(": ")[1].split()[0]) for l in shards) == len(agg)
    per_master = [l for l in out.splitlines() if l.startswith("master ")]
    assert len(per_master) == 3 and "triples per master: max/min" in out
    ia, ib = json.loads(a.get("/info")[2]), json.loads(b.get("/info")[2])
    for i in (ia, ib):
        i["sensors"].sort(key=lambda x: x["name"])
    assert ib == ia and ib["records"] == len(obs) and ib["triples"] == len(agg)


def fnv_shard(b, n=12):
    """The store's shard of a name (FNV-1a, 32 bits, modulo the shards)."""
    h = 2166136261
    for c in b:
        h = ((h ^ c) * 16777619) & 0xffffffff
    return h % n


def ip_shard(member):
    """The shard of an address index member: that of its /24 or /48."""
    return fnv_shard(member[:13 if member[:1] == b"6" else 7])


def index_members(cluster):
    """{shard: [member, ...]} of every shard's address index."""
    out = {}
    for p in cluster.alive():
        c = cluster.client(p)
        if c.execute_command("ROLE")[0] == b"master":
            for key in c.scan_iter(match="{s*}ix:ip", count=1000):
                shard = int(key[2:key.index(b".")])
                out[shard] = c.zrange(key, 0, -1)
    return out


def script_calls(cluster):
    """Query pages the masters ran since their last CONFIG RESETSTAT: EVAL
    and EVALSHA of the script, or PDNSRELAY.QUERY where the module is (the
    suite run with E2E_REDIS_MODULE)."""
    n = 0
    for p in cluster.alive():
        c = cluster.client(p)
        if c.execute_command("ROLE")[0] == b"master":
            st = c.info("commandstats")
            n += sum(st.get("cmdstat_" + k, {}).get("calls", 0)
                     for k in ("eval", "evalsha", "pdnsrelay.query"))
    return n


def reset_stats(cluster):
    for p in cluster.alive():
        cluster.client(p).config_resetstat()


def prefix_shards(path):
    """The shards of the /24s or /48s an address query's range overlaps."""
    net = ipaddress.ip_network(path.split("/", 2)[2], strict=False)
    plen = 24 if net.version == 4 else 48
    subs = [net] if net.prefixlen >= plen else list(net.subnets(new_prefix=plen))
    return {ip_shard(b"%d%s" % (net.version, s.network_address.packed.hex().encode()))
            for s in subs}


ADDRESS_QUERIES = ["/query/10.1.9.9", "/query/10.1.1.0/24", "/query/192.0.2.0/24",
                   "/query/2001:db8:1::/48", "/query/10.1.0.0/23", "/query/10.0.0.0/8",
                   "/query/2001:db8::/32"]


def check_address_shards(cluster, many, obs):
    """The address index is sharded by address prefix (/24 of IPv4, /48 of
    IPv6), not by name: each member is in its prefix's shard, and a lookup
    of an address, or of a range inside a few prefixes, asks those shards
    for the members and then only the shards of the names it found (Redis's
    own count of script calls says so)."""
    members = index_members(cluster)
    assert all(ip_shard(m) == k for k, ms in members.items() for m in ms)
    assert sum(len(ms) for ms in members.values()) == \
        sum(1 for k in aggregate(obs) if k[1] in ("A", "AAAA"))
    assert len([k for k, ms in members.items() if ms]) > 6  # spread, not in one shard
    api = Api(many.http_port)
    for path in ADDRESS_QUERIES[:5]:
        want, _ = api.page(path + "?limit=100000")  # each master has the script after it
        reset_stats(cluster)
        got, _ = api.page(path + "?limit=100000")
        assert got == want and got, path
        names = {fnv_shard(o["rrname"].encode()) for o in got}
        assert script_calls(cluster) == len(prefix_shards(path)) + len(names), path
        if path == "/query/10.1.9.9":
            assert len(names) == 1  # two calls, where every shard was asked
    # the masters forgot the query script (a restart, SCRIPT FLUSH): each
    # round's calls are sent again with the script itself
    for p in cluster.alive():
        cluster.client(p).script_flush()
    for path in ADDRESS_QUERIES:
        assert flat(all_pages(api, path, 7)) == api.page(path + "?limit=100000")[0], path


def test_a_store_with_its_address_index_beside_the_names(cluster, redis_server,
                                                         relay_factory):
    """A cluster store whose st:layout is "shards 12" keeps each address
    index member in its name's shard: the relay goes on writing it there
    and answers address lookups from every shard, as one server does."""
    node = cluster.client(cluster.alive()[0])
    cluster.client(cluster.master_of(node.cluster("keyslot", "st:layout"))).set(
        "st:layout", "shards 12")
    one, many, _ = one_and_many(relay_factory, redis_server, cluster, 9)
    assert "address lookup asks every shard" in many.log_text()
    members = index_members(cluster)
    assert all(fnv_shard(m.split(b" ", 3)[3]) == k for k, ms in members.items() for m in ms)
    a, b = Api(one.http_port), Api(many.http_port)
    for path in ADDRESS_QUERIES:
        for limit in (7, 100000):
            assert flat(all_pages(b, path, limit)) == flat(all_pages(a, path, limit)), path


def counts(api):
    """What the store says of every triple; right after a failover the
    relay may still be reading the new map (503): asked until it answers."""
    deadline = time.time() + 30
    while api.get("/info")[0] != 200 and time.time() < deadline:
        time.sleep(0.1)
    got, _ = api.page("/query/*.test?limit=100000")
    return {(o["rrname"], o["rrtype"], o["rdata"]): (o["time_first"], o["time_last"], o["count"])
            for o in got}


def expected_counts(obs):
    return {k: (v[0], v[1], v[2]) for k, v in aggregate(obs).items() if k[0].endswith(".test")}


def send_in_rounds(relay, rounds, during=None):
    """Sends each round of records and waits until they are counted in;
    during() runs once the second round is sent."""
    sent = 0
    for i, obs in enumerate(rounds):
        send_d4(relay, obs)
        if during and i == 1:
            during()  # while the store writes this round
        sent += len(obs)
        assert relay.wait_for(lambda: relay.sensor_records("sensor-a") +
                              relay.sensor_records("sensor-b") >= sent, 30)
        # the relay takes a D4 sensor's next connection only once its last one closed
        assert relay.wait_for(lambda: relay.metrics()["pdns_relay_d4_sessions_active"] == 0, 30)
    return sent


def shard_master(cluster, shard):
    """(tag, master port, replica port) of a shard of the store."""
    for p in cluster.alive():
        c = cluster.client(p)
        if c.execute_command("ROLE")[0] != b"master":
            continue
        for key in c.scan_iter(match="{s%d.*}st:info" % shard, count=1000):
            tag = key.decode()[1:key.decode().index("}")]
            replica = next(r for r in cluster.alive() if r != p and
                           cluster.client(r).execute_command("ROLE")[0] == b"slave" and
                           int(cluster.client(r).execute_command("ROLE")[2]) == p)
            return tag, p, replica
    raise AssertionError("shard %d not found" % shard)


# failovers on a cluster: waits for a replica to take over (slow: left out
# under the sanitizers; the slot move below runs the retry paths there)
@pytest.mark.slow
def test_a_master_killed_during_ingest_loses_and_doubles_nothing(cluster, relay_factory):
    rounds = [make_records(seed=s) for s in (21, 22, 23, 24)]
    relay = cluster_relay(relay_factory, cluster, batch=50)

    def kill():
        victim = shard_master(cluster, 0)[1]
        cluster.procs[victim].send_signal(signal.SIGKILL)
        cluster.procs[victim].wait()
    sent = send_in_rounds(relay, rounds, kill)
    cluster.wait_ok()
    wait_stored(relay, sent, 90)
    obs = [o for r in rounds for o in r]
    got, want = counts(Api(relay.http_port)), expected_counts(obs)
    assert got == want
    info = json.loads(Api(relay.http_port).get("/info")[2])
    assert info["records"] == sent, info


@pytest.mark.slow
def test_a_part_the_master_never_replicated_is_stored_again(cluster, relay_factory):
    """Redis replicates asynchronously: a batch part the master applied but
    never passed to its replica is gone when that master dies and the
    replica takes over. The relay takes a part as stored once a replica
    has it (WAIT), so it stores that part again, once, on the new master."""
    rounds = [make_records(seed=s) for s in (41, 42)]
    relay = cluster_relay(relay_factory, cluster, batch=100000)
    sent = send_in_rounds(relay, rounds[:1])
    wait_stored(relay, sent)
    tag, master, replica = shard_master(cluster, 0)
    assert relay.metrics()["pdns_relay_store_cluster_slots_without_replica"] == 0
    m = cluster.client(master)
    before = int(m.hget("{%s}st:info" % tag, "records"))
    # the replica stops reading and its link is cut: what the master takes
    # from now on reaches no replica
    cluster.procs[replica].send_signal(signal.SIGSTOP)
    try:
        m.execute_command("CLIENT KILL TYPE replica")
        send_d4(relay, rounds[1])
        assert relay.wait_for(lambda: int(m.hget("{%s}st:info" % tag, "records")) > before, 20)
        cluster.procs[master].send_signal(signal.SIGKILL)
        cluster.procs[master].wait()
    finally:
        cluster.procs[replica].send_signal(signal.SIGCONT)
    cluster.wait_ok()
    assert cluster.master_of(cluster.client(replica).cluster("keyslot", "{%s}" % tag)) == replica
    sent += len(rounds[1])
    wait_stored(relay, sent, 60)
    obs = rounds[0] + rounds[1]
    got, want = counts(Api(relay.http_port)), expected_counts(obs)
    assert got == want
    assert json.loads(Api(relay.http_port).get("/info")[2])["records"] == sent


def test_slots_moved_during_ingest_lose_and_double_nothing(cluster, relay_factory, workdir):
    """redis-cli --cluster reshard moves 1000 slots (some of the store's
    shards among them) from one master to another while records keep
    coming: calls meet MOVED, ASK or a slot half-way (refused, sent again),
    and every record is stored once."""
    slots_moved_during_ingest(cluster, relay_factory, workdir)


def slots_moved_during_ingest(cluster, relay_factory, workdir, **store):
    relay = cluster_relay(relay_factory, cluster, batch=50, **store)
    src, dst = [p for lo, hi, p in cluster.slots()][:2]
    log = open(os.path.join(workdir, "reshard.log"), "w+")
    reshard = subprocess.Popen(
        ["redis-cli", "--cluster", "reshard", "127.0.0.1:%d" % src,
         "--cluster-from", cluster.node_id(src), "--cluster-to", cluster.node_id(dst),
         "--cluster-slots", "1000", "--cluster-yes", "--cluster-pipeline", "10"],
        stdout=log, stderr=subprocess.STDOUT)
    rounds, seed = [], 300
    while reshard.poll() is None or len(rounds) < 3:
        rounds.append(make_records(seed=seed))
        send_in_rounds(relay, rounds[-1:])
        seed += 1
        assert len(rounds) < 1000
    reshard.wait(120)
    log.seek(0)
    assert reshard.returncode == 0, log.read()[-2000:]
    rounds.append(make_records(seed=seed))  # and after it, on the new map
    send_in_rounds(relay, rounds[-1:])
    cluster.wait_ok()
    sent = sum(len(r) for r in rounds)
    wait_stored(relay, sent, 90)
    m = relay.metrics()
    assert (m['pdns_relay_store_cluster_redirects_total{kind="moved"}'] +
            m['pdns_relay_store_cluster_redirects_total{kind="ask"}'] +
            m["pdns_relay_store_errors_total"]) > 0, m
    obs = [o for r in rounds for o in r]
    assert counts(Api(relay.http_port)) == expected_counts(obs)
    assert json.loads(Api(relay.http_port).get("/info")[2])["records"] == sent
    return relay


def module_calls(cluster, port):
    """PDNSRELAY.INGEST calls the node ran."""
    st = cluster.client(port).info("commandstats")
    return st.get("cmdstat_pdnsrelay.ingest", {}).get("calls", 0)


def test_the_module_on_every_master_stores_as_the_script(module_cluster, redis_server,
                                                          relay_factory):
    """Every master has the module: the relay asks each shard's master,
    and the batches go to PDNSRELAY.INGEST on all three; the store answers
    every query as the script's store on one server does. A master that
    loses the module (MODULE UNLOAD) refuses the next batch as an unknown
    command: it goes to the script, as do the rest, and nothing is lost."""
    one, many, obs = one_and_many(relay_factory, redis_server, module_cluster, 11)
    assert many.metrics()["pdns_relay_store_module"] == 1
    assert many.metrics()["pdns_relay_store_query_module"] == 1
    assert "Redis has the pdnsrelay module on every master" in many.log_text()
    ms = module_cluster.masters()
    assert len(ms) == 3 and all(module_calls(module_cluster, p) > 0 for p in ms), \
        [module_calls(module_cluster, p) for p in ms]
    a, b = Api(one.http_port), Api(many.http_port)
    for path in QUERIES:
        sep = "&" if "?" in path else "?"
        assert b.page(path + sep + "limit=100000")[0] == a.page(path + sep + "limit=100000")[0], \
            path
    ia, ib = json.loads(a.get("/info")[2]), json.loads(b.get("/info")[2])
    for i in (ia, ib):
        i["sensors"].sort(key=lambda x: x["name"])
    assert ib == ia and ib["records"] == len(obs)
    # one master without it: the script takes over
    module_cluster.client(ms[0]).execute_command("MODULE", "UNLOAD", "pdnsrelay")
    more = make_records(seed=12)
    send_d4(many, more)
    wait_stored(many, len(obs) + len(more), 60)
    assert many.metrics()["pdns_relay_store_module"] == 0
    assert "PDNSRELAY.INGEST refused a batch" in many.log_text()
    assert counts(b) == expected_counts(obs + more)  # its query pages: the script's
    assert many.metrics()["pdns_relay_store_query_module"] == 0
    # what an operator sees: the master without it
    out = subprocess.run([BIN, "cluster-status", "-c", many.config], capture_output=True,
                         text=True, timeout=30).stdout
    lines = [l for l in out.splitlines() if l.startswith("master ")]
    said = (", pdnsrelay module loaded: PDNSRELAY.INGEST, PDNSRELAY.QUERY, PDNSRELAY.SWEEP, "
            "without trees")
    assert len(lines) == 3 and sum(said in l for l in lines) == 2, out
    assert [l for l in lines if "module absent" in l][0].startswith(
        "master 127.0.0.1:%d:" % ms[0]), out


def test_slots_moved_during_ingest_through_the_module(module_cluster, relay_factory, workdir):
    """The same slot move, the masters storing through the module: a call
    whose keys are half moved is refused before it writes (the module asks
    EXISTS of every key, as the script does), sent again, and every record
    is stored once."""
    relay = slots_moved_during_ingest(module_cluster, relay_factory, workdir)
    assert relay.metrics()["pdns_relay_store_module"] == 1
    assert sum(module_calls(module_cluster, p) for p in module_cluster.masters()) > 0


def expiring_records(tmp_path):
    """60 A records two hours old (gone*, 198.51.x) and 60 a minute old
    (kept*, 203.0.x), as COF in a file: (now, records, the file)."""
    now = int(time.time())
    recs = [("gone%d.exp.test" % i, "198.51.%d.%d" % (i // 200, i % 200 + 1), now - 7200)
            for i in range(60)]
    recs += [("kept%d.exp.test" % i, "203.0.%d.%d" % (i // 200, i % 200 + 1), now - 60)
             for i in range(60)]
    f = tmp_path / "exp.ndjson"
    f.write_text("\n".join(json.dumps({"rrname": n, "rrtype": "A", "rdata": d,
                                       "time_first": tl - 10, "time_last": tl, "count": 1})
                           for n, d, tl in recs) + "\n")
    return now, recs, f


def test_expiry_sweeps_every_shard(cluster, relay_factory, tmp_path):
    """store.expire on a cluster: the sweep walks every shard (a SCAN of the
    shard's keys on its master) and deletes each expired triple with its
    index entries, wherever its name's shard is."""
    now, recs, f = expiring_records(tmp_path)
    relay = cluster_relay(relay_factory, cluster, expire={"A": 3600}, sweep_interval=1)
    subprocess.run([BIN, "import", "-c", relay.config, str(f)], check=True,
                   capture_output=True, timeout=60)
    api = Api(relay.http_port)
    # hidden at once
    got, _ = api.page("/query/*.exp.test?limit=1000")
    assert {o["rrname"] for o in got} == {n for n, _, tl in recs if tl > now - 3600}
    # deleted by the sweep, from every shard
    assert relay.wait_for(
        lambda: relay.metrics()["pdns_relay_store_expired_triples_total"] == 60, 30)
    left = []
    for p in cluster.alive():
        c = cluster.client(p)
        if c.execute_command("ROLE")[0] == b"master":
            left += [k for k in c.scan_iter(match="*gone*", count=1000)]
            left += [m for k in c.scan_iter(match="*ix:ip", count=1000)
                     for m in c.zrange(k, 0, -1)
                     if m.startswith(b"4c633") or m.endswith(b"gone.exp.test")]  # 198.51.
    assert left == []
    info = json.loads(api.get("/info")[2])
    assert info["triples"] == 60 and info["names"] == 60


def scan_calls(node):
    return node.info("commandstats").get("cmdstat_scan", {}).get("calls", 0)


def one_walk(node):
    """The SCAN calls one walk of node's store keys takes (COUNT 200, as a
    sweep step asks)."""
    cursor, calls = 0, 0
    while True:
        cursor, _ = node.scan(cursor, match="{s*}[ne]:*", count=200)
        calls += 1
        if cursor == 0:
            return calls


@pytest.mark.parametrize("kind", ["cluster", "tree_cluster"])
def test_a_pass_of_the_sweep_walks_each_master_once(kind, request, relay_factory, tmp_path):
    """On a cluster a pass of the sweep walks each master's keys once,
    every shard it holds in the same walk, not once a shard (12 shards on 3
    masters would be 4 walks of each): the SCAN calls each master counts
    over one pass are those of one walk. The expired triples of every shard
    still go, and the rest stay. With the module on every master
    (tree_cluster) the steps are its PDNSRELAY.SWEEP."""
    cluster = request.getfixturevalue(kind)
    now, recs, f = expiring_records(tmp_path)
    with open(f, "a") as out:
        for i in range(6000):
            out.write(json.dumps({"rrname": "h%d.walk.test" % i, "rrtype": "A",
                                  "rdata": "10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255),
                                  "time_first": now - 10, "time_last": now, "count": 1}) + "\n")
    # one pass in the test's time: the next would start an hour later
    relay = relay_factory(extra={"mixer": {"enabled": False}, "admin": {"console": False},
                                 "redis": cluster.url(),
                                 "store": {"expire": {"A": 3600}, "sweep_interval": 3600}})
    subprocess.run([BIN, "import", "-c", relay.config, str(f)], check=True,
                   capture_output=True, timeout=60)
    masters = [cluster.client(p) for p in cluster.masters()]
    for m in masters:
        m.config_resetstat()
    relay.start()
    assert relay.wait_for(lambda: relay.metrics()["pdns_relay_store_sweep_pass_seconds"] > 0, 60)
    assert relay.metrics()["pdns_relay_store_expired_triples_total"] == 60
    for m in masters:
        walked, once = scan_calls(m), one_walk(m)
        assert once >= 5 and walked <= once + 2, (walked, once)
        native = m.info("commandstats").get("cmdstat_pdnsrelay.sweep", {}).get("calls", 0)
        assert native == (walked if kind == "tree_cluster" else 0), (native, walked)
    info = json.loads(Api(relay.http_port).get("/info")[2])
    assert info["triples"] == 6060 and info["names"] == 6060


def test_expiry_removes_address_members_whichever_kind_their_key_is(tree_cluster,
                                                                    relay_factory, tmp_path):
    """A relay that read the sorted-set layout before `index-trees` moved
    the address index (one left running while it ran) still removes an
    expired triple's address member from the address's shard, where the
    key is now a tree."""
    _, _, f = expiring_records(tmp_path)
    relay = relay_factory(extra={"mixer": {"enabled": False}, "admin": {"console": False},
                                 "redis": tree_cluster.url(),
                                 "store": {"expire": {"A": 3600}, "sweep_interval": 1}})
    subprocess.run([BIN, "import", "-c", relay.config, str(f)], check=True,
                   capture_output=True, timeout=60)
    converted = 0
    for p in tree_cluster.masters():
        c = tree_cluster.client(p)
        for k in c.scan_iter(match="{s*}ix:ip", count=1000):
            converted += c.execute_command("PDNSRELAY.IXCONVERT", k)
    assert converted >= 2
    relay.start()
    assert relay.wait_for(
        lambda: relay.metrics()["pdns_relay_store_expired_triples_total"] == 60, 30)
    assert relay.metrics()["pdns_relay_store_index_trees"] == 0

    def gone_members():
        out = []
        for p in tree_cluster.masters():
            c = tree_cluster.client(p)
            for k in c.scan_iter(match="{s*}ix:ip", count=1000):
                out += [m for m in c.execute_command("PDNSRELAY.IXRANGE", k, "-", "+")
                        if m.startswith(b"4c633") or b"gone" in m]  # 198.51.
        return out
    # (removed after the sweep counted them, by calls that follow)
    assert relay.wait_for(lambda: not gone_members(), 10), gone_members()
    kept = [m for p in tree_cluster.masters() for k in tree_cluster.client(p).scan_iter(
        match="{s*}ix:ip", count=1000)
        for m in tree_cluster.client(p).execute_command("PDNSRELAY.IXRANGE", k, "-", "+")]
    assert len(kept) == 60 and all(b"kept" in m for m in kept), kept


def test_a_relay_with_other_shards_refuses_to_write(cluster, relay_factory):
    """st:layout records the store's number of shards: a relay configured
    with another store.shards would look for names in the wrong shards, so
    it writes nothing, says why in its log and in /readyz, and loses no
    record (they wait in its buffer)."""
    first = cluster_relay(relay_factory, cluster)
    obs = make_records(seed=51)
    send_d4(first, obs)
    wait_stored(first, len(obs))
    first.stop()
    other = relay_factory(extra={"mixer": {"enabled": False}, "redis": cluster.url(),
                                 "store": {"shards": 6}}).start(ready=False)
    assert other.wait_for(lambda: "made with shards 12 ip-by-prefix ip-name r-rel (st:layout), "
                          "store.shards says 6"
                          in other.log_text(), 20), other.log_text()[-2000:]
    st, body = other.readyz()
    assert st == 503 and "another store.shards" in body, body
    send_d4(other, obs[:100])
    assert other.wait_for(lambda: other.sensor_records("sensor-a") +
                          other.sensor_records("sensor-b") == 100, 20)
    m = other.metrics()
    assert m["pdns_relay_store_records_total"] == 0 and m["pdns_relay_store_buffered_records"] == 100
    c = cluster.client(cluster.master_of(cluster.client(cluster.alive()[0])
                                         .cluster("keyslot", "st:layout")))
    assert c.get("st:layout") == b"shards 12 ip-by-prefix ip-name r-rel"


def replicas_hold_their_masters(cluster):
    """Each shard's replica holds what its master holds, types and all."""
    for p in cluster.masters():
        master = cluster.client(p)
        rep = master.info("replication")["slave0"]
        replica = redis.Redis(host="127.0.0.1", port=int(rep["port"]),
                              single_connection_client=True)
        replica.execute_command("READONLY")
        wait_synced(master, replica)
        want, got = typed(master), typed(replica)
        assert len(want) > 50 and not differences(want, got), differences(want, got)


def test_index_trees_moves_a_cluster_store_shard_by_shard(tree_cluster, redis_server,
                                                          relay_factory):
    """`pdns-relay index-trees` on a cluster's store of sorted sets: every
    shard's index keys become trees on their masters and replicas, the
    layout records it, and the store answers as one server's does."""
    obs = make_records(seed=13)
    one = store_relay(relay_factory, redis_server, store={"module": False})
    many = cluster_relay(relay_factory, tree_cluster, console=False)
    for r in (one, many):
        send_d4(r, obs)
    for r in (one, many):
        wait_stored(r, len(obs), 30)
    many.stop()
    p = subprocess.run([BIN, "index-trees", "-c", many.config], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    assert "index keys moved into trees (12 shards)" in p.stdout, p.stdout
    assert 'st:layout "shards 12 ip-by-prefix ip-name r-rel ix-tree"' in p.stdout, p.stdout
    kinds = set()
    for port in tree_cluster.masters():
        c = tree_cluster.client(port)
        kinds |= {(c.type(k), k) for k in c.scan_iter(match="{s*}[fdr]:*", count=1000)}
        kinds |= {(c.type(k), k) for k in c.scan_iter(match="{s*}ix:*", count=1000)}
    assert {t for t, _ in kinds} == {b"pdns-tree"}, [k for t, k in kinds if t != b"pdns-tree"]
    replicas_hold_their_masters(tree_cluster)
    many.start()
    assert many.metrics()["pdns_relay_store_index_trees"] == 1
    a, b = Api(one.http_port), Api(many.http_port)
    for path in QUERIES:
        assert flat(all_pages(b, path, 7)) == flat(all_pages(a, path, 7)), path


def test_a_cluster_of_trees_answers_as_one_server_and_moves_its_slots(
        tree_cluster, redis_server, relay_factory, workdir):
    """store.index "tree" on a cluster whose nodes have the module's index
    type: every shard's indexes are trees; every query answers as the
    script's sorted sets on one server do; slots moved while the relay
    writes carry the trees with them (MIGRATE takes the type's RDB form)
    and nothing is lost or counted twice."""
    obs = make_records(seed=11)
    one = store_relay(relay_factory, redis_server, store={"module": False})
    many = cluster_relay(relay_factory, tree_cluster, console=False, index="tree")
    for r in (one, many):
        send_d4(r, obs)
    for r in (one, many):
        wait_stored(r, len(obs), 30)
    kinds, layouts = set(), []
    for p in tree_cluster.masters():
        c = tree_cluster.client(p)
        kinds |= {c.type(k) for k in c.scan_iter(match="{s*}ix:*", count=1000)}
        layouts += [c.get(k) for k in c.scan_iter(match="st:layout")]
    assert kinds == {b"pdns-tree"}, kinds
    assert layouts == [b"shards 12 ip-by-prefix ip-name r-rel ix-tree"], layouts
    a, b = Api(one.http_port), Api(many.http_port)
    for path in QUERIES:
        sep = "&" if "?" in path else "?"
        assert b.page(path + sep + "limit=100000")[0] == a.page(path + sep + "limit=100000")[0], \
            path
        assert flat(all_pages(b, path, 7)) == flat(all_pages(a, path, 7)), path
    # each shard's replica ran the master's calls (replicated as themselves)
    replicas_hold_their_masters(tree_cluster)
    many.stop()
    for p in tree_cluster.masters():
        tree_cluster.client(p).flushall()
    relay = slots_moved_during_ingest(tree_cluster, relay_factory, workdir, index="tree")
    assert relay.metrics()["pdns_relay_store_module"] == 1
