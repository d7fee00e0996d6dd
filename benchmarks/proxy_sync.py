"""kube-proxy iptables-mode sync time vs number of services, both iptables flavours. Run as root:

    sudo .venv/bin/python benchmarks/proxy_sync.py [--services 100,1000,10000] [--flavours legacy,nft]
                                                   [--repeat 3] [--json out.json]

For each size, a throwaway node namespace gets N ClusterIP services x 3 endpoints, synced the way
`netlab up` syncs a node (render, iptables-save, diff, one iptables-restore --noflush):
  full   - the first sync into empty tables
  change - then one endpoint of one service changes; the time of that second sync
  noop   - a sync with nothing to change (save + render + diff, no restore)
Each figure is the median of --repeat samples, interleaved across sizes. Nothing is estimated.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import statistics
import subprocess
import sys
import time

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])

from netlab.dataplane import iptables as ipt  # noqa: E402
from netlab.dataplane import nsfs  # noqa: E402
from netlab.model.build import build  # noqa: E402
from netlab.model.objects import Endpoint, Service, ServicePort  # noqa: E402
from netlab.render.iptables import node_rules  # noqa: E402
from netlab.spec.parse import load_text  # noqa: E402
from netlab.spec.types import ServicePortSpec, ServiceSpec  # noqa: E402

NETNS = f"nl.benchsync{os.getpid()}.node.n1"  # unique: runs may overlap


def cluster_with(n: int):
    sc = load_text("kind: Cluster\nname: benchsync\nnodes: [{role: worker, name: n1}, {role: worker, name: n2}]\n"
                   "networking: {serviceSubnet: 10.96.0.0/12}\n")
    cluster = build(sc)
    base = int(ipaddress.ip_address("10.96.0.0"))
    services = []
    for i in range(n):
        spec = ServiceSpec("default", f"svc{i}", "ClusterIP", {"app": f"a{i}"},
                           [ServicePortSpec("http", 80, "TCP", 8080, None)], None, [], None, "None", 10800,
                           "Cluster", "Cluster", None, {})
        svc = Service(spec, ipaddress.IPv4Address(base + 20 + i), [ServicePort("http", 80, "TCP", 8080, None)])
        eps = []
        for k in range(3):
            node = cluster.nodes[k % 2]
            ip = node.pod_cidr.network_address + 2 + (i * 3 + k) % 250
            eps.append(Endpoint(ip, 8080, node.name, f"p{i}-{k}", "default"))
        svc.endpoints = {"http": eps}
        services.append(svc)
    cluster.services = services
    return cluster


def sync(cluster, restore: str, save: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    path = nsfs.netns_path(NETNS)
    current = ipt.parse_save(ipt.save(path, save))
    payload, _ = ipt.plan_restore(node_rules(cluster, cluster.nodes[0]), current)
    if payload:
        p = ipt.restore_async(path, restore, payload)
        ipt.finish_restore(p, payload, NETNS)
    return time.perf_counter() - t0, payload.count("\n")


def fresh_netns() -> None:
    nsfs.delete_ns_file(nsfs.netns_path(NETNS))
    nsfs.ensure_run_dir()
    nsfs.run_in_thread(lambda: nsfs.new_netns_here(NETNS))


def sample(n: int, flavour: str) -> dict:
    _, restore, save = ipt.flavour_commands(flavour)
    cluster = cluster_with(n)
    fresh_netns()
    try:
        full, lines = sync(cluster, restore, save)
        noop, noop_lines = sync(cluster, restore, save)
        assert noop_lines == 0, "second sync of the same state should change nothing"
        svc = cluster.services[n // 2]
        ep = svc.endpoints["http"][0]
        svc.endpoints["http"][0] = Endpoint(ep.ip + 1 if int(ep.ip) % 256 < 250 else ep.ip - 1, 8080, ep.node,
                                            ep.pod + "x", ep.namespace)
        change, change_lines = sync(cluster, restore, save)
        rules = ipt.save(nsfs.netns_path(NETNS), save).count("\n-A ") + 1
    finally:
        nsfs.delete_ns_file(nsfs.netns_path(NETNS))
    return {"services": n, "flavour": flavour, "full_s": full, "change_s": change, "noop_s": noop,
            "payload_lines": lines, "change_payload_lines": change_lines, "rules": rules}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", default="100,1000,10000")
    ap.add_argument("--flavours", default="legacy,nft")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    sizes = [int(x) for x in args.services.split(",")]
    flavours = args.flavours.split(",")
    versions = {f: subprocess.run([f"iptables-{f}", "--version"], capture_output=True, text=True).stdout.strip()
                for f in flavours}
    runs: dict[tuple[str, int], list[dict]] = {(f, n): [] for f in flavours for n in sizes}
    for _ in range(args.repeat):
        for n in sizes:
            for f in flavours:
                s = sample(n, f)
                runs[(f, n)].append(s)
                print(f"  {f:6} {n:6} services: full {s['full_s']:.3f}s  one-endpoint change "
                      f"{s['change_s']:.3f}s  noop {s['noop_s']:.3f}s  ({s['rules']} rules, "
                      f"change payload {s['change_payload_lines']} lines)", flush=True)
    print(f"\nkube-proxy iptables mode sync, 3 endpoints/service (kernel {platform.release()}, "
          f"{time.strftime('%Y-%m-%d')})")
    for f in flavours:
        print(f"  {versions[f]}")
    print(f"{'flavour':8} {'services':>8} {'rules':>8} {'full sync':>10} {'1-ep change':>12} {'no-op':>8}")
    summary = []
    for f in flavours:
        for n in sizes:
            rs = runs[(f, n)]
            med = {k: statistics.median(r[k] for r in rs) for k in ("full_s", "change_s", "noop_s")}
            print(f"{f:8} {n:>8} {rs[0]['rules']:>8} {med['full_s']:>9.3f}s {med['change_s']:>11.3f}s "
                  f"{med['noop_s']:>7.3f}s")
            summary.append({"flavour": f, "services": n, **{k + "_median": v for k, v in med.items()}, "samples": rs})
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"kernel": platform.release(), "versions": versions, "results": summary}, fh, indent=1)


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("run as root: sudo .venv/bin/python benchmarks/proxy_sync.py")
    main()
