"""Bring-up and teardown time vs cluster size (3 nodes, N pods): netlab side by side with its peers. Root.

    sudo .venv/bin/python benchmarks/bringup.py [--pods 10,100,300,1000] [--repeat 3]
                                                [--tools netlab,shell,mininet,floor] [--floor PATH] [--json out.json]

Tools (each sample builds N pods, spread over 3 nodes, and then removes them):
  netlab   `netlab up` through its API (lab.up) on a generated scenario: one Deployment of N replicas of the
           built-in server over 3 workers (nodeCIDRMaskSize 22, so 334 pods fit a node), VXLAN, iptables
           rules, one server process per node. Then, untimed, every pod is checked from its node: a TCP
           connect + HTTP GET /hostname must return that pod's name. Teardown: lab.down.
  shell    benchmarks/shell_bringup.sh: plain `ip` commands building the same namespaces, veths, bridges,
           addresses and routes (no servers, no UTS namespaces, no netfilter rules); teardown `ip netns del`.
  mininet  Debian's Mininet: Mininet(topo=SingleSwitchTopo(N), switch=LinuxBridge, controller=None),
           build + start() timed as up, stop() as down (benchmarks/mininet_bringup.py), run with /usr/bin/python3
           inside `unshare --net --pid --fork --mount-proc`, so the host's root namespace is never touched
           (checked: the root namespace's links, addresses, routes and rules are compared before and after).
  floor    benchmarks/floor.c: the bare system calls netlab's fabric makes per pod, in C (see that file).
The shell, floor and mininet labs are checked too (untimed): a ping from a node (mininet: from h1) to a pod.

Samples are interleaved: each repeat runs every size, and within a size every tool, in an order that rotates
from repeat to repeat. Between samples the kernel is given time to free the previous namespaces
(common.settle: until the kernel's count of live network namespaces is back where it was). Reported: medians of up and down, per pod (median time / N), and ratios.

The host's neighbour table (net.ipv4.neigh.default.gc_thresh3, 1024 by default) is shared by every
namespace; checking 1000 pods from their nodes needs about 2 entries per pod. So the check goes in batches
of 100 pods per node and flushes the batch's neighbour entries (node and pods) before the next one: the host
setting is left alone.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

from netlab.dataplane import lab as labmod  # noqa: E402
from netlab import lab_spec  # noqa: E402
from netlab.dataplane import nsfs  # noqa: E402
from netlab.spec.parse import load_text  # noqa: E402

TOOLS = ("netlab", "shell", "mininet", "floor")
SCENARIO = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: {name}
nodes: [{{role: worker}}, {{role: worker}}, {{role: worker}}]
networking: {{nodeCIDRMaskSize: 22}}
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
BATCH = 100


def _flush_neigh(netns: str) -> None:
    subprocess.run(["ip", "-n", netns, "neigh", "flush", "all"], capture_output=True)


def check_all_answer(cluster) -> int:
    """From each node's namespace, GET /hostname from each of its pods; returns how many answered with
    their own name. In batches of BATCH pods, each batch's neighbour entries flushed before the next."""
    ok = 0
    for node in cluster.nodes:
        pods = cluster.pods_on(node.name)
        for start in range(0, len(pods), BATCH):
            batch = pods[start:start + BATCH]

            def probe(batch=batch) -> int:
                good = 0
                for p in batch:
                    for attempt in range(3):
                        try:
                            with socket.create_connection((str(p.ip), 8080), timeout=3) as s:
                                s.sendall(b"GET /hostname HTTP/1.0\r\n\r\n")
                                data = b""
                                while chunk := s.recv(4096):
                                    data += chunk
                            good += data.endswith(p.name.encode())
                            break
                        except OSError as e:
                            if attempt == 2:
                                print(f"    {p.name} ({p.ip}) did not answer: {e}", flush=True)
                            time.sleep(0.5)
                return good
            ok += nsfs.in_netns(node.netns, probe)
            if len(pods) > BATCH:
                _flush_neigh(node.netns)
                for p in batch:
                    _flush_neigh(p.netns)
    return ok


# ---------------------------------------------------------------- one sample per tool

