"""kube-proxy's userspace mode next to iptables mode: requests/s and latency through the same NodePort and
ClusterIP, in one lab switched between the modes. Run as root (scripts/bench --only userspace runs it in
its private /run/netns).

    sudo .venv/bin/python benchmarks/userspace_bench.py [--seconds 5] [--repeat 2] [--connections 16]
                                                        [--json out.json]

A lab `bus` (control-plane + worker, no cluster DNS, no control loop): Deployment web (2 replicas of
netlab's built-in server, agnhost netexec) behind a NodePort Service (30090), a client pod. For each
repeat, the lab is switched to iptables mode and then to userspace mode (`up --proxy-mode`, the pods stay),
and wrk (1 thread, --connections connections, --seconds, --latency) runs, in each mode:
  - nodeport-keepalive: from the external host to the control-plane's NodePort, keep-alive connections
    (the proxy's cost per byte: every request crosses a process);
  - nodeport-close: the same with `Connection: close` (a new connection per request: the proxy's accept,
    its own connect to an endpoint and the relay's setup, against iptables mode's conntrack entry);
  - clusterip-keepalive: from the client pod to the ClusterIP.
Requests/s, p50/p99 and wrk's error counts, per run and median. Numbers go to docs/bench (never into
assertions).
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

sys.path.insert(0, common.ROOT)
from netlab import lab_spec  # noqa: E402
from netlab.dataplane import lab as labmod  # noqa: E402
from netlab.spec.parse import load_text  # noqa: E402

LAB = "bus"
SCENARIO = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: bus
nodes: [{name: bus-cp, role: control-plane}, {name: bus-w1}]
dns: {replicas: 0}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: registry.k8s.io/e2e-test-images/agnhost:2.53, args: [netexec, --http-port=8080],
                    ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {type: NodePort, selector: {app: web}, ports: [{port: 80, targetPort: 8080, nodePort: 30090}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: bus-w1
  containers: [{name: c, image: busybox, ports: [{containerPort: 8080}]}]
"""
MODES = ("iptables", "userspace")
PATHS = ("nodeport-keepalive", "nodeport-close", "clusterip-keepalive")


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def wrk(netns: str, url: str, seconds: int, conns: int, close: bool) -> dict:
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", url]
    if close:
        argv[1:1] = ["-H", "Connection: close"]
    r = subprocess.run(labmod.netns_exec_argv(netns, argv), capture_output=True, text=True, timeout=seconds + 60)
    out = r.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": _ms(lat["50"]), "p99_ms": _ms(lat["99"]), "requests": total,
            "socket_errors": sum(int(x) for x in sock.groups()) if sock else 0,
            "non_2xx": int(non2xx.group(1)) if non2xx else 0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--json")
    a = ap.parse_args()
    info = common.banner("kube-proxy userspace mode vs iptables mode", {"wrk": common.deb_version("wrk")})
    out: dict = {"info": info, "params": vars(a), "runs": {m: {p: [] for p in PATHS} for m in MODES}}
    try:
        for i in range(a.repeat):
            for mode in MODES:
                sc = load_text(SCENARIO, "<bench userspace>")
                cluster = lab_spec.up(sc, SCENARIO, proxy_mode=mode, control_loop=False).cluster
                assert cluster.networking.proxy_mode == mode
                node = next(n for n in cluster.nodes if n.name == "bus-cp")
                cip = next(s for s in cluster.services if s.name == "web").cluster_ip
                client = next(p for p in cluster.pods if p.name == "client")
                for path in PATHS:
                    netns, url = (client.netns, f"http://{cip}/") if path.startswith("clusterip") else \
                        (cluster.external_netns, f"http://{node.ip}:30090/")
                    r = wrk(netns, url, a.seconds, a.connections, path.endswith("close"))
                    out["runs"][mode][path].append(r)
                    print(f"  run {i + 1} {mode:9} {path:19}: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.2f} ms, "
                          f"p99 {r['p99_ms']:.2f} ms, errors {r['socket_errors']} socket, {r['non_2xx']} non-2xx",
                          flush=True)
    finally:
        labmod.down(LAB)
    out["median"] = {m: {p: {k: common.median([r[k] for r in out["runs"][m][p]]) for k in ("rps", "p50_ms", "p99_ms")}
                         for p in PATHS} for m in MODES}
    common.dump(a.json, out)
    for path in PATHS:
        ipt, us = out["median"]["iptables"][path], out["median"]["userspace"][path]
        print(f"{path}: iptables {ipt['rps']:.0f} req/s p99 {ipt['p99_ms']:.2f} ms; userspace {us['rps']:.0f} req/s "
              f"p99 {us['p99_ms']:.2f} ms ({us['rps'] / ipt['rps']:.2f}x the requests/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
