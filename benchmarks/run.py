"""Runs the whole benchmark suite, merges the results, draws the plots. Started by `scripts/bench`
(which installs the peers, builds the C helpers and gives this a private /run/netns); run as root.

    .venv/bin/python benchmarks/run.py [--quick] [--only bringup,sync,nftload,firstpacket,network,probe,ipvs,live,dns,lb,ingress,netpol,userspace,bgp,scale,multihost]
                                       [--out docs/bench]

Each benchmark runs as its own process (each can also be run alone: see its docstring) and prints what it
ran, its raw samples and its medians; its JSON goes to benchmarks/results/<name>.json (not committed). The
merged, committed results go to OUT/results.json (raw samples included, except the network benchmark's
per-round-trip samples, which stay in benchmarks/results/network.json), and benchmarks/report.py draws
OUT/*.png and writes OUT/summary.md. A benchmark that fails is recorded as failed; the others still run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

PY = sys.executable
B = common.HERE
RES = os.path.join(common.ROOT, "benchmarks", "results")

# name -> (script, full-run arguments, --quick arguments)
SUITE = {
    "bringup": ("bringup.py", ["--pods", "10,100,300,1000", "--repeat", "3"],
                ["--pods", "10,100", "--repeat", "2"]),
    "sync": ("proxy_sync.py", ["--services", "100,1000,5000,10000", "--repeat", "3"],
             ["--services", "100,1000", "--repeat", "1"]),
    "nftload": ("nft_load.py", ["--services", "1000,10000", "--choices", "ladder,vmap", "--repeat", "1"],
                ["--services", "1000", "--choices", "ladder,vmap", "--repeat", "1"]),
    "firstpacket": ("first_packet.py", ["--services", "0,1000,5000,10000,30000", "--samples", "3000", "--blocks", "30"],
                    ["--services", "0,1000,5000", "--samples", "600", "--blocks", "6"]),
    "network": ("network.py", ["--seconds", "5", "--rr", "2000", "--repeat", "3"],
                ["--seconds", "2", "--rr", "500", "--repeat", "1"]),
    "probe": ("probe_matrix.py", ["--pods", "30", "--services", "10", "--repeat", "5"],
              ["--pods", "30", "--services", "10", "--repeat", "2"]),
    "ipvs": ("ipvs_vm.py", ["--services", "100,1000,10000", "--repeat", "3"],
             ["--services", "100,1000", "--repeat", "1"]),
    "live": ("live.py", ["--pods", "10,1000", "--repeat", "3", "--idle-seconds", "30", "--replicas", "100",
                         "--rollout-repeat", "1"],
             ["--pods", "10", "--repeat", "2", "--idle-seconds", "10", "--replicas", "20", "--rollout-repeat", "1"]),
    "dns": ("dns_load.py", ["--seconds", "10", "--repeat", "3", "--half-seconds", "10"],
            ["--seconds", "3", "--repeat", "1", "--half-seconds", "3"]),
    "lb": ("lb_failover.py", ["--graces", "10,3", "--repeat", "3"], ["--graces", "3", "--repeat", "1"]),
    "netpol": ("netpol_bench.py", ["--pods", "1000", "--policies", "0,100,1000", "--repeat", "3"],
               ["--pods", "1000", "--policies", "0,1000", "--repeat", "1", "--samples", "600", "--blocks", "6"]),
    "ingress": ("ingress_bench.py", ["--seconds", "8", "--repeat", "2", "--rules", "1000", "--changes", "3"],
                ["--seconds", "3", "--repeat", "1", "--rules", "1000", "--changes", "1"]),
    "userspace": ("userspace_bench.py", ["--seconds", "5", "--repeat", "3"], ["--seconds", "3", "--repeat", "1"]),
    "bgp": ("bgp_bench.py", ["--repeat", "5", "--seconds", "5", "--rr", "2000", "--net-repeat", "3"],
            ["--repeat", "3", "--seconds", "2", "--rr", "500", "--net-repeat", "1"]),
    "scale": ("scale_bench.py", ["--nodes", "100", "--pods-per-node", "100", "--repeat", "3", "--neigh-limits"],
              ["--nodes", "20", "--pods-per-node", "50", "--repeat", "1"]),
    "multihost": ("multihost_bench.py", ["--pods-per-node", "100", "--repeat", "1", "--reach", "5", "--neigh-limits"],
                  ["--pods-per-node", "10", "--repeat", "1", "--reach", "3"]),
}


def slimmed(merged: dict) -> dict:
    """The committed copy: every sample of the time measurements, but not the per-connection and
    per-round-trip samples of the first-packet and network benchmarks (tens of thousands of numbers; they
    are printed by the run and kept in benchmarks/results/results-full.json): their percentiles and
    per-block / per-repeat figures stay."""
    slim = json.loads(json.dumps(merged))
    for row in slim["results"].get("network", {}).get("results", []):
        row.pop("rr_samples_us", None)
    for row in slim["results"].get("firstpacket", {}).get("results", []):
        for v in row.values():
            if isinstance(v, dict):
                v.pop("samples_us", None)
                if "block_p50_minus_control_us" in v:
                    v["block_p50_minus_control_us"] = [round(x, 2) for x in v["block_p50_minus_control_us"]]
    return slim


def leftovers() -> dict:
    """What the suite could leave behind: namespaces in (this run's) /run/netns, labs' state directories,
    processes started for the benchmark labs."""
    ns = sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else []
    mine = [n for n in ns if n.startswith(("nl.bup", "nl.fp", "nl.nw", "nl.benchprobe", "bsh", "bfl", "bench-sync",
                                           "nl.blive", "nl.broll", "bench-dns", "nl.blb", "nl.bing", "nl.bus.",
                                           "nl.bcv", "nl.bn", "nl.bscale"))]
    labs = sorted(d for d in os.listdir("/run/netlab")) if os.path.isdir("/run/netlab") else []
    labs = [d for d in labs if d.startswith(("bup", "fp", "nw", "benchprobe", "floor", "blive", "broll", "blb", "bing",
                                             "bus", "bcv", "bn", "bscale", "mhb"))]
    return {"namespaces": mine, "lab_state_dirs": labs}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a fast subset: smaller sizes, fewer repeats")
    ap.add_argument("--only", default=",".join(SUITE))
    ap.add_argument("--out", default=os.path.join(common.ROOT, "docs", "bench"))
    args = ap.parse_args()
    parts = [p for p in args.only.split(",") if p]
    unknown = set(parts) - set(SUITE)
    if unknown:
        raise SystemExit(f"unknown benchmarks {unknown}; known: {', '.join(SUITE)}")
    os.makedirs(RES, exist_ok=True)
    meta = common.banner("netlab benchmark suite" + (" (--quick)" if args.quick else ""),
                         {"parts": parts, "neigh_gc_thresh3": common.gc_thresh3()})
    root_before = common.root_netns_snapshot()
    merged: dict = {"meta": {**meta, "quick": args.quick,
                             "command": "scripts/bench" + (" --quick" if args.quick else "") +
                                        (f" --only {args.only}" if args.only != ",".join(SUITE) else "")},
                    "results": {}}
    out_json = os.path.join(args.out, "results.json")
    if os.path.exists(out_json) and set(parts) != set(SUITE):
        # a partial run updates only its parts of the last full results
        with open(out_json) as f:
            old = json.load(f)
        merged["results"] = old.get("results", {})
        prev = old.get("meta", {})
        merged["meta"]["full_run"] = prev.get("full_run") or {k: prev.get(k) for k in ("date", "command", "loadavg_at_start",
                                                                                    "netlab_commit")}
        merged["meta"]["rerun_parts"] = sorted(set(prev.get("rerun_parts", [])) | set(parts))
    t_all = time.perf_counter()
    for name in parts:
        script, full, quick = SUITE[name]
        part_json = os.path.join(RES, f"{name}.json")
        argv = [PY, os.path.join(B, script), *(quick if args.quick else full), "--json", part_json]
        print(f"\n######## {name}: {' '.join(os.path.relpath(a, common.ROOT) if a.startswith('/') else a for a in argv[1:])}",
              flush=True)
        t0 = time.perf_counter()
        if os.path.exists(part_json):
            os.unlink(part_json)
        rc = subprocess.run(argv).returncode
        dt = time.perf_counter() - t0
        if rc == 0 and os.path.exists(part_json):
            with open(part_json) as f:
                data = json.load(f)
            data["wall_s"] = dt
            merged["results"][name] = data
        else:
            merged["results"][name] = {"failed": f"exit status {rc}", "wall_s": dt}
            print(f"######## {name} FAILED (exit status {rc})", flush=True)
    merged["meta"]["wall_s"] = time.perf_counter() - t_all

    left = leftovers()
    changed = common.snapshot_diff(root_before, common.root_netns_snapshot())
    merged["meta"]["cleanup"] = {**left, "root_netns_changed": changed}
    print(f"\ncleanup check: namespaces left {left['namespaces'] or 'none'}, lab state left "
          f"{left['lab_state_dirs'] or 'none'}, host root namespace {'CHANGED: ' + str(changed) if changed else 'unchanged'}")

    common.dump(os.path.join(RES, "results-full.json"), merged)
    slim = slimmed(merged)
    common.dump(out_json, slim)
    print(f"results: {os.path.relpath(out_json, common.ROOT)} (full: benchmarks/results/results-full.json)")
    rc = subprocess.run([PY, os.path.join(B, "report.py"), out_json, "--out", args.out]).returncode
    failed = [n for n in parts if "failed" in merged["results"].get(n, {})]
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed or rc or left["namespaces"] or changed else 0


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("run as root: sudo scripts/bench")
    sys.exit(main())
