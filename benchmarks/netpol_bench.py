"""NetworkPolicy enforcement: sync time of 1,000 policies over 1,000 pods, and the first packet's cost. Root.

    sudo .venv/bin/python benchmarks/netpol_bench.py [--pods 1000] [--policies 0,100,1000] [--repeat 3]
                                                     [--samples 2000] [--blocks 20] [--connlat PATH] [--json out.json]

One lab (`np...`, one worker `w1` with a /21 pod range, iptables mode) with two real pods: `client` and
`zz-server` (the built-in server on 8080). To its model the benchmark adds --pods synthetic pods on w1
(addresses nobody owns: they are only in the rules) in 10 namespaces, and P policies in the style of a
real application's: policy k selects one pod (app=a<k//10> in namespace ns<k%10>), allows ingress from 10
other pods of its namespace on 80/TCP and on the named port `web` (8080), and every fourth policy also
limits the pod's egress to its namespace and to DNS. One more policy selects `zz-server` and allows
`client` to reach 8080: with P > 0 both real pods are covered by the same machinery as the synthetic ones.
Every sync is netlab's own (`netlab.dataplane.proxy.sync`: the node's whole iptables payload - flannel's,
kube-proxy's and the policies' chains - diffed against the node and sent in one `iptables-restore`).

Sync (per P, median of --repeat):
  full        - from no policy to P policies (every policy and pod chain written)
  noop        - the same state again (read back, diffed, nothing sent)
  change      - one policy's port changed: a whole-node diff, only that policy's chain sent
  inc change  - the same kind of change with a SyncState kept across syncs (the control loop's way)
First packet: the client opens new TCP connections to zz-server's pod address, one after the other,
each timed around a blocking connect() in C (benchmarks/connlat.c); the SYN crosses w1's FORWARD chain,
so it walks the policy dispatch. Blocks alternate with a control lab that never has a policy; reported:
p50/p99 and the median over blocks of (block p50 - control block p50), as benchmarks/first_packet.py does
for Services. kube-proxy's iptables mode is the comparison the issue asks for: its Services' first
packet at 1,000 Services is in docs/bench (part firstpacket).
"""
from __future__ import annotations

import argparse
import copy
import ipaddress
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

from netlab import lab_spec  # noqa: E402
from netlab.dataplane import iptables as ipt  # noqa: E402
from netlab.dataplane import lab as labmod  # noqa: E402
from netlab.dataplane import nsfs, proxy  # noqa: E402
from netlab.dataplane.fabric import Changes  # noqa: E402
from netlab.dataplane.proxy.syncstate import SyncState  # noqa: E402
from netlab.netpol.policy import (LabelSelector, NetworkPolicy, Peer, PolicyPort, Requirement,  # noqa: E402
                                  Rule)
from netlab.spec.parse import load_text  # noqa: E402

