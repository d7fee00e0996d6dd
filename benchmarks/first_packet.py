"""First-packet latency through a Service vs the number of Services, per kube-proxy mode. Run as root.

    sudo .venv/bin/python benchmarks/first_packet.py [--services 0,1000,5000,10000,30000] [--modes iptables,nftables]
                                                     [--samples 3000] [--blocks 30] [--connlat PATH] [--json out.json]

The Kubernetes blog post "NFTables mode for kube-proxy" (2025) shows the first packet of a new connection
getting slower with the number of Services in iptables mode (p50 ~0.047 ms at 5,000 Services, ~0.27 ms at
30,000) and staying flat in nftables mode (~0.014 ms). This reproduces that experiment on netlab:

  * one lab per mode (`fpi...` iptables mode with iptablesFlavour legacy; `fpn...` nftables mode with
    nftablesEndpointChoice ladder, see below), each one node with a client pod and a Deployment of 3
    built-in servers behind the Service `zz-target` (ClusterIP 10.96.0.100:80 -> 8080), all real pods;
  * N other Services (3 synthetic endpoints each, no pods: they are never connected to, they only have to
    be in the rules), added to the lab's model and synced into the node with netlab's own proxy sync, N in
    increasing order;
  * at each N, the client pod opens new TCP connections to the ClusterIP, one after the other, each timed
    around a blocking connect() in C (benchmarks/connlat.c: SYN out, SYN-ACK processed); every connection is
    new, so its SYN goes through the nat table's service dispatch, and the SYN-ACK only through conntrack.
    Also measured, interleaved in the same blocks: the same connections in a control lab (iptables mode,
    the target Service alone) that never gets the other Services: p50(mode, N) - p50(control) is the cost
    of the N other Services with the drift of a shared machine taken out. (A pod-IP connection is no
    such reference in iptables mode: every new connection through the node, Service or not, walks
    KUBE-SERVICES in the nat table's PREROUTING.)

Why the target is the last Service: in iptables mode KUBE-SERVICES is one rule per Service port, matched
in order, so a Service's first packet costs a walk over every rule before its own. kube-proxy writes them
in Go map order (random); netlab sorts them by namespace/name, and `zz-target` sorts after the synthetic
`svcNNNNN`, so this measures the worst case (every rule walked), which is what the blog's linear curve
shows. nftables mode dispatches with one verdict-map lookup (`ip daddr . meta l4proto . th dport vmap
@service-ips`), so the position does not matter. The endpoint choice inside a Service's own chain
(kube-proxy's `numgen random mod 3 vmap {...}`, or netlab's equivalent "ladder") only touches the target's
3 endpoints; the ladder is used because loading 30,000 Services with kube-proxy's per-Service anonymous
vmaps takes the kernel minutes (see benchmarks/nft_load.py), and the dispatch is the same.

Samples: --samples connections per mode and N (after 20 warm-up connections), taken in --blocks blocks
that alternate between the modes, so machine noise hits both alike. Reported: p50/p90/p99 of connect(),
p50 minus the p50 at N=0, and the cost of the other Services' rules, the quantity the blog's figure shows:
each block of a mode is followed at once by a block of the control lab, and the median over the blocks of
(block p50 - control block p50) is reported.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

from netlab.dataplane import iptables as ipt  # noqa: E402
from netlab.dataplane import lab as labmod  # noqa: E402
from netlab import lab_spec  # noqa: E402
from netlab.dataplane import nsfs, proxy  # noqa: E402
from netlab.dataplane.fabric import Changes  # noqa: E402
from netlab.model.objects import Endpoint, Service, ServicePort  # noqa: E402
from netlab.spec.parse import load_text  # noqa: E402
from netlab.spec.types import ServicePortSpec, ServiceSpec  # noqa: E402

TARGET_IP = "10.96.0.100"
MODES = {"iptables": "kubeProxyMode: iptables, iptablesFlavour: legacy",
         "nftables": "kubeProxyMode: nftables, nftablesEndpointChoice: ladder"}
SCENARIO = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: {name}
nodes: [{{role: worker, name: w1}}]
networking: {{serviceSubnet: 10.96.0.0/12, {mode}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  containers: [{{name: c, ports: [{{containerPort: 8080}}]}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: zz-target}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: target}}}}
  template:
    metadata: {{labels: {{app: target}}}}
    spec:
      containers: [{{name: web, ports: [{{containerPort: 8080}}]}}]
---
apiVersion: v1
kind: Service
metadata: {{name: zz-target}}
spec:
  clusterIP: {target_ip}
  selector: {{app: target}}
  ports: [{{port: 80, targetPort: 8080}}]
"""


