"""10,000 pods on one machine: `netlab up` of 100 nodes x 100 pods next to the C floor at the same size,
memory per pod, the default probe matrix's time and `netlab down`'s. Root.

    sudo .venv/bin/python benchmarks/scale_bench.py [--nodes 100] [--pods-per-node 100] [--repeat 1]
                                                    [--floor PATH] [--json out.json]

Each repeat, one after the other (the kernel given time to free the namespaces between them, common.settle):
  nodes    `netlab up` of the same Cluster with the Deployment at 0 replicas (the nodes' own cost: namespaces,
           bridges, VXLAN, rules, one built-in server process per node), then `netlab down`;
  netlab   `netlab up FILE` (the CLI, as a user runs it: parse, the machine's limits, the controllers making
           and scheduling the pods, the kernel work, the control loop started, every pod Ready) of one
           Deployment of N x P replicas of the built-in server over N workers (VXLAN, iptables mode, the default
           /24 per node, the cluster DNS's 2 pods); then `netlab probe` (the default matrix: node<->pod and
           pod<->pod for every node pair, sampled as netlab samples it: the first pods of each node) and
           `netlab down`, each timed as a command;
  floor    benchmarks/floor.c at the same size (N nodes, N x P pods, /24 per node): the bare system calls.
Memory: what a lab holds is the mean of MemAvailable's (/proc/meminfo) drop from before `up` to 3 s after
it, and of its rise from before `down` to 2 s after the kernel freed the namespaces (the machine is shared:
two looks halve the noise of others' work); the difference of the netlab and nodes samples over the pods is
the memory per pod (kernel and netlab's processes), the nodes sample's over N the memory per node. Beside
it the kernel's slab (Slab in /proc/meminfo) and the lab's
processes' resident memory (every process tagged NETLAB_OWNER=<lab>/..., and the lab's control loop), and
the floor's MemAvailable drop over its pods (the kernel's share alone).
CPU taken by others: PID 1's CPU time during each `up` (init_cpu), as the machine's init is not always idle.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from livelab import proc_cpu  # noqa: E402

NETLAB = os.path.join(common.ROOT, ".venv", "bin", "netlab")
SCENARIO = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: {name}
nodes: [{nodes}]
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


def meminfo() -> dict[str, int]:
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            out[key] = int(rest.split()[0])
    return out


def lab_rss_kib(lab: str) -> tuple[int, int]:
    """(processes, resident KiB) of the lab's processes: tagged NETLAB_OWNER=<lab>/..., and its control loop."""
    from netlab.dataplane import procs
    from netlab.names import lab_owner_prefix
    pids = set(procs.tagged([lab_owner_prefix(lab)]))
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if b"netlab.live.loop" in argv and lab.encode() in argv:
                pids.add(int(pid))
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next(int(x.split()[1]) for x in f if x.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return len(pids), total


def init_cpu() -> tuple[str, float]:
    """(name, CPU seconds so far) of PID 1, the machine's init. Read around each `up`: in some sandboxes it
    is not a quiet systemd. This one's (process_api) polls every network namespace that holds a process: with
    the 100 nodes' servers each in its node's namespace (netlab before 2026-12-04) it took a whole core for as
    long as the lab stood; with them in one namespace, the lab's underlay, next to nothing."""
    with open("/proc/1/comm") as f:
        name = f.read().strip()
    return name, proc_cpu(1)["self_s"]


def run(argv: list[str], timeout: float = 1800) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    dt = time.perf_counter() - t0
    if p.returncode not in (0, 1) or (p.returncode == 1 and argv[1] != "probe"):
        raise SystemExit(f"{' '.join(argv)} failed ({p.returncode}): {(p.stderr or p.stdout).strip()[-3000:]}")
    return dt, p.stdout + p.stderr


def sample_netlab(name: str, nodes: int, pods: int, probe: bool, baseline: int) -> dict:
    text = SCENARIO.format(name=name, nodes=", ".join(["{role: worker}"] * nodes), pods=pods)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix=f"{name}-", delete=False) as f:
        f.write(text)
        path = f.name
    out: dict = {"nodes": nodes, "pods": pods}
    subprocess.run([NETLAB, "down", name], capture_output=True)
    before = meminfo()
    init_name, init_before = init_cpu()
    try:
        out["up_s"], said = run([NETLAB, "up", path])
        out["init"], out["init_cpu_during_up_s"] = init_name, init_cpu()[1] - init_before
        out["up_said"] = said.strip().splitlines()[-3:]
        time.sleep(3)
        after = meminfo()
        out["mem_available_drop_kib"] = before["MemAvailable"] - after["MemAvailable"]
        out["slab_growth_kib"] = after["Slab"] - before["Slab"]
        out["processes"], out["processes_rss_kib"] = lab_rss_kib(name)
        if probe:
            t0 = time.perf_counter()
            p = subprocess.run([NETLAB, "probe", "--lab", name, "-o", "json"], capture_output=True, text=True,
                               timeout=1800)
            out["probe_s"] = time.perf_counter() - t0
            try:
                doc = json.loads(p.stdout)
                checks = doc.get("results") or doc.get("checks") or []
                out["probe_checks"] = len(checks)
                out["probe_passed"] = sum(1 for c in checks if c.get("ok") or c.get("passed"))
                out["probe_elapsed_s"] = doc.get("elapsed_s") or doc.get("elapsed")
                out["probe_warnings"] = doc.get("warnings", [])
            except ValueError:
                out["probe_output"] = (p.stdout + p.stderr)[-2000:]
            out["probe_exit"] = p.returncode
    finally:
        held = meminfo()
        out["down_s"], _ = run([NETLAB, "down", name])
        os.unlink(path)
        out["kernel_freed_namespaces_after_s"] = common.settle(baseline, timeout=120)["settle_s"]
        time.sleep(2)
        out["mem_available_rise_on_down_kib"] = meminfo()["MemAvailable"] - held["MemAvailable"]
    return out


