#!/usr/bin/env python3
"""Side by side: several bench/results/*.json files as one Markdown table, plus the growth per SecretSync between
runs of the same dialect (RSS at rest and CPU per change).   Usage: bench/compare.py RESULT.json...
"""

import json
import sys


def get(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d or d[p] is None:
            return None
        d = d[p]
    return d


def fmt_dist(d):
    if not d or not d.get("count"):
        return "n/a"
    return f"{d['p50']} / {d['p90']} / {d['p99']} / {d['max']}"


def rest_per_refresh(r):
    """Store reads and writes per refresh (one reconcile at rest is one refresh of one object)."""
    rest = get(r, "phases", "rest")
    if rest.get("per_refresh"):
        return rest["per_refresh"]["reads"], rest["per_refresh"]["writes"]
    rec = rest["reconciles"]
    return round(rest["store_requests"]["reads"] / rec, 3), round(rest["store_requests"]["writes"] / rec, 3)


def api_per_refresh(r):
    rest = get(r, "phases", "rest")
    rec = rest["reconciles"]
    return round(rest["api"]["reads"] / rec, 3), round(rest["api"]["status_writes"] / rec, 3)


def main(paths):
    runs = []
    for p in paths:
        with open(p) as f:
            r = json.load(f)
        r["_path"] = p
        runs.append(r)
    rows = [
        ("N", lambda r: r["config"]["n"]),
        ("keys per SecretSync (one remote secret each)", lambda r: r["config"].get("keys", 1)),
        ("dialect", lambda r: r["config"]["dialect"]),
        ("refresh / rate", lambda r: f"{r['config']['refresh']} / {r['config']['rate']}"),
        ("apply of N SecretSyncs (s)", lambda r: get(r, "phases", "first", "apply_s")),
        ("first sync of N, from apply start (s)", lambda r: get(r, "phases", "first", "first_sync_s")),
        ("  of which after the apply ended (s)", lambda r: get(r, "phases", "first", "after_apply_s")),
        ("change -> status p50/p90/p99/max (ms)", lambda r: fmt_dist(get(r, "phases", "latency", "patch_to_status_ms"))),
        ("change -> store write p50/p90/p99/max (ms)",
         lambda r: fmt_dist(get(r, "phases", "latency", "patch_to_store_write_ms"))),
        ("at rest: store reads / writes per refresh", lambda r: "{} / {}".format(*rest_per_refresh(r))),
        ("at rest: API reads / status writes per refresh", lambda r: "{} / {}".format(*api_per_refresh(r))),
        ("store reads / writes per change (that secret, store's log)",
         lambda r: f"{get(r, 'phases', 'latency', 'attributed_per_change', 'store_reads')} / "
                   f"{get(r, 'phases', 'latency', 'attributed_per_change', 'store_writes')}"),
        ("API reads / status / other writes per change (naming the object)",
         lambda r: "{api_reads} / {api_status_writes} / {api_other_writes}".format(
             **get(r, "phases", "latency", "attributed_per_change"))),
        ("API reads of the store's credentials Secret per change (whole phase)",
         lambda r: round(get(r, "phases", "latency", "api", "by_verb_resource").get(
             "get secrets (the store's credentials)", 0) / get(r, "phases", "latency", "changes"), 2)),
        ("burst: last status / last store write (s)",
         lambda r: f"{get(r, 'phases', 'burst', 'last_status_s')} / {get(r, 'phases', 'burst', 'last_store_write_s')}"),
        ("RSS idle / with the Secrets / after first sync / at rest / burst max (MiB)",
         lambda r: f"{get(r, 'phases', 'idle', 'rss_mib')} / {get(r, 'phases', 'secrets', 'rss_mib')} / "
                   f"{get(r, 'phases', 'first', 'process', 'rss_end_mib')} / "
                   f"{get(r, 'phases', 'rest', 'process', 'rss_end_mib')} / "
                   f"{get(r, 'phases', 'burst', 'process', 'rss_max_mib')}"),
        ("store reads / writes per change in the burst",
         lambda r: f"{round(get(r, 'phases', 'burst', 'store_requests', 'reads') / r['config']['n'], 2)} / "
                   f"{round(get(r, 'phases', 'burst', 'store_requests', 'writes') / r['config']['n'], 2)}"),
        ("CPU at rest (%) / burst (s)",
         lambda r: f"{get(r, 'phases', 'rest', 'process', 'cpu_pct')} / {get(r, 'phases', 'burst', 'process', 'cpu_s')}"),
        ("after restart: store req/s max / mean",
         lambda r: f"{get(r, 'phases', 'restart', 'per_second', 'max')} / {get(r, 'phases', 'restart', 'per_second', 'mean')}"),
    ]
    print("| measure | " + " | ".join(r["_path"].rsplit("/", 1)[-1].removesuffix(".json") for r in runs) + " |")
    print("| --- |" + " --- |" * len(runs))
    for name, f in rows:
        vals = []
        for r in runs:
            try:
                vals.append(str(f(r)))
            except (KeyError, TypeError):
                vals.append("n/a")
        print(f"| {name} | " + " | ".join(vals) + " |")
    by = {}
    for r in runs:
        by.setdefault((r["config"]["dialect"], r["config"].get("keys", 1)), []).append(r)
    for (dialect, keys), rs in by.items():
        rs.sort(key=lambda r: r["config"]["n"])
        for a, b in zip(rs, rs[1:]):
            ra, rb = get(a, "phases", "rest", "process", "rss_end_mib"), get(b, "phases", "rest", "process", "rss_end_mib")
            if ra is None or rb is None or b["config"]["n"] == a["config"]["n"]:
                continue
            per = (rb - ra) * 1024 / (b["config"]["n"] - a["config"]["n"])
            shape = f" of {keys} keys" if keys > 1 else ""
            print(f"\n{dialect}{shape}: RSS at rest grows by {per:.1f} KiB per SecretSync from N={a['config']['n']} "
                  f"to N={b['config']['n']}")


if __name__ == "__main__":
    main(sys.argv[1:])