def synthetic_services(cluster, n: int) -> list[Service]:
    """N ClusterIP Services from 10.100.0.0 upward, 3 endpoints each (addresses nobody owns), as
    benchmarks/proxy_sync.py builds them."""
    node = cluster.nodes[0]
    base = int(ipaddress.ip_address("10.100.0.0"))
    out = []
    for i in range(n):
        spec = ServiceSpec("default", f"svc{i:05d}", "ClusterIP", {"app": f"a{i}"},
                           [ServicePortSpec("http", 80, "TCP", 8080, None)], None, [], None, "None", 10800,
                           "Cluster", "Cluster", None, {})
        svc = Service(spec, ipaddress.IPv4Address(base + i), [ServicePort("http", 80, "TCP", 8080, None)])
        svc.endpoints = {"http": [Endpoint(node.pod_cidr.network_address + 100 + (i * 3 + k) % 150, 8080, node.name,
                                           f"s{i}-{k}", "default") for k in range(3)]}
        out.append(svc)
    return out


class Lab:
    def __init__(self, mode: str, tag: str, letter: str | None = None):
        self.mode = mode
        self.name = f"fp{letter or mode[0]}{tag}"
        text = SCENARIO.format(name=self.name, mode=MODES[mode], target_ip=TARGET_IP)
        sc = load_text(text)
        labmod.down(self.name)
        self.cluster = lab_spec.up(sc, text).cluster
        self.real = list(self.cluster.services)
        _, self.restore, self.save = ipt.flavour_commands(self.cluster.networking.iptables_flavour)
        self.client = self.cluster.pod("default", "client")
        self.targets = [p for p in self.cluster.pods if p.name.startswith("zz-target")]
        self.node = self.cluster.nodes[0]

    def sync_to(self, n: int) -> float:
        self.cluster.services = synthetic_services(self.cluster, n) + self.real
        t0 = time.perf_counter()
        proxy.sync(self.cluster, self.restore, self.save, Changes(), previous_mode=self.mode)
        return time.perf_counter() - t0

    def check_rules(self, n: int) -> str:
        """Proof of the layout the latency is measured against."""
        path = nsfs.netns_path(self.node.netns)
        if self.mode == "iptables":
            nat = [ln for ln in ipt.save(path, self.save).splitlines() if ln.startswith("-A KUBE-SERVICES ")]
            pos = next(i for i, ln in enumerate(nat) if f"-d {TARGET_IP}/32" in ln)
            if pos != len(nat) - 2:   # the last rule is the jump to KUBE-NODEPORTS
                raise SystemExit(f"target is rule {pos + 1} of {len(nat)} in KUBE-SERVICES, not the last service")
            return f"KUBE-SERVICES: {len(nat)} rules, the target's is rule {pos + 1} (the last before KUBE-NODEPORTS)"
        out = subprocess.run(["nsenter", f"--net={path}", "nft", "-j", "list", "map", "ip", "kube-proxy",
                              "service-ips"], capture_output=True, text=True, check=True).stdout
        elems = json.loads(out)["nftables"][1]["map"].get("elem", [])
        return f"map service-ips: {len(elems)} elements"

    def connlat(self, binary: str, ip: str, port: int, count: int) -> list[float]:
        p = subprocess.run(["nsenter", f"--net={nsfs.netns_path(self.client.netns)}", binary, ip, str(port),
                            str(count)], capture_output=True, text=True, timeout=600)
        res = json.loads(p.stdout)
        if res["failed"]:
            raise SystemExit(f"{self.name}: {res['failed']} of {count} connections to {ip}:{port} failed")
        return res["us"]

    def down(self) -> None:
        labmod.down(self.name)


