#!/usr/bin/python3
"""Writes N synthetic passivedns CSV lines (default layout) to stdout:
a Zipf-like mix of popular and rare names, A/AAAA/CNAME/TXT/MX answers,
deterministic for a given seed. Used by the benchmarks and `make run`."""
import random
import sys


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    rnd = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 4)
    out = sys.stdout
    t = 1795930000.0
    tlds = ["example", "test", "example-corp.test", "shop.example", "cdn.example"]
    buf = []
    for i in range(n):
        t += rnd.expovariate(1000.0)
        k = int(rnd.paretovariate(1.1)) % 50000
        name = "host%d.%s." % (k, tlds[k % len(tlds)])
        r = rnd.random()
        if r < 0.55:
            rt, ans = "A", "10.%d.%d.%d" % (k % 200, (k >> 3) % 250, k % 251)
        elif r < 0.70:
            rt, ans = "AAAA", "2001:db8:%x::%x" % (k % 4096, k)
        elif r < 0.88:
            rt, ans = "CNAME", "edge-%03d.cdn.example." % (k % 97)
        elif r < 0.95:
            rt, ans = "TXT", '"v=spf1 ip4:10.%d.0.0/16 -all"' % (k % 200)
        else:
            rt, ans = "MX", "mx%d.mail.example." % (k % 3)
        buf.append("%.6f||10.0.0.%d||10.1.0.1||IN||%s||%s||%s||%d||%d\n"
                   % (t, i % 250, name, rt, ans, 300 + k % 3000, 1 + k % 7))
        if len(buf) >= 10000:
            out.write("".join(buf))
            buf = []
    out.write("".join(buf))


if __name__ == "__main__":
    main()
