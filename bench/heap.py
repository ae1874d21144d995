#!/usr/bin/env python3
"""Summarises a dhat heap profile of the controller (`make bench HEAP_PROFILE=1`, src/heap_profile.rs).

The profile is written when the controller is told to stop, so its "at end" bytes are what the controller held
at that moment. Prints the total, then the bytes held grouped by the first frame of the controller's own code
and by the first frame of kube-runtime (which of its caches or queues holds them), then the largest allocation
sites with their stacks cut to the frames that say who allocated.

    python3 bench/heap.py .testbed/logs/bench-<epoch>-heap-0.json [--n 2000] [--top 25]
"""
import argparse
import collections
import json
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# dhat's frames read "0x…: function<generics> (path:line:col)", the path relative to its crate: the controller's
# own frames are those whose path is a file of this repository's src/ (hashbrown's "src/raw/mod.rs" is not).
FRAME = re.compile(r"^0x[0-9a-f]+: (?P<fn>.*?)(?: \((?P<path>[^()]*?):(?P<line>\d+)(?::\d+)?\))?$")


def parse(frame):
    m = FRAME.match(frame)
    if not m:
        return frame, None, None
    return m.group("fn"), m.group("path"), m.group("line")


def own(path):
    return bool(path) and path.startswith("src/") and os.path.isfile(os.path.join(ROOT, path))


def dependency(path):
    """'kube-runtime-5.0.0/src/events.rs' -> True: a crate from the registry (its directory names its version)."""
    return bool(path) and re.match(r"^[a-z0-9_-]+-\d+\.\d+\.\d+[^/]*/", path) is not None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("profile")
    p.add_argument("--n", type=int, default=0, help="SecretSyncs the controller held: adds bytes per object")
    p.add_argument("--top", type=int, default=25)
    a = p.parse_args()
    with open(a.profile) as f:
        d = json.load(f)
    ftbl = d["ftbl"]
    total_b = sum(pp["eb"] for pp in d["pps"])
    total_k = sum(pp["ebk"] for pp in d["pps"])
    per = lambda b: f"  ({b / a.n:,.0f} B per object)" if a.n else ""
    print(f"held at end: {total_b / 1048576:.1f} MiB in {total_k:,} blocks{per(total_b)}")
    print(f"peak: {d.get('tg', 0) / 1e6:.1f} s after start; end: {d.get('te', 0) / 1e6:.1f} s")

    sites = []
    by_own = collections.Counter()
    by_dep = collections.Counter()
    for pp in d["pps"]:
        if pp["eb"] == 0:
            continue
        frames = [parse(ftbl[i]) for i in pp["fs"]]
        first_own = next((f"{p}:{l} {fn[:70]}" for fn, p, l in frames if own(p)), "(no frame of the controller)")
        # The innermost dependency frame outside the allocator and the collections: who asked for the memory.
        first_dep = next((f"{p}:{l} {fn[:70]}" for fn, p, l in frames
                          if dependency(p) and not re.match(r"^(dhat|hashbrown|slab|bytes|allocator-api2)-", p)),
                         "(none)")
        by_own[first_own] += pp["eb"]
        by_dep[first_dep] += pp["eb"]
        sites.append((pp["eb"], pp["ebk"], [f"{fn[:90]} ({p}:{l})" for fn, p, l in frames
                                            if own(p) or (dependency(p) and not p.startswith("dhat-"))]))

    def table(title, counter):
        print(f"\n{title}")
        for name, b in counter.most_common(a.top):
            print(f"  {b / 1024:10,.0f} KiB {100 * b / max(total_b, 1):5.1f}%{per(b):>24}  {name[:150]}")

    table("by the first frame of the controller's own code", by_own)
    table("by the innermost frame of a dependency (what holds it)", by_dep)
    print("\nlargest allocation sites")
    for b, k, frames in sorted(sites, key=lambda s: -s[0])[: a.top]:
        print(f"  {b / 1024:10,.0f} KiB in {k:,} blocks{per(b)}")
        for f in frames[:8]:
            print(f"        {f[:160]}")


if __name__ == "__main__":
    main()
