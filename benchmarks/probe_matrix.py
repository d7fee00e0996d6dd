"""Time of the default probe matrix (`netlab probe` with no target) for 3 nodes x P pods x S services.

    sudo .venv/bin/python benchmarks/probe_matrix.py [--pods 90] [--services 10] [--repeat 3] [--json out.json]

Builds the lab once, then runs the matrix --repeat times and prints every sample and the median.
Each Service selects a tenth of the pods and exposes a NodePort, so the matrix has every group:
node<->pod, pod<->pod (same node, across nodes), pod -> every Service port, external -> every NodePort.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

from netlab.dataplane import lab as labmod  # noqa: E402
from netlab import lab_spec  # noqa: E402
from netlab.probe import plan, run  # noqa: E402
from netlab.spec.parse import load_text  # noqa: E402


def scenario(pods: int, services: int) -> str:
    docs = ["apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nname: benchprobe\n"
            "nodes: [{role: worker}, {role: worker}, {role: worker}]\n"]
    per = max(1, pods // services)
    for s in range(services):
        n = per if s < services - 1 else pods - per * (services - 1)
        docs.append(f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: app{s}}}
spec:
  replicas: {n}
  selector: {{matchLabels: {{app: app{s}}}}}
  template:
    metadata: {{labels: {{app: app{s}}}}}
    spec:
      containers: [{{name: c, ports: [{{containerPort: 8080}}]}}]
""")
        docs.append(f"""apiVersion: v1
kind: Service
metadata: {{name: svc{s}}}
spec:
  type: NodePort
  selector: {{app: app{s}}}
  ports: [{{port: 80, targetPort: 8080}}]
""")
    return "---\n".join(docs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", type=int, default=90)
    ap.add_argument("--services", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument("--raise-arp-limit", action="store_true",
                    help="for the duration of the run, raise the host's neighbour table limit "
                         "(net.ipv4.neigh.default.gc_thresh2/3) and restore it afterwards: the one host setting "
                         "a lab this size needs, which netlab itself never changes")
    args = ap.parse_args()
    saved = {}
    if args.raise_arp_limit:
        for key, value in (("gc_thresh2", "8192"), ("gc_thresh3", "16384")):
            path = f"/proc/sys/net/ipv4/neigh/default/{key}"
            saved[path] = open(path).read().strip()
            with open(path, "w") as f:
                f.write(value)
        print(f"  neighbour table limit raised for this run: {saved} -> gc_thresh3=16384")
    try:
        run_matrix(args)
    finally:
        for path, value in saved.items():
            with open(path, "w") as f:
                f.write(value)


def run_matrix(args) -> None:
    info = common.banner("default probe matrix", {"nodes": 3, "pods": args.pods, "services": args.services,
                                                  "repeat": args.repeat, "raise_arp_limit": args.raise_arp_limit})
    text = scenario(args.pods, args.services)
    sc = load_text(text)
    labmod.down(sc.name)
    try:
        cluster = lab_spec.up(sc, text).cluster
        checks = plan.default_matrix(cluster)
        probes = sum(len(c.probes) for c in checks)
        times, samples = [], []
        for i in range(args.repeat):
            t0 = time.perf_counter()
            results, _, warnings = run.run_checks(plan.default_matrix(cluster))
            dt = time.perf_counter() - t0
            for w in warnings:
                print("  " + w)
            bad = [r for r in results if not r.ok]
            times.append(dt)
            samples.append({"seconds": dt, "checks": len(results), "not_as_expected": len(bad),
                            "warnings": list(warnings)})
            print(f"  sample {i + 1}: {len(results)} checks, {probes} probes in {dt:.3f}s, {len(bad)} not as expected")
        print(f"\ndefault probe matrix, 3 nodes x {args.pods} pods x {args.services} services: "
              f"{len(checks)} checks / {probes} probes, median {statistics.median(times):.3f}s")
        common.dump(args.json, {"info": info, "results": {
            "nodes": 3, "pods": args.pods, "services": args.services, "checks": len(checks), "probes": probes,
            "median_s": statistics.median(times), "per_probe_ms": statistics.median(times) / probes * 1000,
            "samples": samples}})
    finally:
        labmod.down(sc.name)


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    main()
