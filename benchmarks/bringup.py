"""Bring-up and teardown time of a lab vs its size (3 nodes, N pods), run as root.

    sudo .venv/bin/python benchmarks/bringup.py [--pods 10,100,300] [--repeat 3] [--json out.json]

Each sample runs `netlab up` on a generated scenario (one Deployment of N replicas of the built-in
server over 3 worker nodes), then checks from every node that every pod answers on its TCP port (a
real connect + HTTP GET of /hostname, not timed), then times `netlab down`. Sizes are interleaved
across repeats; medians are reported. Nothing here is estimated: every figure is a measured sample.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import time

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])

from netlab.dataplane import lab as labmod  # noqa: E402
from netlab.dataplane import nsfs  # noqa: E402
from netlab.spec.parse import load_text  # noqa: E402

SCENARIO = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: {name}
nodes: [{{role: worker}}, {{role: worker}}, {{role: worker}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: {pods}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: web, ports: [{{containerPort: 8080}}]}}]
"""


def check_all_answer(cluster) -> int:
    """From each node's namespace, GET /hostname from each of its pods; returns how many answered right."""
    ok = 0
    for node in cluster.nodes:
        pods = cluster.pods_on(node.name)

        def probe(pods=pods) -> int:
            good = 0
            for p in pods:
                with socket.create_connection((str(p.ip), 8080), timeout=3) as s:
                    s.sendall(b"GET /hostname HTTP/1.0\r\n\r\n")
                    data = b""
                    while chunk := s.recv(4096):
                        data += chunk
                good += data.endswith(p.name.encode())
            return good
        ok += nsfs.in_netns(node.netns, probe)
    return ok


def sample(pods: int) -> dict:
    name = f"bench{pods}"
    text = SCENARIO.format(name=name, pods=pods)
    sc = load_text(text)
    labmod.down(name)
    t0 = time.perf_counter()
    result = labmod.up(sc, text)
    t_up = time.perf_counter() - t0
    answered = check_all_answer(result.cluster)
    t0 = time.perf_counter()
    labmod.down(name)
    t_down = time.perf_counter() - t0
    if answered != pods:
        raise SystemExit(f"only {answered} of {pods} pods answered")
    return {"pods": pods, "up_s": t_up, "down_s": t_down, "answered": answered}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", default="10,100,300")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    sizes = [int(x) for x in args.pods.split(",")]
    samples: dict[int, list[dict]] = {n: [] for n in sizes}
    for _ in range(args.repeat):
        for n in sizes:  # interleaved, so drift in machine load hits every size alike
            s = sample(n)
            samples[n].append(s)
            print(f"  sample pods={n}: up {s['up_s']:.3f}s down {s['down_s']:.3f}s ({s['answered']} answered)")
    info = {"kernel": platform.release(), "python": platform.python_version(), "cpus": len(
        open("/proc/cpuinfo").read().split("processor")) - 1, "date": time.strftime("%Y-%m-%d")}
    print(f"\nnetlab bring-up, 3 nodes (kernel {info['kernel']}, {info['cpus']} cpus, {info['date']})")
    print(f"{'pods':>6} {'up median':>10} {'per pod':>9} {'down median':>12}")
    summary = []
    for n in sizes:
        up = statistics.median(s["up_s"] for s in samples[n])
        down = statistics.median(s["down_s"] for s in samples[n])
        print(f"{n:>6} {up:>9.3f}s {up / n * 1000:>7.2f}ms {down:>11.3f}s")
        summary.append({"pods": n, "up_median_s": up, "down_median_s": down, "samples": samples[n]})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "results": summary}, f, indent=1)


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("run as root: sudo .venv/bin/python benchmarks/bringup.py")
    main()
