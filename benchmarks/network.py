"""Throughput and latency of the pod network, per path. Run as root.

    sudo .venv/bin/python benchmarks/network.py [--seconds 5] [--rr 2000] [--repeat 3] [--tcprr PATH] [--json out.json]

Two labs of two nodes (w1, w2), one with flannel VXLAN (underlay MTU 1500, so flannel.1 and the pods get
1450), one with host-gw (pods 1500). In each: a client pod on w1, a server pod on w1 and one on w2, each
server running `iperf3 -s` and benchmarks/tcprr.c's echo server as its containers (real processes started
by netlab), and a ClusterIP Service in front of each server. Paths, client -> server:
  same node          pod -> pod on w1 (veth, cni0, veth)
  host-gw            pod -> pod on w2, routed over the underlay, no encapsulation
  vxlan              pod -> pod on w2, VXLAN-encapsulated (flannel.1, VNI 1, port 8472)
  clusterip vxlan    pod -> ClusterIP of the w2 server (kube-proxy iptables DNAT, then VXLAN)
  clusterip local    pod -> ClusterIP of the w1 server (DNAT, same node)
Per path and repeat: iperf3 -c for --seconds (one TCP stream, JSON: received bits/s, retransmits), then
tcprr: one TCP connection, --rr round trips of 64 bytes each timed (p50/p99, transactions/s), client and
echo server pinned to CPU 0 (unpinned, on 2 cores, the result depends on whether the scheduler puts them on
one CPU or two, and comes out bimodal: ~20 or ~70 us for the same path). Paths are
interleaved within each repeat; throughput is the median over repeats, latency percentiles are over all
round trips of all repeats.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

from netlab.dataplane import lab as labmod  # noqa: E402
from netlab import lab_spec  # noqa: E402
from netlab.dataplane import nsfs  # noqa: E402
from netlab.spec.parse import load_text  # noqa: E402

def scenario(name: str, backend: str, tcprr: str, iperf3: str) -> str:
    docs = [f"""apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: {name}
nodes: [{{role: worker, name: w1}}, {{role: worker, name: w2}}]
networking: {{backend: {backend}, mtu: 1500, kubeProxyMode: iptables}}
""", """apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: w1
  containers: [{name: c, ports: [{containerPort: 8080}]}]
"""]
    for where, node in (("local", "w1"), ("remote", "w2")):
        docs.append(f"""apiVersion: v1
kind: Pod
metadata: {{name: srv-{where}, labels: {{app: srv-{where}}}}}
spec:
  nodeName: {node}
  containers:
  - {{name: iperf, command: [{iperf3}, -s, -p, "5201"], ports: [{{containerPort: 5201}}]}}
  - {{name: rr, command: [{tcprr}, -s, "7000"], ports: [{{containerPort: 7000}}]}}
""")
        docs.append(f"""apiVersion: v1
kind: Service
metadata: {{name: srv-{where}}}
spec:
  selector: {{app: srv-{where}}}
  ports: [{{name: iperf, port: 5201}}, {{name: rr, port: 7000}}]
