"""Ingress: requests/s and p99 through the lab's ingress-nginx (the real nginx in the controller pod) vs
the same Service through its NodePort, in one run; and the time to apply one Ingress change at 1,000
Ingress rules. Run as root (scripts/bench --only ingress runs it in its private /run/netns).

    sudo .venv/bin/python benchmarks/ingress_bench.py [--seconds 8] [--repeat 2] [--connections 16]
                                                     [--rules 1000] [--changes 3] [--json out.json]

1. A lab `bing` (control-plane + worker, no cluster DNS): Deployment web (2 replicas of agnhost
   serve-hostname, netlab's built-in server) behind Service web of type NodePort (30081), the
   ingress-nginx add-on (`ingress:` map, http NodePort 30080, one controller pod, externalTrafficPolicy
   Cluster) and an Ingress `bench` routing host web.example to web:80.
2. Throughput and latency: wrk (1 thread, --connections keep-alive connections, --seconds, --latency)
   from the lab's external host, alternately to http://NODE:30080/ with `Host: web.example` (through
   nginx to the pods' IPs) and to http://NODE:30081/ (kube-proxy's NodePort straight to the pods),
   both to the node that runs the controller pod; requests/s, p50/p99 and wrk's error counts
   (socket errors, non-2xx answers), per run and median.
3. Change at scale: Ingresses with --rules host rules in total (10 Ingresses of rules/10 hosts) are
   applied and served; then, --changes times, one new Ingress (a new host) is applied with
   `netlab apply -f` and the time from the apply's start to the first 200 answer for the new host
   through nginx (a curl every 20 ms from the external host) is measured: what a user waits for. The
   pure part (plan + render of the whole configuration, in this process) is timed alone too.
Numbers go to docs/bench (never into assertions).
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

sys.path.insert(0, common.ROOT)
from netlab import lab_spec  # noqa: E402
from netlab.dataplane import lab as labmod  # noqa: E402
from netlab.spec.parse import load_text  # noqa: E402

LAB = "bing"
SCENARIO = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: bing
nodes: [{name: bing-cp, role: control-plane}, {name: bing-w1}]
dns: {replicas: 0}
ingress: {httpNodePort: 30080, httpsNodePort: 30443}
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
      containers: [{name: c, image: registry.k8s.io/e2e-test-images/agnhost:2.39, args: [serve-hostname],
                    ports: [{containerPort: 9376}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {type: NodePort, selector: {app: web}, ports: [{port: 80, targetPort: 9376, nodePort: 30081}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: bench}
spec:
  ingressClassName: nginx
  rules:
  - host: web.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"""


def ingress_doc(name: str, hosts: list[str]) -> str:
    rules = "".join(f"  - host: {h}\n    http:\n      paths:\n      - {{path: /, pathType: Prefix, backend: "
                    f"{{service: {{name: web, port: {{number: 80}}}}}}}}\n" for h in hosts)
    return (f"apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}}}\nspec:\n"
            f"  ingressClassName: nginx\n  rules:\n{rules}")


