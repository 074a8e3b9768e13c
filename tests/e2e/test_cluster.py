"""The partner outboxes on a real Redis Cluster: 3 masters and 3 replicas
on loopback (redis-server --cluster-enabled yes, `redis-cli --cluster
create`). Relay A finds the cluster from one seed, routes each outbox
command to the master of its key's slot, and delivers to relay B:
- when the master holding B's outbox is killed (-9), its replica takes
  over and B still gets every batch, none twice;
- when B's outbox slot is moved to another master while A delivers
  (MIGRATING/IMPORTING: ASK, then MOVED), nothing is lost or doubled.
A runs without a store here (test_cluster_store.py has the store on the
cluster)."""
import signal
import subprocess

import pytest

from test_partners import a_and_b, batch, policy_to_b, rrnames, stream

redis = pytest.importorskip("redis")


OUTBOX = "{pdns-relay:relay-a:relay-b}:outbox"


def a_and_b_on(cluster, relay_factory, workdir, tmp_path, first):
    """B, and A with its outboxes on the cluster (no store), started; the
    same `first` names sent by two sensors, delivered to B."""
    a, b = a_and_b(relay_factory, None, workdir, tmp_path, a_extra={"redis": cluster.url()})
    policy_to_b(a, b, tmp_path)
    a.start()
    for name in ("sensor-a", "sensor-b"):
        stream(a, name, batch("first", first))
    assert b.wait_for(lambda: len(rrnames(b)) == first, 30), a.log_text()[-1500:]
    return a, b


def slot_of(cluster, key):
    return cluster.client(cluster.alive()[0]).cluster("keyslot", key)


def test_outbox_survives_a_master_failover(cluster, relay_factory, workdir, tmp_path):
    a, b = a_and_b_on(cluster, relay_factory, workdir, tmp_path, 20)
    slot = slot_of(cluster, OUTBOX)
    master = cluster.master_of(slot)
    reads = a.metrics()["pdns_relay_outbox_cluster_map_reads_total"]
    cluster.procs[master].send_signal(signal.SIGKILL)
    cluster.procs[master].wait()
    # batches made while the master is dead and while its replica takes over
    for i in range(3):
        for name in ("sensor-a", "sensor-b"):
            # one session per sensor at a time: the next once this one is in
            before = a.sensor_records(name)
            stream(a, name, batch("f2-%d" % i, 10))
            assert a.wait_for(lambda: a.sensor_records(name) == before + 10, 20)
    cluster.wait_ok()
    assert cluster.master_of(slot) not in (None, master)
    # the relay reads the map again every second while a master has no
    # replica (the promoted one here): it counts 3 masters once it has
    assert a.wait_for(lambda: a.metrics()["pdns_relay_outbox_cluster_masters"] == 3, 30)
    assert b.wait_for(lambda: len(rrnames(b)) == 50, 60), a.log_text()[-2500:]
    names = rrnames(b)
    assert len(set(names)) == 50, "a batch arrived twice"
    # A saw the master go and read the map again to find its replica
    assert a.wait_for(lambda: a.metrics()["pdns_relay_outbox_cluster_map_reads_total"] > reads)
    assert a.metrics()["pdns_relay_outbox_cluster_ready"] == 1
    # what A sees, as an operator asks for it
    from conftest import BIN
    st = subprocess.run([BIN, "cluster-status", "-c", a.config], capture_output=True,
                        text=True, timeout=30)
    assert st.returncode == 0, st.stdout + st.stderr
    assert "ready" in st.stdout and "cluster: 3 masters" in st.stdout
    assert "slots 0-" in st.stdout and "16383" in st.stdout
    assert "127.0.0.1:%d" % master not in st.stdout  # the dead master is out of the map
    assert "partner relay-b: " in st.stdout and "batches waiting" in st.stdout
    cluster.stop()
    st = subprocess.run([BIN, "cluster-status", "-c", a.config, "--timeout", "1"],
                        capture_output=True, text=True, timeout=30)
    assert st.returncode == 1 and "NOT READY" in st.stdout


def test_outbox_follows_its_slot_to_another_master(cluster, relay_factory, workdir, tmp_path):
    a, b = a_and_b_on(cluster, relay_factory, workdir, tmp_path, 10)
    slot = slot_of(cluster, OUTBOX)
    src = cluster.master_of(slot)
    dst = next(p for lo, hi, p in cluster.slots() if p != src)
    src_id, dst_id = cluster.node_id(src), cluster.node_id(dst)
    s, d = cluster.client(src), cluster.client(dst)
    # the slot half-way: keys may be on either side (ASK redirections)
    d.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src_id)
    s.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
    for name in ("sensor-a", "sensor-b"):
        stream(a, name, batch("m2", 10))
    assert b.wait_for(lambda: len(rrnames(b)) == 20, 30), a.log_text()[-1500:]
    # the outbox's key stayed on src, or was made on dst after an ASK
    keys = s.execute_command("CLUSTER GETKEYSINSLOT", slot, 1000)
    if keys:
        s.execute_command("MIGRATE", "127.0.0.1", dst, "", 0, 5000, "KEYS", *keys)
    for p in cluster.alive():
        c = cluster.client(p)
        if c.execute_command("ROLE")[0] == b"master":
            c.execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
    cluster.wait_ok()
    # now every command for the outbox is MOVED to dst until A re-reads the map
    for name in ("sensor-a", "sensor-b"):
        stream(a, name, batch("m3", 10))
    assert b.wait_for(lambda: len(rrnames(b)) == 30, 30), a.log_text()[-1500:]
    assert len(set(rrnames(b))) == 30
    assert a.metrics()['pdns_relay_outbox_cluster_redirects_total{kind="moved"}'] >= 1
    assert not s.execute_command("CLUSTER COUNTKEYSINSLOT", slot)


def test_a_batch_the_master_never_replicated_is_appended_again(cluster, relay_factory,
                                                               workdir, tmp_path):
    """Redis replicates asynchronously: a batch the outbox's master took
    but never passed to its replica is gone when that master dies and the
    replica takes over. A keeps each batch until a replica has it (WAIT)
    and appends it again, once, to the new master: B (away meanwhile, so
    the batch waits in the outbox) gets it after the failover."""
    a, b = a_and_b_on(cluster, relay_factory, workdir, tmp_path, 10)
    b.stop()
    slot = slot_of(cluster, OUTBOX)
    master = cluster.master_of(slot)
    m = cluster.client(master)
    replica = next(p for p in cluster.alive() if p != master and
                   cluster.client(p).execute_command("ROLE")[0] == b"slave" and
                   int(cluster.client(p).execute_command("ROLE")[2]) == master)
    # the replica stops reading, and its link is cut: what the master takes
    # from now on reaches no replica
    cluster.procs[replica].send_signal(signal.SIGSTOP)
    try:
        m.execute_command("CLIENT KILL TYPE replica")
        before = m.xlen(OUTBOX)
        for name in ("sensor-a", "sensor-b"):
            stream(a, name, batch("r2", 10))
        assert a.wait_for(lambda: m.xlen(OUTBOX) > before, 20)
        cluster.procs[master].send_signal(signal.SIGKILL)
        cluster.procs[master].wait()
    finally:
        cluster.procs[replica].send_signal(signal.SIGCONT)
    cluster.wait_ok()
    assert cluster.master_of(slot) == replica
    b.start()
    assert b.wait_for(lambda: len(rrnames(b)) == 20, 60), a.log_text()[-2500:]
    assert len(set(rrnames(b))) == 20