SCENARIO = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: {name}
nodes: [{{role: worker, name: w1}}]
networking: {{podSubnet: 10.240.0.0/13, nodeCIDRMaskSize: 21, kubeProxyMode: iptables, iptablesFlavour: nft}}
dns: {{replicas: 0}}
---
apiVersion: v1
kind: Pod
metadata: {{name: client, labels: {{role: client}}}}
spec:
  containers: [{{name: c, ports: [{{containerPort: 9000}}]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: zz-server, labels: {{app: target}}}}
spec:
  containers: [{{name: web, ports: [{{containerPort: 8080, name: web}}]}}]
"""


def sel(**kv) -> LabelSelector:
    return LabelSelector(tuple(kv.items()))


def synthetic(cluster, npods: int, npol: int, variant: int = 0) -> tuple[list, list, dict]:
    """(pods, policies, namespace labels) added to the lab's model (see the module docstring)."""
    node = cluster.nodes[0]
    server = cluster.pod("default", "zz-server")
    pods = []
    for i in range(npods):
        p = copy.copy(server)
        p.namespace, p.name = f"ns{i % 10}", f"p{i:05d}"
        p.labels = {"app": f"a{i // 10}"}
        p.ip = node.pod_cidr.network_address + 16 + i
        p.uid = f"bench-{i}"
        pods.append(p)
    pols = []
    for k in range(npol):
        ns, app = f"ns{k % 10}", k // 10
        peers = (Peer(LabelSelector((), (Requirement("app", "In", tuple(f"a{(app + d) % 100}" for d in range(1, 11))),))),)
        port = 80 + (variant if k == npol // 2 else 0)
        ingress = (Rule((PolicyPort("TCP", port), PolicyPort("TCP", "web")), peers),)
        egress = ()
        types = ("Ingress",)
        if k % 4 == 0:
            egress = (Rule((), (Peer(namespace_selector=sel(team=f"t{k % 10}")),)),
                      Rule((PolicyPort("UDP", 53), PolicyPort("TCP", 53)), ()))
            types = ("Ingress", "Egress")
        pols.append(NetworkPolicy(ns, f"pol{k:05d}", sel(app=f"a{app}"), types, ingress, egress))
    if npol:
        pols.append(NetworkPolicy("default", "zz-server", sel(app="target"), ("Ingress",),
                                  (Rule((PolicyPort("TCP", 8080),), (Peer(sel(role="client")),)),)))
    return pods, pols, {f"ns{j}": {"team": f"t{j}"} for j in range(10)}


class Lab:
    def __init__(self, name: str):
        self.name = name
        text = SCENARIO.format(name=name)
        labmod.down(name)
        self.cluster = lab_spec.up(load_text(text), text).cluster
        self.real = list(self.cluster.pods)
        _, self.restore, self.save = ipt.flavour_commands(self.cluster.networking.iptables_flavour)
        self.client = self.cluster.pod("default", "client")
        self.server = self.cluster.pod("default", "zz-server")

    def set_model(self, npods: int, npol: int, variant: int = 0) -> None:
        pods, pols, nsl = synthetic(self.cluster, npods if npol else 0, npol, variant)
        self.cluster.pods = self.real + pods
        self.cluster.policies = pols
        self.cluster.namespace_labels = nsl

    def sync(self, state: SyncState | None = None) -> float:
        t0 = time.perf_counter()
        proxy.sync(self.cluster, self.restore, self.save, Changes(), previous_mode="iptables", state=state)
        return time.perf_counter() - t0

    def filter_rules(self) -> int:
        text = ipt.save(nsfs.netns_path(self.cluster.nodes[0].netns), self.save)
        return sum(1 for ln in text.splitlines() if ln.startswith("-A KUBE-ROUTER-") or ln.startswith("-A KUBE-POD-FW-")
                   or ln.startswith("-A KUBE-NWPLCY-"))

    def connlat(self, binary: str, count: int) -> list[float]:
        p = subprocess.run(["nsenter", f"--net={nsfs.netns_path(self.client.netns)}", binary, str(self.server.ip),
                            "8080", str(count)], capture_output=True, text=True, timeout=600)
        res = json.loads(p.stdout)
        if res["failed"]:
            raise SystemExit(f"{self.name}: {res['failed']} of {count} connections to {self.server.ip}:8080 failed")
        return res["us"]

    def down(self) -> None:
        labmod.down(self.name)


def stats(us: list[float]) -> dict:
    return {"n": len(us), "p50_us": common.percentile(us, 50), "p90_us": common.percentile(us, 90),
            "p99_us": common.percentile(us, 99), "min_us": min(us)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--policies", default="0,100,1000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--blocks", type=int, default=20)
    ap.add_argument("--connlat", default=os.path.join(common.ROOT, "benchmarks", "results", "connlat"))
    ap.add_argument("--json")
    args = ap.parse_args()
    sizes = sorted(int(x) for x in args.policies.split(","))
    info = common.banner("NetworkPolicy: sync time and first-packet cost", {
        "pods": args.pods, "policies": sizes, "repeat": args.repeat, "samples": args.samples,
        "versions": {"iptables-nft": common.tool_version("iptables-nft")}})
    tag = f"{os.getpid() % 100000}"
    lab = ctl = None
    results = []
    per_block = max(1, args.samples // args.blocks)
    try:
        lab, ctl = Lab(f"npb{tag}"), Lab(f"npc{tag}")
        for n in sizes:
            syncs: dict[str, list[float]] = {"full_s": [], "noop_s": [], "change_s": [], "inc_change_s": []}
            for r in range(args.repeat):
                lab.set_model(args.pods, 0)
                lab.sync()
                lab.set_model(args.pods, n)
                syncs["full_s"].append(lab.sync())
                syncs["noop_s"].append(lab.sync())
                lab.set_model(args.pods, n, variant=1)
                syncs["change_s"].append(lab.sync())
                state = SyncState(write_records=False)
                lab.sync(state)
                lab.set_model(args.pods, n, variant=2)
                syncs["inc_change_s"].append(lab.sync(state))
            rules = lab.filter_rules()
            row = {"policies": n, "pods": args.pods if n else 0, "policy_rules": rules,
                   **{k: common.median(v) for k, v in syncs.items()}, "samples_s": syncs}
            print(f"  P={n:<5} rules {rules:6}  full {row['full_s']:.3f}s  noop {row['noop_s']:.3f}s  change "
                  f"{row['change_s']:.3f}s  inc change {row['inc_change_s']:.3f}s", flush=True)
            lab.connlat(args.connlat, 20)
            ctl.connlat(args.connlat, 20)
            mine_all: list[float] = []
            ref_all: list[float] = []
            paired = []
            for _ in range(args.blocks):
                mine = lab.connlat(args.connlat, per_block)
                ref = ctl.connlat(args.connlat, per_block)
                mine_all += mine
                ref_all += ref
                paired.append(common.percentile(mine, 50) - common.percentile(ref, 50))
            row["first_packet"] = stats(mine_all)
            row["control"] = stats(ref_all)
            row["excess_over_control_p50_us"] = common.median(paired)
            print(f"  P={n:<5} connect() p50 {row['first_packet']['p50_us']:.1f}us p99 "
                  f"{row['first_packet']['p99_us']:.1f}us; control p50 {row['control']['p50_us']:.1f}us; "
                  f"excess {row['excess_over_control_p50_us']:+.1f}us", flush=True)
            results.append(row)
    finally:
        for lb in (lab, ctl):
            if lb is not None:
                lb.down()
    print("\nNetworkPolicy over", args.pods, "pods: sync (s) and first packet (us)")
    print(f"{'policies':>8} {'rules':>7} {'full':>7} {'noop':>7} {'change':>7} {'inc':>7} {'p50':>7} {'p99':>7} {'-ctl':>7}")
    for r in results:
        print(f"{r['policies']:>8} {r['policy_rules']:>7} {r['full_s']:7.3f} {r['noop_s']:7.3f} {r['change_s']:7.3f} "
              f"{r['inc_change_s']:7.3f} {r['first_packet']['p50_us']:7.1f} {r['first_packet']['p99_us']:7.1f} "
              f"{r['excess_over_control_p50_us']:+7.1f}")
    common.dump(args.json, {"info": info, "results": results})


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("run as root: sudo .venv/bin/python benchmarks/netpol_bench.py")
    main()
