"""d4-core analyzer queue consumer against a real redis-server: it drains
analyzer:8:<uuid>, and killing the relay with SIGKILL in the middle loses
no line (the reliable-queue pattern)."""
import collections
import signal
import time

import pytest

QUEUE = "6d2b1f3c4a5e4f60a1b2c3d4e5f60718"
SRC = "analyzer:8:" + QUEUE
PROC = "{%s}:pdns-relay:e2e:processing" % SRC


def in_processing(r):
    """Lines in the relay's processing lists: one per batch, PROC:<id> (an
    older relay's single list PROC too)."""
    return sum(r.llen(k) for k in [PROC.encode()] + list(r.scan_iter(match=PROC + ":*"))
               if not k.endswith(b":id"))


def lines(n, start=0):
    return [("1795930651.%06d||10.0.0.1||10.0.0.2||IN||host%d.q.test.||A||10.9.%d.%d||60||1"
             % (i % 1000000, i, (i >> 8) & 255, i & 255)).encode() for i in range(start, start + n)]


def queue_cfg(redis, batch=500):
    return {"d4core": {"redis": "redis://127.0.0.1:%d/0" % redis.port, "batch": batch,
                       "queues": [{"uuid": QUEUE, "sensor": "d4core-east"}]}}


def push(r, items):
    # d4-core pushes with LPUSH; the consumer takes the oldest (RPOP side)
    for i in range(0, len(items), 5000):
        r.lpush(SRC, *items[i:i + 5000])


def asleep(redis):
    """True while redis is inside a DEBUG SLEEP (it does not answer)."""
    import redis as redispy
    try:
        redispy.Redis(port=redis.port, socket_timeout=0.2).ping()
        return False
    except redispy.exceptions.TimeoutError:
        return True


def test_drains_queue(redis_server, relay_factory):
    r = redis_server.client()
    items = lines(3000) + [b"not a passivedns line"]
    push(r, items)
    relay = relay_factory(redis=redis_server, extra=queue_cfg(redis_server)).start()
    assert relay.wait_for(lambda: r.llen(SRC) == 0 and in_processing(r) == 0, 20)
    assert relay.wait_for(lambda: relay.metrics()['pdns_relay_records_total{source="queue"}'] == 3000)
    m = relay.metrics()
    assert m['pdns_relay_rejected_lines_total{source="queue",reason="fields"}'] == 1
    out = relay.output_lines()
    assert len(out) == 3000
    assert out[0]["rrname"] == "host0.q.test"  # oldest first
    assert all(o["sensor_id"] == "d4core-east" for o in out)
    # new lines arriving later are picked up too
    push(r, lines(10, 5000))
    assert relay.wait_for(lambda: len(relay.output_lines()) == 3010)


def test_an_empty_queue_is_asked_five_times_a_second(redis_server, relay_factory):
    """A drained queue is asked again every 200 ms, not in a loop of round
    trips that keeps d4-core's Redis busy (and the relay's core) while
    nothing comes; a line pushed later is still taken."""
    r = redis_server.client()
    push(r, lines(10))
    relay = relay_factory(redis=redis_server, extra=queue_cfg(redis_server)).start()
    assert relay.wait_for(lambda: r.llen(SRC) == 0 and in_processing(r) == 0, 20)

    def moves():
        return r.info("commandstats").get("cmdstat_eval", {}).get("calls", 0)
    before, t0 = moves(), time.time()
    time.sleep(2)  # an upper bound on what happens meanwhile: a slow run asks less
    # at most two moves in flight per wait, and the trims of the first batch
    assert (moves() - before) / (time.time() - t0) <= 15
    push(r, lines(1, 100))
    assert relay.wait_for(lambda: relay.metrics()['pdns_relay_records_total{source="queue"}'] == 11)


def test_kill9_loses_nothing(redis_server, relay_factory):
    r = redis_server.client()
    n = 200000
    push(r, lines(n))
    relay = relay_factory(redis=redis_server, extra=queue_cfg(redis_server, batch=1000)).start()
    # kill it while it is in the middle of the queue
    assert relay.wait_for(lambda: r.llen(SRC) < n - 20000, 20)
    relay.stop(signal.SIGKILL)
    left = r.llen(SRC) + in_processing(r)
    assert 0 < left < n
    relay.start()
    assert relay.wait_for(lambda: r.llen(SRC) == 0 and in_processing(r) == 0, 60)
    names = collections.Counter(o["rrname"] for o in relay.output_lines(torn_ok=1))
    missing = [i for i in range(n) if names["host%d.q.test" % i] == 0]
    assert missing == []
    # the output file is a copy on the side, written at ingest: the batches
    # in flight at the kill (moved, parsed, or in the store's calls: 16 at
    # most) may come twice there, no more
    assert sum(names.values()) - n <= 16 * 1000
    # the store recognises them: every record exactly once
    assert relay.wait_for(lambda: int(r.hget("st:info", "records") or 0) >= n, 20)
    assert int(r.hget("st:info", "records")) == n
    relay.stop()


