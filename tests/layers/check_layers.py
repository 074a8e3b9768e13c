#!/usr/bin/env python3
"""Checks that relay/, mixer/ and policy/ keep their layers: a file includes
only headers of its own layer or of layers below it.

    core <- wire <- store, mixer <- policy <- stages (relay/) <- net, api
         <- cli <- daemon, main

policy judges the mixer's entries (mixer_entry), so it sits above mixer;
the subcommands (cli) are entry points like the daemon and may use the
network sides (passwd makes credential lines with api/http_auth). Layers of
the same rank do not use each other (net does not include api).
Prints every violation with file:line and exits 1 if there is any."""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
RANK = {"relay/core": 0, "relay/wire": 1, "relay/store": 2, "mixer": 2,
        "policy": 3, "relay": 4, "relay/net": 5, "relay/api": 5,
        "relay/cli": 6}
TOP = {"relay/daemon.c", "relay/main.c"}   # above everything


def layer_of(path):
    d = os.path.dirname(path)
    return d if d in RANK else None


def main():
    headers = {}
    files = []
    for d in RANK:
        for f in sorted(os.listdir(os.path.join(ROOT, d))):
            if f.endswith((".c", ".h")):
                p = d + "/" + f
                files.append(p)
                if f.endswith(".h"):
                    headers.setdefault(f, []).append(p)
    bad = 0
    for p in files:
        me = layer_of(p)
        with open(os.path.join(ROOT, p)) as fh:
            for n, line in enumerate(fh, 1):
                m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                if not m:
                    continue
                name = os.path.basename(m.group(1))
                if name not in headers:
                    continue  # generated (lua) or test headers
                if len(headers[name]) != 1:
                    print("%s:%d: header %s exists in %s" % (p, n, name, headers[name]))
                    bad += 1
                    continue
                them = layer_of(headers[name][0])
                if p in TOP or them == me:
                    continue
                if RANK[them] >= RANK[me]:
                    print("%s:%d: %s (layer %s) includes %s (layer %s): only "
                          "lower layers may be used" % (p, n, p, me, name, them))
                    bad += 1
    print("layers: %d files, %d violations" % (len(files), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