def sample_floor(binary: str, prefix: str, nodes: int, pods: int, baseline: int) -> dict:
    before = meminfo()
    init_before = init_cpu()[1]
    try:
        t_up, said = run([binary, "up", prefix, str(pods), str(nodes), "24"])
        init_up = init_cpu()[1] - init_before
        time.sleep(3)
        after = meminfo()
    finally:
        t_down, _ = run([binary, "down", prefix])
    settled = common.settle(baseline, timeout=120)["settle_s"]
    time.sleep(2)
    return {"up_s": t_up, "inner_up_s": json.loads(said)["up_s"], "down_s": t_down,
            "mem_available_drop_kib": before["MemAvailable"] - after["MemAvailable"],
            "mem_available_rise_on_down_kib": meminfo()["MemAvailable"] - after["MemAvailable"],
            "slab_growth_kib": after["Slab"] - before["Slab"], "kernel_freed_namespaces_after_s": settled,
            "init_cpu_during_up_s": init_up}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--pods-per-node", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--floor", default=os.path.join(common.ROOT, "benchmarks", "results", "floor"))
    ap.add_argument("--json")
    ap.add_argument("--neigh-limits", action="store_true",
                    help="for the run, raise the host's neighbour-table limits as `up`'s note advises "
                         "(net.ipv4.neigh.default.gc_thresh2/3); the old values are put back at the end")
    args = ap.parse_args()
    with common.neigh_limits(args.neigh_limits):
        return run_all(args)