def test_redis_down_then_up(redis_server, relay_factory):
    redis_server.stop()
    relay = relay_factory(redis=redis_server, extra=queue_cfg(redis_server)).start(ready=False)
    assert relay.wait_for(lambda: "unavailable" in relay.log_text())
    assert relay.proc.poll() is None  # keeps running without Redis
    assert relay.readyz()[0] == 503
    redis_server.start()
    r = redis_server.client()
    push(r, lines(100))
    assert relay.wait_for(lambda: len(relay.output_lines()) == 100, 40)
    log = relay.log_text()
    outages = [l for l in log.splitlines() if "d4-core Redis" in l and "unavailable" in l]
    assert len(outages) == 1  # logged once, not per retry
    assert "d4-core Redis: connected again" in log
    assert relay.metrics()["pdns_relay_redis_disconnects_total"] >= 1


@pytest.mark.parametrize("batch", [500, 100])
def test_kill9_between_store_and_trim_stores_nothing_twice(redis_server, relay_factory,
                                                          debug_redis, batch):
    """The relay is killed after the store took a queue batch and before it
    trimmed the batch off the processing list (the store's Redis is held
    busy meanwhile, so the order is certain): after the restart the batch is
    read again from the processing list, and the store recognises it. With
    batches of 100 the five share store calls (as many as follow each other
    before the store's tick closes the call: on a slow machine not all
    five), and after the restart each batch the killed call held is read
    again on its own and recognised by its id; the others are stored."""
    import threading
    q, st = redis_server.client(), debug_redis.client()
    cfg = queue_cfg(redis_server, batch=batch)
    cfg["mixer"] = {"enabled": False}
    relay = relay_factory(redis=debug_redis, extra=cfg).start()
    sleeper = debug_redis.client()
    held = threading.Thread(target=lambda: sleeper.execute_command("DEBUG", "SLEEP", 8))
    held.start()
    assert relay.wait_for(lambda: asleep(debug_redis), 10)  # inside DEBUG SLEEP
    push(q, lines(500))
    assert relay.wait_for(lambda: in_processing(q) == 500, 10)
    # the batch's EVAL is on its way to the sleeping Redis
    assert relay.wait_for(lambda: relay.metrics()["pdns_relay_store_in_flight"] == 1, 10)
    time.sleep(0.2)  # from hiredis's buffer into the socket: the next loop turn
    relay.stop(signal.SIGKILL)
    held.join()
    # awake again, Redis reads the batch's EVAL (a few hundred KiB, over
    # several turns of its loop) and applies it: stored, not trimmed
    assert relay.wait_for(lambda: st.hget("st:info", "records") is not None, 20)
    stored = int(st.hget("st:info", "records"))  # the killed call's batches, whole
    assert stored % batch == 0 and 0 < stored <= 500, stored
    assert batch == 100 or stored == 500
    assert in_processing(q) == 500
    relay.start()
    assert relay.wait_for(lambda: in_processing(q) == 0 and q.llen(SRC) == 0, 20)
    assert relay.wait_for(
        lambda: relay.metrics()["pdns_relay_store_duplicate_batches_total"] == stored // batch,
        10)
    assert int(st.hget("st:info", "records")) == 500  # not 1000
    assert "recovered 500 lines" in relay.log_text()


