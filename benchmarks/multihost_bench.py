"""A lab over 3 emulated hosts, each with its own etcd member and agent (hostNetwork.store: etcd), against the
same lab on one host, in one run (issue 18, Performance). Run as root (scripts/bench --only multihost runs it
in its private /run/netns).

    sudo .venv/bin/python benchmarks/multihost_bench.py [--pods-per-node 100] [--repeat 1] [--reach 5]
                                                        [--neigh-limits] [--json out.json]

--neigh-limits (scripts/bench passes it): for the run, the host's neighbour-table limits raised as `up`'s note
advises, and put back at the end (benchmarks/common.py neigh_limits): the default gc_thresh3 of 1024, shared
by every namespace, is less than a 900-pod lab's addresses, and a full table drops the matrix's probes.

The lab: 9 nodes (a control plane and 8 workers), a Deployment of 9 x --pods-per-node - 1 agnhost netexec
pods behind a Service, and a client pod; on three hosts (3 nodes each, hostNetwork.store etcd: a member
and an agent per host, inside its namespace) or on one (the machine's SQLite store, one control loop).
Per repeat, one lab of each, in turn:
  - bring-up: `lab_spec.up` (what `netlab up` runs) until it returns, then until every pod is Ready in the
    store (for the hosts: the agents built them), wall time;
  - probe matrix: `netlab probe` (the CLI, as a user runs it: the default matrix and the expectation),
    wall time, and whether it passed;
  - on the hosts only, before the probe matrix, --reach times: a Pod bound to node a2 (host a) is written to the store (one etcd
    transaction, in this process, as `apply` writes), and the client pod on b1 (host b) polls it: the
    pod's address read from the store, then an HTTP GET to it from the client's namespace (curl, 0.2 s
    timeout) until it answers. Timed from the write to the first answer: host a's agent builds it, writes
    its address, host b's agent learns the route (flannel.1 to a2 exists already), the GET arrives.
"""
from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

from netlab import lab_spec  # noqa: E402
from netlab.dataplane import lab as labmod  # noqa: E402
from netlab.live import store_for  # noqa: E402
from netlab.live.objects import apply_objects  # noqa: E402
from netlab.spec.parse import load_text  # noqa: E402
from netlab.store.meta import get_condition  # noqa: E402

NETLAB = os.path.join(os.path.dirname(sys.executable), "netlab")


def scenario(name: str, hosts: bool, replicas: int) -> str:
    head = f"apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nname: {name}\n"
    if hosts:
        head += "hosts: [{name: a}, {name: b}, {name: c}]\nhostNetwork: {mode: emulated, store: etcd}\n"
    nodes = [("a1", "control-plane", "a"), ("a2", "worker", "a"), ("a3", "worker", "a"),
             ("b1", "worker", "b"), ("b2", "worker", "b"), ("b3", "worker", "b"),
             ("c1", "worker", "c"), ("c2", "worker", "c"), ("c3", "worker", "c")]
    head += "nodes:\n" + "".join(f"- {{name: {n}, role: {r}{f', host: {h}' if hosts else ''}}}\n" for n, r, h in nodes)
    head += "expectations:\n- {from: pod/client, to: svc/web:80, expect: reachable, backends: all}\n"
    return head + f"""---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        args: [netexec, --http-port=8080]
        ports: [{{containerPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  nodeName: b1
  containers: [{{name: c, image: busybox}}]
"""


def all_ready(lab: str, want: int) -> bool:
    pods = [p for p in store_for(lab).list("Pod") if p["metadata"].get("namespace") == "default"]
    return len(pods) >= want and all((get_condition(p, "Ready") or {}).get("status") == "True" for p in pods)


def bring_up(lab: str, hosts: bool, replicas: int, timeout: float = 900) -> float:
    text = scenario(lab, hosts, replicas)
    sc = load_text(text, f"<bench {lab}>")
    t0 = time.monotonic()
    lab_spec.up(sc, text)
    end = t0 + timeout
    while not all_ready(lab, replicas + 1):
        if time.monotonic() > end:
            raise RuntimeError(f"lab {lab}: not every pod Ready after {timeout:.0f} s")
        time.sleep(0.1)
    return time.monotonic() - t0


