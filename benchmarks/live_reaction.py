"""How fast a live lab reacts (issue 11), on real namespaces, as root:

1. readiness: a pod's readiness probe (exec, periodSeconds 1) starts failing at t0; measured: when the
   kubelet wrote Ready=False to the store (detected) and when no node's rules choose the pod any more
   (its IP gone from every node's iptables-save DNAT targets);
2. scale +10: from `netlab scale` to the 10 new pods Ready and in every node's rules;
3. the control loop's CPU while the lab is idle (30 s).

    sudo .venv/bin/python benchmarks/live_reaction.py [--pods 10] [--nodes 3] [--repeat 3]

Prints one JSON object. Kubernetes on kind, for comparison, is bounded by the same probe period plus
the EndpointSlice controller's batching and kube-proxy's minSyncPeriod (1 s by default), i.e. seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from netlab import lab_spec  # noqa: E402
from netlab.dataplane import lab as labmod  # noqa: E402
from netlab.dataplane.iptables import flavour_commands  # noqa: E402
from netlab.live import loop, store_for  # noqa: E402
from netlab.spec.parse import load_text  # noqa: E402


def scenario(name: str, nodes: int, pods: int, flag: str) -> str:
    ns = ", ".join(f"{{name: {name}-n{i}}}" for i in range(1, nodes + 1))
    return f"""apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: {name}
nodes: [{ns}]
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
      containers:
      - name: web
        args: [netexec, --http-port=8080]
        ports: [{{containerPort: 8080}}]
        readinessProbe: {{exec: {{command: [sh, -c, 'test ! -e {flag}.$(hostname)']}}, periodSeconds: 1, failureThreshold: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
"""


def chosen_everywhere(lab, ip: str) -> list[bool]:
    save = flavour_commands("auto")[2]
    out = []
    for n in lab.nodes:
        r = subprocess.run(labmod.netns_exec_argv(n.netns, [save, "-t", "nat"]), capture_output=True, text=True)
        out.append(f"--to-destination {ip}:" in r.stdout)
    return out


def ready(store, name: str) -> bool | None:
    p = store.try_get("Pod", "default", name)
    if p is None:
        return None
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or [])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=10)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    name = f"b-{secrets.token_hex(3)}"
    flag = f"/tmp/netlab-bench-{name}"
    text = scenario(name, a.nodes, a.pods, flag)
    sc = load_text(text, "<bench>")
    out: dict = {"pods": a.pods, "nodes": a.nodes}
    try:
        t = time.monotonic()
        lab_spec.up(sc, text)
        out["up_seconds"] = round(time.monotonic() - t, 2)
        store = store_for(name)
        cluster, _ = lab_spec.load_cluster(name)
        detect, rules = [], []
        pods = sorted(p.name for p in cluster.pods)
        for i in range(a.repeat):
            pod = next(p for p in cluster.pods if p.name == pods[i % len(pods)])
            t0 = time.time()
            open(f"{flag}.{pod.name}", "w").close()
            td = tr = None
            while time.time() - t0 < 30 and (td is None or tr is None):
                if td is None and ready(store, pod.name) is False:
                    td = time.time()
                if tr is None and not any(chosen_everywhere(cluster, str(pod.ip))):
                    tr = time.time()
                time.sleep(0.01)
            os.unlink(f"{flag}.{pod.name}")
            if td and tr:
                detect.append(td - t0)
                rules.append(tr - t0)
            while ready(store, pod.name) is not True:
                time.sleep(0.05)
        out["readiness_fail_to_detected_s"] = [round(x, 3) for x in detect]
        out["readiness_fail_to_rules_s"] = [round(x, 3) for x in rules]
        out["detected_to_rules_median_s"] = round(statistics.median(r - d for r, d in zip(rules, detect)), 3)
        # scale +10
        before = {p["metadata"]["name"] for p in store.list("Pod")}
        t0 = time.time()
        subprocess.run([sys.executable, "-m", "netlab", "scale", "deploy/web", "--replicas", str(a.pods + 10),
                        "--lab", name], check=True, capture_output=True)
        while True:
            new = [p for p in store.list("Pod") if p["metadata"]["name"] not in before]
            if len(new) == 10 and all(ready(store, p["metadata"]["name"]) for p in new):
                cluster, _ = lab_spec.load_cluster(name)
                ips = [str(cluster.pod("default", p["metadata"]["name"]).ip) for p in new]
                if all(all(chosen_everywhere(cluster, ip)) for ip in ips):
                    break
            if time.time() - t0 > 120:
                raise SystemExit("scale +10 did not finish in 120 s")
            time.sleep(0.05)
        out["scale_plus_10_to_ready_in_rules_s"] = round(time.time() - t0, 3)
        # idle CPU of the control loop
        time.sleep(5)
        rec = loop.running(name)
        pid = int(rec["pid"])
        tick = os.sysconf("SC_CLK_TCK")

        def cpu() -> float:
            with open(f"/proc/{pid}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            return (int(parts[11]) + int(parts[12])) / tick
        c0, w0 = cpu(), time.monotonic()
        time.sleep(30)
        out["idle_loop_cpu_percent_of_one_core"] = round(100 * (cpu() - c0) / (time.monotonic() - w0), 2)
        with open(f"/proc/{pid}/status") as f:
            rss = next(line for line in f if line.startswith("VmRSS"))
        out["loop_rss"] = rss.split(":", 1)[1].strip()
    finally:
        labmod.down(name)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