def ext(cluster, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(labmod.netns_exec_argv(cluster.external_netns, argv), capture_output=True, text=True,
                          timeout=timeout)


def netlab(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    exe = os.path.join(os.path.dirname(sys.executable), "netlab")
    argv = [exe] if os.path.exists(exe) else [sys.executable, "-m", "netlab"]
    r = subprocess.run([*argv, *args, "--lab", LAB], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"netlab {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


def code(cluster, host: str, addr: str) -> str:
    r = ext(cluster, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", "-H",
                      f"Host: {host}", f"http://{addr}:30080/"])
    return r.stdout.strip()


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def wrk(cluster, url: str, seconds: int, conns: int, host: str | None) -> dict:
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", url]
    if host:
        argv[1:1] = ["-H", f"Host: {host}"]
    out = ext(cluster, argv, timeout=seconds + 60).stdout
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
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--changes", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    info = common.banner("Ingress: nginx vs NodePort, and one change at scale",
                         {"nginx": common.deb_version("nginx"), "wrk": common.deb_version("wrk")})
    out: dict = {"info": info, "params": vars(a), "throughput": {"ingress": [], "nodeport": []}, "change": {}}
    sc = load_text(SCENARIO, "<bench ingress>")
    tmp = tempfile.mkdtemp(prefix="bench-ingress-")
    try:
        res = lab_spec.up(sc, SCENARIO, control_loop=True)
        cluster = res.cluster
        addr = None
        end = time.monotonic() + 120
        while time.monotonic() < end and not addr:
            rows = netlab("get", "ingress", "bench").stdout.splitlines()
            cols = rows[1].split() if len(rows) > 1 else []
            addr = cols[3] if len(cols) >= 6 and re.match(r"\d+\.\d+\.\d+\.\d+$", cols[3]) else None
            time.sleep(0.5)
        while time.monotonic() < end and code(cluster, "web.example", addr) != "200":
            time.sleep(0.3)
        out["node"] = addr
        for i in range(a.repeat):
            for kind, url, host in (("ingress", f"http://{addr}:30080/", "web.example"),
                                    ("nodeport", f"http://{addr}:30081/", None)):
                r = wrk(cluster, url, a.seconds, a.connections, host)
                out["throughput"][kind].append(r)
                print(f"  {kind:8} run {i + 1}: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.2f} ms, p99 "
                      f"{r['p99_ms']:.2f} ms, errors {r['socket_errors']} socket, {r['non_2xx']} non-2xx", flush=True)
        for kind in ("ingress", "nodeport"):
            rows = out["throughput"][kind]
            out["throughput"][f"{kind}_median"] = {k: common.median([r[k] for r in rows]) for k in ("rps", "p50_ms", "p99_ms")}
        # 1,000 rules, then one change at a time
        per = max(1, a.rules // 10)
        docs = [ingress_doc(f"many-{i}", [f"h{i}-{j}.example" for j in range(per)]) for i in range(10)]
        path = os.path.join(tmp, "many.yaml")
        with open(path, "w") as f:
            f.write("---\n".join(docs))
        t0 = time.perf_counter()
        netlab("apply", "-f", path)
        last = f"h9-{per - 1}.example"
        while code(cluster, last, addr) != "200":
            time.sleep(0.05)
        out["change"]["bulk_apply_s"] = time.perf_counter() - t0
        out["change"]["rules"] = 10 * per + 1
        samples = []
        for k in range(a.changes):
            p = os.path.join(tmp, f"new{k}.yaml")
            with open(p, "w") as f:
                f.write(ingress_doc(f"new-{k}", [f"new{k}.example"]))
            t0 = time.perf_counter()
            netlab("apply", "-f", p)
            applied = time.perf_counter() - t0
            while code(cluster, f"new{k}.example", addr) != "200":
                time.sleep(0.02)
            samples.append({"apply_s": applied, "served_s": time.perf_counter() - t0})
            print(f"  change {k + 1} at {10 * per + 1 + k} rules: apply returned after {applied:.2f} s, "
                  f"served after {samples[-1]['served_s']:.2f} s", flush=True)
        out["change"]["samples"] = samples
        out["change"]["served_median_s"] = common.median([s["served_s"] for s in samples])
        # the pure part alone: plan + render of the whole configuration from the store's objects
        from netlab.ingress import config as ingconfig
        from netlab.live import store_for
        objs = store_for(LAB).snapshot(("Ingress", "IngressClass", "Service", "EndpointSlice", "Secret"))[0]
        t0 = time.perf_counter()
        n = 5
        for _ in range(n):
            text = ingconfig.render(ingconfig.plan(objs, ingconfig.Settings()), "/etc/ingress-controller", "/tmp/nginx")
        out["change"]["render_ms"] = (time.perf_counter() - t0) / n * 1000
        out["change"]["conf_bytes"] = len(text)
        print(f"  plan + render of {out['change']['rules'] + a.changes} rules: {out['change']['render_ms']:.1f} ms "
              f"({len(text)} bytes)", flush=True)
    finally:
        labmod.down(LAB)
        subprocess.run(["rm", "-rf", tmp])
    common.dump(a.json, out)
    t = out["throughput"]
    print(f"ingress: {t['ingress_median']['rps']:.0f} req/s p99 {t['ingress_median']['p99_ms']:.2f} ms; "
          f"nodeport: {t['nodeport_median']['rps']:.0f} req/s p99 {t['nodeport_median']['p99_ms']:.2f} ms; "
          f"one change at {out['change']['rules']} rules served after {out['change']['served_median_s']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