def test_consecutive_batches_go_to_the_store_in_one_call(redis_server, relay_factory):
    """Batches of one queue that follow each other are stored by one call,
    as `import` stores its lines (up to store.batch entries, 16 times as
    many records, or eight batches): 20 batches of 100 lines, most of them
    repeats, take a few store calls, not 20; every line is stored once."""
    r = redis_server.client()
    items = lines(200) * 10
    push(r, items)
    cfg = queue_cfg(redis_server, batch=100)
    cfg["mixer"] = {"enabled": False}
    relay = relay_factory(redis=redis_server, extra=cfg).start()
    assert relay.wait_for(lambda: r.llen(SRC) == 0 and in_processing(r) == 0, 20)
    assert relay.wait_for(lambda: int(r.hget("st:info", "records") or 0) == 2000, 10)
    m = relay.metrics()
    assert m["pdns_relay_queue_batches_total"] == 20
    assert m["pdns_relay_store_batches_total"] <= 10
    assert int(r.hget("st:info", "triples")) == 200
    assert len(r.get("st:qapplied:e2e:" + SRC).split()) == 20


def test_moves_shrink_with_the_store_calls(redis_server, relay_factory, debug_redis):
    """A queue batch is one store call whatever its size: while the store's
    calls shrink (Redis slow: held by DEBUG SLEEP, store.call_ms 100), the
    consumer moves fewer lines at a time, as many as make a call's entries
    (here every line is a new triple: one entry a line); once Redis is
    quick again it moves a full call's worth, store.batch (1000) lines,
    within d4core.batch (2000). Every line is stored once."""
    from conftest import held_busy
    q, st = redis_server.client(), debug_redis.client()
    cfg = queue_cfg(redis_server, batch=2000)
    cfg["mixer"] = {"enabled": False}
    cfg["store"] = {"call_ms": 100, "batch": 1000}
    relay = relay_factory(redis=debug_redis, extra=cfg).start()

    def window():
        return relay.metrics()["pdns_relay_queue_move_lines"]
    assert window() == 2000
    with held_busy(debug_redis):
        push(q, lines(40000))
        # each store call sent before the first answer waits out a dozen
        # sleeps (test_store_calls_shrink_while_redis_is_slow_and_grow_back)
        assert relay.wait_for(lambda: window() < 200, 120), relay.log_text()[-1500:]
    assert relay.wait_for(lambda: q.llen(SRC) == 0 and in_processing(q) == 0, 60)
    push(q, lines(40000, 40000))
    assert relay.wait_for(lambda: window() == 1000, 30)
    assert relay.wait_for(lambda: q.llen(SRC) == 0 and in_processing(q) == 0, 30)
    assert relay.wait_for(lambda: int(st.hget("st:info", "records") or 0) == 80000, 20)
    assert int(st.hget("st:info", "triples")) == 80000


def test_no_more_batches_in_flight_than_the_store_remembers(redis_server, relay_factory,
                                                           debug_redis):
    """While the store's Redis is held busy, the consumer moves batches
    ahead (parsed while the next are moved and the ones before are
    stored) but never more than 16, half the 32 ids the store keeps: after
    a crash each of them is recognised, so none is stored twice."""
    import threading
    q, st = redis_server.client(), debug_redis.client()
    cfg = queue_cfg(redis_server, batch=100)
    cfg["mixer"] = {"enabled": False}
    relay = relay_factory(redis=debug_redis, extra=cfg).start()
    sleeper = debug_redis.client()
    held = threading.Thread(target=lambda: sleeper.execute_command("DEBUG", "SLEEP", 5))
    held.start()
    assert relay.wait_for(lambda: asleep(debug_redis), 10)
    push(q, lines(4000))
    seen = []
    while held.is_alive():
        seen.append((in_processing(q), q.llen(PROC + ":id")))
        time.sleep(0.01)
    # 16 batches of 100 wait, no more
    assert max(a for a, _ in seen) == 1600 and max(b for _, b in seen) == 16
    assert relay.wait_for(lambda: q.llen(SRC) == 0 and in_processing(q) == 0, 20)
    assert relay.wait_for(lambda: int(st.hget("st:info", "records") or 0) == 4000, 10)
    assert len(st.get("st:qapplied:e2e:" + SRC).split()) == 32