""")
    return "---\n".join(docs)


class Lab:
    def __init__(self, backend: str, tag: str, tcprr: str, prefix: str = "nw"):
        self.name = f"{prefix}{backend[0]}{tag}"
        text = scenario(self.name, backend, tcprr, shutil.which("iperf3"))
        sc = load_text(text)
        labmod.down(self.name)
        self.cluster = lab_spec.up(sc, text).cluster
        self.client = self.cluster.pod("default", "client")
        self.pods = {p.name: p for p in self.cluster.pods}
        self.svcs = {s.name: str(s.cluster_ip) for s in self.cluster.services}

    def exec(self, argv: list[str], timeout: float = 120) -> str:
        p = subprocess.run(["nsenter", f"--net={nsfs.netns_path(self.client.netns)}", *argv],
                           capture_output=True, text=True, timeout=timeout)
        if p.returncode:
            raise RuntimeError(f"{' '.join(argv)}: {p.stderr.strip()[-1000:] or p.stdout.strip()[-1000:]}")
        return p.stdout

    def mtu(self, pod: str) -> int:
        out = subprocess.run(["ip", "-n", self.pods[pod].netns, "-j", "link", "show", "eth0"], capture_output=True,
                             text=True, check=True).stdout
        return json.loads(out)[0]["mtu"]

    def wait_ready(self, ip: str) -> None:
        for _ in range(100):
            try:
                self.exec(["bash", "-c", f"exec 3<>/dev/tcp/{ip}/5201 && exec 4<>/dev/tcp/{ip}/7000"], timeout=5)
                return
            except (RuntimeError, subprocess.TimeoutExpired):
                time.sleep(0.1)
        raise SystemExit(f"{self.name}: servers at {ip} do not answer")

    def pin_rr_servers(self, cpu: int) -> list[int]:
        """Put the tcprr echo servers (processes of this lab's server pods, found by their netns) on `cpu`."""
        pids = []
        for name, pod in self.pods.items():
            if not name.startswith("srv-"):
                continue
            out = subprocess.run(["ip", "netns", "pids", pod.netns], capture_output=True, text=True).stdout.split()
            for pid in out:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        argv = f.read().split(b"\0")
                except OSError:
                    continue
                if argv and argv[0].endswith(b"tcprr"):
                    os.sched_setaffinity(int(pid), {cpu})
                    pids.append(int(pid))
        return pids

    def down(self) -> None:
        labmod.down(self.name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rr", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tcprr", default=os.path.join(common.ROOT, "benchmarks", "results", "tcprr"))
    ap.add_argument("--json")
    args = ap.parse_args()
    if shutil.which("iperf3") is None:
        raise SystemExit("iperf3 is not installed (apt-get install iperf3; scripts/bench does it)")
    info = common.banner("pod network throughput (iperf3) and request/response latency (tcprr)", {
        "seconds": args.seconds, "round_trips": args.rr, "repeat": args.repeat,
        "versions": {"iperf3": common.tool_version("iperf3", ["iperf3", "--version"])}})
    tag = f"{os.getpid() % 100000}"
    labs = {}
    try:
        labs["vxlan"] = Lab("vxlan", tag, args.tcprr)
        labs["host-gw"] = Lab("host-gw", tag, args.tcprr)
        v, h = labs["vxlan"], labs["host-gw"]
        paths = {  # name -> (lab, destination IP, pod whose eth0 MTU applies)
            "same node": (v, str(v.pods["srv-local"].ip), "srv-local"),
            "host-gw": (h, str(h.pods["srv-remote"].ip), "srv-remote"),
            "vxlan": (v, str(v.pods["srv-remote"].ip), "srv-remote"),
            "clusterip vxlan": (v, v.svcs["srv-remote"], "srv-remote"),
            "clusterip local": (v, v.svcs["srv-local"], "srv-local"),
        }
        for lab, ip, _ in paths.values():
            lab.wait_ready(ip)
        # request/response: client and echo server on the same CPU, so that every round trip takes the same
        # path through the scheduler (on 2 cores, unpinned runs land on one or two CPUs and come out bimodal)
        pinned = v.pin_rr_servers(0) + h.pin_rr_servers(0)
        if len(pinned) != 4:
            raise SystemExit(f"expected 4 tcprr servers to pin, found {pinned}")
        res = {name: {"mtu": lab.mtu(pod), "backend": "host-gw" if lab is h else "vxlan", "dst": ip,
                      "gbps": [], "retransmits": [], "rr_us": [], "rr_tps": []}
               for name, (lab, ip, pod) in paths.items()}
        names = list(paths)
        for r in range(args.repeat):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                lab, ip, _ = paths[name]
                out = json.loads(lab.exec(["iperf3", "-c", ip, "-p", "5201", "-t", str(args.seconds), "-J"],
                                          timeout=args.seconds + 60))
                if "error" in out:
                    raise SystemExit(f"iperf3 {name}: {out['error']}")
                gbps = out["end"]["sum_received"]["bits_per_second"] / 1e9
                retr = out["end"]["sum_sent"].get("retransmits", 0)
                rr = json.loads(lab.exec(["taskset", "-c", "0", args.tcprr, "-c", ip, "7000", str(args.rr)]))
                res[name]["gbps"].append(gbps)
                res[name]["retransmits"].append(retr)
                res[name]["rr_us"] += rr["us"]
                res[name]["rr_tps"].append(rr["count"] / rr["total_s"])
                print(f"  repeat {r + 1}/{args.repeat} {name:16} iperf3 {gbps:6.2f} Gbit/s ({retr} retransmits)  "
                      f"tcprr p50 {common.percentile(rr['us'], 50):6.1f}us p99 {common.percentile(rr['us'], 99):6.1f}us "
                      f"{rr['count'] / rr['total_s']:8.0f} trans/s", flush=True)
    finally:
        for lab in labs.values():
            lab.down()
    print(f"\npod network, medians of {args.repeat} x {args.seconds}s iperf3; tcprr over {args.repeat} x {args.rr} round trips")
    print(f"{'path':16} {'MTU':>5} {'Gbit/s':>7} {'vs same node':>12} {'rr p50':>8} {'rr p99':>8} {'trans/s':>8}")
    base = common.median(res["same node"]["gbps"])
    results = []
    for name in names:
        x = res[name]
        row = {"path": name, "mtu": x["mtu"], "backend": x["backend"], "gbps_median": common.median(x["gbps"]),
               "gbps_samples": x["gbps"], "retransmits": x["retransmits"],
               "rr_p50_us": common.percentile(x["rr_us"], 50), "rr_p90_us": common.percentile(x["rr_us"], 90),
               "rr_p99_us": common.percentile(x["rr_us"], 99), "rr_tps_median": common.median(x["rr_tps"]),
               "rr_tps_samples": x["rr_tps"], "rr_samples_us": x["rr_us"]}
        row["gbps_vs_same_node"] = row["gbps_median"] / base
        results.append(row)
        print(f"{name:16} {row['mtu']:>5} {row['gbps_median']:7.2f} {row['gbps_vs_same_node']:11.2f}x "
              f"{row['rr_p50_us']:7.1f}us {row['rr_p99_us']:7.1f}us {row['rr_tps_median']:8.0f}")
    common.dump(args.json, {"info": info, "results": results})


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("run as root: sudo .venv/bin/python benchmarks/network.py")
    main()