def stats(us: list[float]) -> dict:
    return {"n": len(us), "p50_us": common.percentile(us, 50), "p90_us": common.percentile(us, 90),
            "p99_us": common.percentile(us, 99), "min_us": min(us), "mean_us": sum(us) / len(us)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", default="0,1000,5000,10000,30000")
    ap.add_argument("--modes", default="iptables,nftables")
    ap.add_argument("--samples", type=int, default=3000)
    ap.add_argument("--blocks", type=int, default=30)
    ap.add_argument("--connlat", default=os.path.join(common.ROOT, "benchmarks", "results", "connlat"))
    ap.add_argument("--json")
    args = ap.parse_args()
    sizes = sorted(int(x) for x in args.services.split(","))
    modes = args.modes.split(",")
    per_block = max(1, args.samples // args.blocks)
    info = common.banner("first-packet latency through a ClusterIP vs number of Services", {
        "sizes": sizes, "modes": {m: MODES[m] for m in modes}, "samples": per_block * args.blocks,
        "versions": {"iptables-legacy": common.tool_version("iptables-legacy"), "nft": common.tool_version("nft")}})
    tag = f"{os.getpid() % 100000}"
    labs: dict[str, Lab] = {}
    results = []
    try:
        for m in modes:
            labs[m] = Lab(m, tag)
        ctl = labs["control"] = Lab("iptables", tag, "c")   # never gets other Services: the noise reference
        for n in sizes:
            row: dict = {"services": n}
            for m in modes:
                lab = labs[m]
                dt = lab.sync_to(n)
                layout = lab.check_rules(n)
                print(f"  {m:8} N={n:<6} synced in {dt:.2f}s; {layout}", flush=True)
                row[m] = {"sync_from_previous_s": dt, "layout": layout, "samples_us": []}
                lab.connlat(args.connlat, TARGET_IP, 80, 20)                      # warm-up
            control: list[float] = []
            paired: dict[str, list[float]] = {m: [] for m in modes}
            for b in range(args.blocks):
                for m in (modes if b % 2 == 0 else modes[::-1]):
                    mine = labs[m].connlat(args.connlat, TARGET_IP, 80, per_block)
                    ref = ctl.connlat(args.connlat, TARGET_IP, 80, per_block)   # right after: same machine state
                    row[m]["samples_us"] += mine
                    control += ref
                    paired[m].append(common.percentile(mine, 50) - common.percentile(ref, 50))
            row["control"] = {"samples_us": control, **stats(control)}
            for m in modes:
                row[m].update(stats(row[m]["samples_us"]))
                row[m]["block_p50_minus_control_us"] = paired[m]
                row[m]["excess_over_control_p50_us"] = common.median(paired[m])
                print(f"  {m:8} N={n:<6} connect() p50 {row[m]['p50_us']:7.1f}us  p90 {row[m]['p90_us']:7.1f}us  "
                      f"p99 {row[m]['p99_us']:7.1f}us  ({row[m]['n']} samples); minus the control lab, median "
                      f"of {len(paired[m])} paired blocks: {row[m]['excess_over_control_p50_us']:+.1f}us", flush=True)
            print(f"  {'control':8} N={n:<6} connect() p50 {row['control']['p50_us']:7.1f}us  p99 "
                  f"{row['control']['p99_us']:7.1f}us (iptables mode, no other Services)", flush=True)
            results.append(row)
    finally:
        for lab in labs.values():
            lab.down()
    labs.pop("control", None)
    base = {m: results[0][m]["p50_us"] for m in modes} if results and results[0]["services"] == 0 else None
    print("\nfirst packet (connect() through the ClusterIP), microseconds")
    print(f"{'services':>8} " + " ".join(f"{m + ' p50':>14} {'p99':>7} {'+p50 vs 0':>9} {'-control':>9}" for m in modes))
    for row in results:
        cells = []
        for m in modes:
            extra = row[m]["p50_us"] - base[m] if base else None
            row[m]["p50_minus_p50_at_0_us"] = extra
            cells.append(f"{row[m]['p50_us']:14.1f} {row[m]['p99_us']:7.1f} "
                         f"{(f'{extra:+9.1f}' if extra is not None else '-'):>9} {row[m]['excess_over_control_p50_us']:+9.1f}")
        print(f"{row['services']:>8} " + " ".join(cells))
    common.dump(args.json, {"info": info, "results": results})


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("run as root: sudo .venv/bin/python benchmarks/first_packet.py")
    main()