def sample_netlab(n: int, tag: str) -> dict:
    name = f"bup{tag}"
    text = SCENARIO.format(name=name, pods=n)
    sc = load_text(text)
    labmod.down(name)
    t0 = time.perf_counter()
    result = lab_spec.up(sc, text)
    t_up = time.perf_counter() - t0
    try:
        before = common.arp_stat()
        answered = check_all_answer(result.cluster)
        after = common.arp_stat()
    finally:
        t0 = time.perf_counter()
        labmod.down(name)
        t_down = time.perf_counter() - t0
    if answered != n:
        raise SystemExit(f"netlab: only {answered} of {n} pods answered")
    return {"up_s": t_up, "down_s": t_down, "check": f"{answered}/{n} pods answered GET /hostname from their node",
            "neigh_table_fulls_during_check": after["table_fulls"] - before["table_fulls"]}


def _timed(argv: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if p.returncode:
        raise SystemExit(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr.strip()[-2000:]}")
    return dt, p.stdout


def _ping(netns: str, ip: str) -> bool:
    return subprocess.run(["ip", "netns", "exec", netns, "ping", "-c1", "-W2", ip],
                          capture_output=True).returncode == 0


def _last_pod_ip(n: int) -> tuple[str, str]:
    """(node netns suffix, IP) of the last pod in shell_bringup.sh / floor.c's layout."""
    i = n - 1
    k = i % 3
    m = i // 3 + 2
    return f"node.n{k + 1}", f"10.244.{4 * k + m // 256}.{m % 256}"


def sample_shell(n: int, tag: str) -> dict:
    prefix = f"bsh{tag}"
    script = os.path.join(common.HERE, "shell_bringup.sh")
    try:
        t_up, _ = _timed([script, "up", prefix, str(n)])
        node, ip = _last_pod_ip(n)
        ok = _ping(f"{prefix}.{node}", ip)
    finally:
        t_down, _ = _timed([script, "down", prefix])
    if not ok:
        raise SystemExit(f"shell: the last pod ({ip}) did not answer a ping from its node")
    return {"up_s": t_up, "down_s": t_down, "check": "last pod answers ping from its node"}


def sample_floor(n: int, tag: str, binary: str) -> dict:
    prefix = f"bfl{tag}"
    try:
        # the process's wall time (what a user waits for), and its own inner timing for reference
        t_up, out = _timed([binary, "up", prefix, str(n)])
        inner_up = json.loads(out)["up_s"]
        node, ip = _last_pod_ip(n)
        ok = _ping(f"{prefix}.{node}", ip)
    finally:
        t_down, out = _timed([binary, "down", prefix])
    if not ok:
        raise SystemExit(f"floor: the last pod ({ip}) did not answer a ping from its node")
    return {"up_s": t_up, "down_s": t_down, "inner_up_s": inner_up, "inner_down_s": json.loads(out)["down_s"],
            "check": "last pod answers ping from its node"}


def sample_mininet(n: int, tag: str) -> dict:
    before = common.root_netns_snapshot()
    argv = ["unshare", "--net", "--pid", "--fork", "--mount-proc", "/usr/bin/python3",
            os.path.join(common.HERE, "mininet_bringup.py"), str(n)]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
    if p.returncode:
        raise SystemExit(f"mininet failed ({p.returncode}): {p.stderr.strip()[-2000:]}")
    res = json.loads(p.stdout.strip().splitlines()[-1])
    changed = common.snapshot_diff(before, common.root_netns_snapshot())
    if changed:
        raise SystemExit(f"mininet changed the host's root namespace: {changed}")
    if not res["ping_ok"] or res["hosts"] != n:
        raise SystemExit(f"mininet: {res}")
    return {"up_s": res["up_s"], "down_s": res["down_s"], "check": "h1 pings the last host",
            "root_netns_unchanged": True, "links_in_runner_netns": res["links_in_runner_netns"]}


# ---------------------------------------------------------------- peers' availability

def available(tools: list[str], floor_bin: str | None) -> dict[str, str | None]:
    """tool -> None if it can run, else why not (the report's column says so)."""
    why: dict[str, str | None] = {}
    for t in tools:
        if t == "mininet":
            ok = os.path.exists("/usr/bin/python3") and subprocess.run(
                ["/usr/bin/python3", "-c", "import mininet.net, mininet.nodelib"], capture_output=True).returncode == 0
            ok = ok and bool(common.tool_version("brctl", ["brctl", "--version"])) and bool(
                common.tool_version("mnexec", ["mnexec", "-v"]) is not None)
            why[t] = None if ok else "Mininet not installed (apt-get install mininet bridge-utils)"
        elif t == "floor":
            why[t] = None if floor_bin and os.access(floor_bin, os.X_OK) else \
                "floor binary not built (gcc -O2 -pthread -o floor benchmarks/floor.c)"
        else:
            why[t] = None
    return why


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", default="10,100,300,1000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--floor", default=os.path.join(common.ROOT, "benchmarks", "results", "floor"),
                    help="the compiled benchmarks/floor.c (scripts/bench builds it)")
    ap.add_argument("--json")
    args = ap.parse_args()
    sizes = [int(x) for x in args.pods.split(",")]
    tools = [t for t in args.tools.split(",") if t]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        raise SystemExit(f"unknown tools {unknown}; known: {TOOLS}")
    why = available(tools, args.floor)
    runnable = [t for t in tools if why[t] is None]
    versions = {"iproute2": common.tool_version("ip", ["ip", "-V"]), "mininet": common.deb_version("mininet"),
                "bridge-utils": common.deb_version("bridge-utils"), "gcc": common.tool_version("gcc"),
                "pyroute2": common.run_text([sys.executable, "-c", "import pyroute2; print(pyroute2.__version__)"])}
    info = common.banner("bring-up / teardown vs cluster size (3 nodes)",
                         {"sizes": sizes, "repeat": args.repeat, "tools": tools, "versions": versions,
                          "unavailable": {t: w for t, w in why.items() if w}})
    samples: dict[str, dict[int, list[dict]]] = {t: {n: [] for n in sizes} for t in runnable}
    tag = f"{os.getpid() % 100000}"
    for r in range(args.repeat):
        for n in sizes:
            order = runnable[r % len(runnable):] + runnable[:r % len(runnable)] if runnable else []
            for t in order:
                baseline = common.live_netns()
                if t == "netlab":
                    s = sample_netlab(n, tag)
                elif t == "shell":
                    s = sample_shell(n, tag)
                elif t == "floor":
                    s = sample_floor(n, tag, args.floor)
                else:
                    s = sample_mininet(n, tag)
                s["repeat"] = r
                samples[t][n].append(s)
                print(f"  sample {r + 1}/{args.repeat} pods={n:<5} {t:8} up {s['up_s']:8.3f}s "
                      f"({s['up_s'] / n * 1000:6.2f} ms/pod)  down {s['down_s']:7.3f}s  [{s['check']}]", end="", flush=True)
                st = common.settle(baseline)
                s["kernel_freed_namespaces_after_s"] = st["settle_s"]
                print(f"  (kernel freed the namespaces {st['settle_s']:.1f}s after)", flush=True)
    results = []
    print(f"\nbring-up, 3 nodes: medians of {args.repeat} (per pod = median / pods)")
    print(f"{'pods':>6} " + " ".join(f"{t + ' up':>13} {'/pod':>8} {t + ' down':>13}" for t in runnable))
    for n in sizes:
        row = {"pods": n}
        cells = []
        for t in runnable:
            up = common.median(s["up_s"] for s in samples[t][n])
            down = common.median(s["down_s"] for s in samples[t][n])
            row[t] = {"up_median_s": up, "down_median_s": down, "up_per_pod_ms": up / n * 1000,
                      "down_per_pod_ms": down / n * 1000, "samples": samples[t][n]}
            cells.append(f"{up:12.3f}s {up / n * 1000:6.2f}ms {down:12.3f}s")
        for t, w in why.items():
            if w:
                row[t] = {"unavailable": w}
        results.append(row)
        print(f"{n:>6} " + " ".join(cells))
    ratios = []
    if "netlab" in runnable:
        print("\nratios of bring-up time per pod (>1: netlab is faster than the peer; <1: slower)")
        for row in results:
            rr = {"pods": row["pods"]}
            for t in runnable:
                if t != "netlab":
                    rr[f"{t}_over_netlab"] = row[t]["up_median_s"] / row["netlab"]["up_median_s"]
            ratios.append(rr)
            print("  " + "  ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in rr.items()))
    common.dump(args.json, {"info": info, "results": results, "ratios": ratios})


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("run as root: sudo .venv/bin/python benchmarks/bringup.py")
    main()