def test_recovery_takes_each_batch_once(redis_server, relay_factory, workdir):
    """Two batches were in flight at a crash (the consumer moves the next
    one while the store writes the one before): the processing list holds
    both, with their ids oldest first. After the restart each is read as
    its own unit, and the one the store already applied is recognised:
    here the store's marker says the older batch (3 lines) is in, so only
    the newer (2 lines) is stored. A processing list from an older relay
    (one id as a string) is read as one unit."""
    from conftest import Redis
    store = Redis(workdir)
    store.start()
    try:
        q, st = redis_server.client(), store.client()
        older, newer = lines(3, 100), lines(2, 200)
        # LPUSH order: the oldest line is rightmost
        q.lpush(PROC, *older)
        q.lpush(PROC, *newer)
        q.lpush(PROC + ":id", "aaaa000000000001 3", "bbbb000000000002 2")
        st.set("st:qapplied:e2e:" + SRC, "aaaa000000000001")
        relay = relay_factory(redis=store, extra=queue_cfg(redis_server)).start()
        assert relay.wait_for(lambda: in_processing(q) == 0 and q.llen(PROC + ":id") == 0, 20)
        assert relay.wait_for(lambda: int(st.hget("st:info", "records") or 0) == 2, 10)
        assert relay.wait_for(
            lambda: relay.metrics()["pdns_relay_store_duplicate_batches_total"] == 1, 10)
        assert {o["rrname"] for o in relay.output_lines()} >= {"host200.q.test", "host201.q.test"}
        assert "recovered 5 lines" in relay.log_text()
        relay.stop()
        # an older relay's processing list: one id, as a string
        q.lpush(PROC, *lines(4, 300))
        q.set(PROC + ":id", "cccc000000000003")
        relay.start()
        assert relay.wait_for(lambda: in_processing(q) == 0, 20)
        assert relay.wait_for(lambda: int(st.hget("st:info", "records") or 0) == 6, 10)
        # and the marker keeps the ids applied, newest first
        assert st.get("st:qapplied:e2e:" + SRC).decode().split() == \
            ["cccc000000000003", "bbbb000000000002", "aaaa000000000001"]
        relay.stop()
        # ids that do not match the lines (an edited list): read once as
        # one batch, and the id list goes with it
        q.lpush(PROC, *lines(3, 400))
        q.lpush(PROC + ":id", "dddd000000000004 5", "eeee000000000005 1")
        relay.start()
        assert relay.wait_for(lambda: in_processing(q) == 0 and not q.exists(PROC + ":id"), 20)
        assert relay.wait_for(lambda: int(st.hget("st:info", "records") or 0) == 9, 10)
        assert "do not match its 3 lines" in relay.log_text()
        relay.stop()
        # each batch in a list of its own (this relay's form), the oldest
        # still in an older relay's single list: each stored once, in order
        # (the newer with a line of 8 MB, which stays in Redis as a stand-in)
        q.lpush(PROC, *lines(2, 500))
        q.lpush(PROC + ":ffff000000000007", *(lines(3, 600) + [b"y" * (8 << 20)]))
        q.lpush(PROC + ":id", "ffff000000000006 2", "ffff000000000007 4")
        q.config_resetstat()
        relay.start()
        assert relay.wait_for(lambda: in_processing(q) == 0 and not q.exists(PROC + ":id"), 20)
        assert relay.wait_for(lambda: int(st.hget("st:info", "records") or 0) == 14, 10)
        assert relay.metrics()[
            'pdns_relay_rejected_lines_total{source="queue",reason="too_long"}'] == 1
        assert q.info("commandstats")["cmdstat_lset"]["calls"] == 1  # the stand-in
        assert st.get("st:qapplied:e2e:" + SRC).decode().split()[:2] == \
            ["ffff000000000007", "ffff000000000006"]
        assert not list(q.scan_iter(match=PROC + "*"))
    finally:
        store.stop()


def test_two_queues_recover_every_batch_left(redis_server, relay_factory):
    """Two queues each left with 32 batches in their processing lists (as
    many as an id list keeps): every batch is stored once and trimmed, the
    second queue's recovery waiting until the first's batches are trimmed."""
    other = "7e3c2a4d5b6f4071b2c3d4e5f6071829"
    q = redis_server.client()
    procs = []
    for k, uuid in enumerate((QUEUE, other)):
        proc = "{analyzer:8:%s}:pdns-relay:e2e:processing" % uuid
        procs.append(proc)
        for b in range(32):
            bid = "%04x%012x" % (k + 1, b)
            q.lpush("%s:%s" % (proc, bid), *lines(2, 1000 * k + 10 * b))
            q.lpush(proc + ":id", "%s 2" % bid)
    cfg = queue_cfg(redis_server)
    cfg["d4core"]["queues"].append({"uuid": other, "sensor": "d4core-west"})
    relay = relay_factory(redis=redis_server, extra=cfg).start()
    assert relay.wait_for(
        lambda: relay.metrics()['pdns_relay_records_total{source="queue"}'] == 128, 20)
    assert relay.wait_for(lambda: not any(q.exists(p + ":id") for p in procs), 20)
    assert relay.wait_for(lambda: not [k for p in procs for k in q.scan_iter(match=p + "*")], 20)
    assert int(q.hget("st:info", "records")) == 128