def probe(lab: str) -> tuple[float, bool, str, int]:
    """`netlab probe`: wall time, passed, its summary line, and how often the machine's neighbour table was
    full meanwhile (shared by every namespace: a full one drops probes, gc_thresh3 is the host's)."""
    fulls = common.arp_stat()["table_fulls"]
    t0 = time.monotonic()
    r = subprocess.run([NETLAB, "probe", "--lab", lab], capture_output=True, text=True, timeout=900)
    took = time.monotonic() - t0
    last = (r.stdout.strip().splitlines() or [""])[-1]
    return took, r.returncode == 0, last, common.arp_stat()["table_fulls"] - fulls


def reach(lab: str, i: int, timeout: float = 60) -> float:
    """From the store write of a pod bound to a2 (host a) until the client on b1 (host b) gets its answer."""
    name = f"reach-{i}"
    web = {"name": "web", "image": "registry.k8s.io/e2e-test-images/agnhost:2.53",
           "args": ["netexec", "--http-port=8080"], "ports": [{"containerPort": 8080}]}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
           "spec": {"nodeName": "a2", "containers": [web]}}
    client_ns = f"nl.{lab}.pod.default.client"
    store = store_for(lab)
    t0 = time.monotonic()
    apply_objects(store, [pod])
    end = t0 + timeout
    while time.monotonic() < end:
        ip = ((store.try_get("Pod", "default", name) or {}).get("status") or {}).get("podIP")
        if ip:
            r = subprocess.run(["ip", "netns", "exec", client_ns, "curl", "-s", "-o", "/dev/null", "--max-time", "0.2",
                                f"http://{ip}:8080/hostname"], capture_output=True)
            if r.returncode == 0:
                return time.monotonic() - t0
        else:
            time.sleep(0.01)
    raise RuntimeError(f"pod {name} on a2 not reached from b1 within {timeout:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods-per-node", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--reach", type=int, default=5)
    ap.add_argument("--json")
    ap.add_argument("--neigh-limits", action="store_true",
                    help="for the run, raise the host's neighbour-table limits as `up`'s note advises "
                         "(net.ipv4.neigh.default.gc_thresh2/3); the old values are put back at the end")
    args = ap.parse_args()
    with common.neigh_limits(args.neigh_limits):
        run_all(args)


def run_all(args) -> None:
    replicas = 9 * args.pods_per_node - 1
    info = common.banner("multihost: 3 emulated hosts x 3 nodes (etcd member + agent per host) vs one host",
                         {"pods": replicas + 1, "nodes": 9, "repeat": args.repeat,
                          "neigh_gc_thresh3": common.gc_thresh3(), "neigh_limits_raised": args.neigh_limits})
    rows: dict[str, list[dict]] = {"hosts": [], "one": []}
    reaches: list[float] = []
    tag = secrets.token_hex(2)
    for rep in range(args.repeat):
        for kind in ("hosts", "one"):
            lab = f"mhb-{kind}-{tag}{rep}"
            try:
                up_s = bring_up(lab, kind == "hosts", replicas)
                row = {"up_s": up_s}
                if kind == "hosts":   # before the matrix fills the machine's neighbour table
                    row["reach_s"] = [reach(lab, i) for i in range(args.reach)]
                    reaches += row["reach_s"]
                probe_s, ok, last, fulls = probe(lab)
                row.update({"probe_s": probe_s, "probe_passed": ok, "probe_summary": last, "neigh_table_fulls": fulls})
                rows[kind].append(row)
                reached = ", ".join(f"{x:.3f}" for x in row.get("reach_s", []))
                print(f"   {kind:5} repeat {rep + 1}: up {up_s:.2f}s, probe {probe_s:.2f}s "
                      f"({'passed' if ok else 'FAILED'}: {last}; neighbour table full {fulls} times)"
                      + (f", write -> reached {reached} s" if reached else ""),
                      flush=True)
            finally:
                labmod.down(lab)
    out = {"info": info, "results": {
        "pods": replicas + 1, "nodes": 9,
        "hosts": rows["hosts"], "one": rows["one"],
        "up_median_s": {k: common.median([r["up_s"] for r in v]) for k, v in rows.items()},
        "probe_median_s": {k: common.median([r["probe_s"] for r in v]) for k, v in rows.items()},
        "reach_median_s": common.median(reaches), "reach_max_s": max(reaches) if reaches else None,
        "reach_samples_s": reaches}}
    common.dump(args.json, out)


if __name__ == "__main__":
    main()
