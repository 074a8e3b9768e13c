#!/usr/bin/python3
"""Writes N passivedns CSV lines (default layout) to stdout in which about
NEW (0..1) of the records are triples not seen before, the rest repeats:
usage: gen_pdns.py N NEW [SEED].

The distribution, meant to look like a sensor network's day:
  - 5,000 zones under 40 TLD-like suffixes, popular by a Pareto(1.2) law;
  - a new triple: a fresh owner name in a zone (one to three labels of 3
    to 20 characters, a long tail), of type A 50 %, AAAA 20 %, CNAME 15 %
    (a chain: the name points at a fresh target in a CDN zone, and the
    next record gives that target an A: two new triples), TXT 7 %, MX 4 %,
    NS 4 %; addresses drawn from 4,096 /20s (16.7 M addresses: few
    names share an address, or a /28);
  - a repeat: a triple emitted before, 80 % of the time one of the first
    10 % emitted (the popular head), else any;
  - times advance by an exponential gap (mean 1 ms), TTLs 60 to 86,400 s,
    counts 1.
Deterministic for a given seed."""
import random
import sys

TYPES = (("A", 0.50), ("AAAA", 0.70), ("CNAME", 0.85), ("TXT", 0.92), ("MX", 0.96),
         ("NS", 1.0))


def main():
    n = int(sys.argv[1])
    new = float(sys.argv[2])
    rnd = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 19)
    tlds = ["tld%d" % i for i in range(40)]
    zones = ["z%d.%s" % (i, tlds[i % 40]) for i in range(5000)]
    letters = "abcdefghijklmnopqrstuvwxyz0123456789-"
    seen = []
    out, buf = sys.stdout, []
    t = 1795930000.0
    serial = [0]

    def label():
        k = rnd.randint(3, 20)
        serial[0] += 1
        return "".join(rnd.choice(letters[:36]) for _ in range(k)) + "%x" % serial[0]

    def fresh_name(zone):
        return ".".join(label() for _ in range(rnd.choice((1, 1, 2, 3)))) + "." + zone + "."

    def addr4():
        net = rnd.randrange(4096)
        return "10.%d.%d.%d" % (net >> 4, (net & 15) * 16 + rnd.randrange(16), rnd.randrange(256))

    def new_triples():
        zone = zones[min(int(rnd.paretovariate(1.2)) - 1, 4999)]
        name = fresh_name(zone)
        r = rnd.random()
        rt = next(t_ for t_, p in TYPES if r < p)
        if rt == "A":
            return [(name, "A", addr4())]
        if rt == "AAAA":
            return [(name, "AAAA", "2001:db8:%x:%x::%x:%x" % (
                rnd.randrange(4096), rnd.randrange(65536), rnd.randrange(65536),
                rnd.randrange(1, 65536)))]
        if rt == "CNAME":
            target = fresh_name("cdn%d.example" % rnd.randrange(50))
            return [(name, "CNAME", target), (target, "A", addr4())]
        if rt == "TXT":
            return [(name, "TXT", '"v=spf1 ip4:%s -all"' % addr4())]
        if rt == "MX":
            return [(name, "MX", "mx%d.%s." % (rnd.randrange(3), zone))]
        return [(name, "NS", "ns%d.%s." % (rnd.randrange(4), zones[rnd.randrange(5000)]))]

    i = 0
    while i < n:
        if not seen or rnd.random() < new:
            batch = new_triples()
            seen.extend(batch)
        else:
            head = max(len(seen) // 10, 1)
            batch = [seen[rnd.randrange(head) if rnd.random() < 0.8 else rnd.randrange(len(seen))]]
        for name, rt, ans in batch[:n - i]:
            t += rnd.expovariate(1000.0)
            buf.append("%.6f||10.0.0.%d||10.1.0.1||IN||%s||%s||%s||%d||1\n"
                       % (t, i % 250, name, rt, ans, rnd.choice((60, 300, 3600, 86400))))
            i += 1
        if len(buf) >= 10000:
            out.write("".join(buf))
            buf = []
    out.write("".join(buf))


if __name__ == "__main__":
    main()