def test_a_line_longer_than_the_bound_is_refused_and_the_rest_stored(redis_server,
                                                                     relay_factory):
    """A queue line of 600 KB (longer than d4.max_line, and than the blocks
    the relay reads replies into) among 5,000 ordinary lines in ten
    batches: it is refused and counted, every other line stored."""
    r = redis_server.client()
    items = lines(2500) + [b"x" * 600000] + lines(2500, 2500)
    push(r, items)
    relay = relay_factory(redis=redis_server, extra=queue_cfg(redis_server)).start()
    assert relay.wait_for(lambda: r.llen(SRC) == 0 and in_processing(r) == 0, 20)
    assert relay.wait_for(
        lambda: relay.metrics()['pdns_relay_records_total{source="queue"}'] == 5000, 10)
    m = relay.metrics()
    assert m['pdns_relay_rejected_lines_total{source="queue",reason="too_long"}'] == 1
    assert int(r.hget("st:info", "records")) == 5000
    assert "longer than the line bound" in relay.log_text()


def peak_kib(relay):
    """The relay's peak resident memory (VmHWM), KiB."""
    with open("/proc/%d/status" % relay.proc.pid) as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))


def test_lines_longer_than_the_bound_never_reach_the_relay(redis_server, relay_factory):
    """d4-core's Redis is outside the relay: four lines of 48 MB among
    2,000 ordinary ones (a sensor that sends no newline) stay in Redis.
    The relay reads each in its place as a short stand-in, refuses and
    counts it, stores every other line, and its memory never holds one
    (d4.max_line 65536, the default; batches of 500)."""
    r = redis_server.client()
    relay = relay_factory(redis=redis_server, extra=queue_cfg(redis_server)).start()
    assert relay.wait_for(lambda: relay.metrics()["pdns_relay_store_up"] == 1)
    before = peak_kib(relay)
    big = [bytes([65 + i]) * (48 << 20) for i in range(4)]
    push(r, lines(500) + big[:2] + lines(1000, 500) + big[2:] + lines(500, 1500))  # one LPUSH
    del big
    assert relay.wait_for(lambda: relay.metrics()['pdns_relay_records_total{source="queue"}']
                          == 2000, 60)
    assert relay.wait_for(lambda: r.llen(SRC) == 0 and in_processing(r) == 0, 20)
    m = relay.metrics()
    assert m['pdns_relay_rejected_lines_total{source="queue",reason="too_long"}'] == 4
    assert relay.wait_for(lambda: int(r.hget("st:info", "records") or 0) == 2000, 20)
    grew = peak_kib(relay) - before
    assert grew < 48 << 10, grew  # less than one such line
    assert "longer than the line bound" in relay.log_text()


def test_a_d4core_redis_that_denies_memory_still_drains(redis_server, relay_factory, workdir):
    """Where d4-core's Redis denies MEMORY to the relay's user (an ACL),
    the bound on long lines is off, nothing else: long lines reach the
    relay, which refuses them, and every other line is stored."""
    from conftest import Redis
    d4 = Redis(workdir, extra=["--user", "relay", "on", ">pw", "~*", "&*", "+@all", "-memory"])
    d4.start()
    try:
        r = d4.client()
        push(r, lines(500) + [b"x" * (8 << 20)] + lines(500, 500))
        cfg = queue_cfg(redis_server)
        cfg["d4core"]["redis"] = "redis://relay:pw@127.0.0.1:%d/0" % d4.port
        relay = relay_factory(redis=redis_server, extra=cfg).start()
        assert relay.wait_for(lambda: r.llen(SRC) == 0 and in_processing(r) == 0, 30)
        assert relay.wait_for(
            lambda: int(redis_server.client().hget("st:info", "records") or 0) == 1000, 20)
        m = relay.metrics()
        assert m['pdns_relay_rejected_lines_total{source="queue",reason="too_long"}'] == 1
        assert "cannot move" not in relay.log_text()
        assert relay.log_text().count("d4-core's Redis refuses MEMORY USAGE") == 1
        assert any(e["reason"] == "command" and "memory" in e["object"] for e in r.acl_log())
    finally:
        d4.stop()