def summarize(samples: dict[str, list[dict]], n: int, pods: int, pods_per_node: int, neigh_limits: bool,
              floor: bool) -> dict:
    """The results from the samples: times are medians over the repeats; memory is the first repeat's (the
    kernel frees a dead namespace's memory lazily, for seconds after `down`: a later repeat's MemAvailable
    moves with what the one before it left, and a nodes-only lab once seemed to hold -5.7 MiB a node)."""
    def med(what: str, key: str):
        return common.median(s[key] for s in samples[what] if s.get(key) is not None)

    def first(what: str, key: str):
        return next((s[key] for s in samples[what] if s.get(key) is not None), None)
    res = {"nodes": n, "pods": pods, "pods_per_node": pods_per_node, "neigh_limits_raised": neigh_limits}
    res["netlab_up_s"], res["netlab_down_s"] = med("netlab", "up_s"), med("netlab", "down_s")
    res["probe_s"], res["probe_checks"] = med("netlab", "probe_s"), med("netlab", "probe_checks")
    res["probe_passed"] = med("netlab", "probe_passed")
    res["nodes_only_up_s"] = med("nodes", "up_s")
    # the machine's init's CPU while `up` ran (init_cpu): a cost of this machine, not of netlab's own work
    res["init"] = first("netlab", "init")
    res["init_cpu_during_up_s"] = med("netlab", "init_cpu_during_up_s")
    for what in samples:   # what a lab holds: the mean of MemAvailable's drop on up and its rise on down
        for x in samples[what]:
            x["mem_held_kib"] = (x["mem_available_drop_kib"] + x["mem_available_rise_on_down_kib"]) / 2
    drop_lab, drop_nodes = first("netlab", "mem_held_kib"), first("nodes", "mem_held_kib")
    res["mem_per_node_kib"] = drop_nodes / n if drop_nodes is not None else None
    res["mem_per_pod_kib"] = (drop_lab - drop_nodes) / pods if None not in (drop_lab, drop_nodes) else None
    res["mem_lab_total_mib"] = drop_lab / 1024 if drop_lab is not None else None
    res["slab_per_pod_kib"] = (first("netlab", "slab_growth_kib") - first("nodes", "slab_growth_kib")) / pods
    res["processes"], res["processes_rss_mib"] = med("netlab", "processes"), med("netlab", "processes_rss_kib") / 1024
    if floor:
        res["floor_up_s"], res["floor_down_s"] = med("floor", "up_s"), med("floor", "down_s")
        # the floor's drop on up: the kernel frees a dead namespace's memory lazily, seconds after `down`
        res["floor_mem_per_pod_kib"] = first("floor", "mem_available_drop_kib") / pods
        res["floor_slab_per_pod_kib"] = first("floor", "slab_growth_kib") / pods
        res["netlab_over_floor"] = res["netlab_up_s"] / res["floor_up_s"]
        res["init_cpu_during_floor_up_s"] = med("floor", "init_cpu_during_up_s")
    res["pods_per_s"] = pods / res["netlab_up_s"]
    return res


def run_all(args) -> None:
    n, pods = args.nodes, args.nodes * args.pods_per_node
    floor = args.floor if os.access(args.floor, os.X_OK) else None
    from netlab.dataplane import machine
    info = common.banner(f"scale: {n} nodes x {args.pods_per_node} pods = {pods} pods",
                         {"repeat": args.repeat, "floor": floor or "not built (scripts/bench builds it)",
                          "neighbour limits": "raised for the run (--neigh-limits)" if args.neigh_limits
                          else "the host's",
                          "readings": machine.read().__dict__ | {"labs": "-"}})
    tag = f"{os.getpid() % 100000}"
    samples: dict[str, list[dict]] = {"nodes": [], "netlab": [], "floor": []}
    for r in range(args.repeat):
        for what in ("nodes", "netlab", "floor"):
            if what == "floor" and not floor:
                continue
            baseline = common.live_netns()
            if what == "floor":
                s = sample_floor(floor, f"bfl{tag}", n, pods, baseline)
            else:
                # (the probe matrix once: its 40 s tell the same at every repeat)
                s = sample_netlab(f"bscale{tag}", n, 0 if what == "nodes" else pods, what == "netlab" and r == 0,
                                  baseline)
            s["repeat"] = r
            samples[what].append(s)
            print(f"  sample {r + 1}/{args.repeat} {what:7} up {s['up_s']:7.2f}s down {s['down_s']:6.2f}s "
                  f"MemAvailable {-s['mem_available_drop_kib'] / 1024:+.0f} MiB "
                  f"(+{s['mem_available_rise_on_down_kib'] / 1024:.0f} MiB on down)"
                  + (f" init {s['init_cpu_during_up_s']:.1f} cpu-s during up" if "init_cpu_during_up_s" in s else "")
                  + (f" probe {s['probe_s']:.2f}s ({s.get('probe_passed')}/{s.get('probe_checks')} checks)"
                     if "probe_s" in s else ""), flush=True)

    res = summarize(samples, n, pods, args.pods_per_node, args.neigh_limits, bool(floor))
    print("\n" + "\n".join(f"  {k}: {v:.3f}" if isinstance(v, float) else f"  {k}: {v}" for k, v in res.items()))
    common.dump(args.json, {"info": info, "results": res, "samples": samples})


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("run as root: sudo .venv/bin/python benchmarks/scale_bench.py")
    main()
