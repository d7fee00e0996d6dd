"""Cost of the control loop's decisions (no root, no kernel): the store and the controllers driven by
the simulated kubelet on a fake clock, so every figure is netlab's own CPU time, not probe periods.

    .venv/bin/python benchmarks/controllers.py [--pods 10,1000] [--backend sqlite|memory] [--json out.json]

For each size N (one Deployment of N replicas on 10 nodes behind a Service):
  bringup    - controller time from applying the Deployment to N pods Ready and in the EndpointSlices
  idle round - one round of all controllers that finds nothing to do
  scale +10  - controller time from `scale --replicas N+10` to the 10 new pods Ready and in the endpoints
  rollout    - a rolling update of min(N, 100) replicas (maxSurge 25%, maxUnavailable 0): controller
               time, the number of rounds that wrote, and the simulated duration (1 s to start a pod,
               1 s to readiness: the probes' share, which dominates a real rollout)
  commit     - one single-object transaction on the store (SQLite: WAL, synchronous=NORMAL)
  idle       - (--idle SECONDS) the real-time loop, Runner.serve(), over the settled lab while a
               "kubelet" renews one of the 10 node leases every second: CPU of the process (the
               renewing writer included) per wall second
Wall-clock figures on a shared machine; each is the median of --repeat runs.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])

from netlab.controllers.base import Snapshot  # noqa: E402
from netlab.controllers.runner import Runner, apply_actions  # noqa: E402
from netlab.controllers.simkubelet import KINDS as KUBELET_KINDS, SimKubelet  # noqa: E402
from netlab.controllers.verbs import rollout_status, scale, set_image  # noqa: E402
from netlab.store import MemoryStore, SQLiteStore  # noqa: E402


class Lab:
    def __init__(self, backend: str, nodes: int = 10):
        self.t = 1_800_000_000.0
        clock = lambda: self.t  # noqa: E731
        self.dir = tempfile.mkdtemp(prefix="netlab-bench-")
        self.store = SQLiteStore(self.dir, clock=clock) if backend == "sqlite" else MemoryStore(clock=clock)
        self.kubelet = SimKubelet(start_seconds=1, ready_seconds=1)
        self.runner = Runner(self.store)
        self.cpu = 0.0
        self.rounds = 0
        for i in range(nodes):
            self.store.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"n{i}"}, "spec": {}})

    def tick(self, dt: float = 0.5):
        self.t += dt
        t0 = time.perf_counter()
        acts = self.kubelet.decide(Snapshot.from_store(self.store, KUBELET_KINDS), self.t)
        if acts:
            apply_actions(self.store, acts, self.t)
        t1 = time.perf_counter()
        self.rounds += self.runner.run_until_quiescent(self.t)
        self.cpu += time.perf_counter() - t1  # the controllers' share, not the simulated kubelet's
        return t1 - t0

    def ready_endpoints(self) -> int:
        return sum(1 for s in self.store.list("EndpointSlice") for e in s["endpoints"] if e["conditions"]["ready"])

    def until(self, cond, limit: int = 2000):
        for _ in range(limit):
            if cond():
                return
            self.tick()
        raise RuntimeError("the simulated lab did not converge")


def deployment(n: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": n, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "app", "image": "v1",
                                                           "ports": [{"name": "http", "containerPort": 8080}]}]}}}}


SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
           "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


def one_run(n: int, backend: str) -> dict:
    lab = Lab(backend)
    lab.store.create(SERVICE)
    lab.store.create(deployment(n))
    lab.until(lambda: lab.ready_endpoints() == n)
    out = {"bringup_s": lab.cpu}
    t0 = time.perf_counter()
    lab.runner.round(lab.t)
    out["idle_round_ms"] = (time.perf_counter() - t0) * 1000
    lab.cpu = 0.0
    lab.store.update(scale(lab.store.get("Deployment", "default", "web"), n + 10))
    lab.until(lambda: lab.ready_endpoints() == n + 10)
    out["scale_plus_10_ms"] = lab.cpu * 1000
    # a rolling update of at most 100 replicas
    m = min(n, 100)
    lab.store.update(scale(lab.store.get("Deployment", "default", "web"), m))
    lab.until(lambda: lab.ready_endpoints() == m and len(lab.store.list("Pod")) == m)
    lab.cpu, lab.rounds, start = 0.0, 0, lab.t
    d, _ = set_image(lab.store.get("Deployment", "default", "web"), {"app": "v2"})
    lab.store.update(d)
    lab.until(lambda: rollout_status(lab.store.get("Deployment", "default", "web"))[1])
    out.update(rollout_replicas=m, rollout_cpu_s=lab.cpu, rollout_rounds=lab.rounds, rollout_simulated_s=lab.t - start)
    t0 = time.perf_counter()
    for i in range(50):
        lab.store.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}"}, "data": {}})
    out["commit_ms"] = (time.perf_counter() - t0) / 50 * 1000
    lab.store.close()
    return out


def idle_cpu(n: int, seconds: int) -> float:
    """Percent of a core used by serve() over n settled pods, one lease renewal a second."""
    import resource
    import threading
    from netlab.store.meta import fmt_time
    lab = Lab("sqlite")
    lab.store.create(SERVICE)
    lab.store.create(deployment(n))
    lab.until(lambda: lab.ready_endpoints() == n)
    store = SQLiteStore(lab.dir)  # the real clock from here on
    with store.transaction():
        for lease in store.list("Lease"):
            lease["spec"]["renewTime"] = fmt_time(time.time())
            store.update(lease)
    runner = Runner(store)
    runner.run_until_quiescent()
    stop = threading.Event()
    loop = threading.Thread(target=runner.serve, args=(stop,))
    loop.start()
    kubelet = SQLiteStore(lab.dir)
    r0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.time()
    for i in range(seconds):
        time.sleep(1)
        lease = kubelet.get("Lease", "kube-node-lease", f"n{i % 10}")
        lease["spec"]["renewTime"] = fmt_time(time.time())
        kubelet.update(lease)
    r1, w1 = resource.getrusage(resource.RUSAGE_SELF), time.time()
    stop.set()
    loop.join()
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    return cpu / (w1 - w0) * 100


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pods", default="10,1000")
    ap.add_argument("--backend", default="sqlite", choices=["sqlite", "memory"])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json")
    ap.add_argument("--idle", type=int, default=0, metavar="SECONDS", help="also measure the idle loop")
    args = ap.parse_args()
    results = {}
    for n in [int(x) for x in args.pods.split(",")]:
        runs = [one_run(n, args.backend) for _ in range(args.repeat)]
        results[n] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        r = results[n]
        print(f"{n:>5} pods ({args.backend}): bring-up {r['bringup_s']:.2f} s of controller time, idle round "
              f"{r['idle_round_ms']:.0f} ms, scale +10 {r['scale_plus_10_ms']:.0f} ms, rollout of "
              f"{r['rollout_replicas']:.0f}: {r['rollout_cpu_s']:.2f} s CPU in {r['rollout_rounds']:.0f} rounds "
              f"({r['rollout_simulated_s']:.0f} s simulated), commit {r['commit_ms']:.2f} ms", flush=True)
        if args.idle:
            r["idle_cpu_percent"] = idle_cpu(n, args.idle)
            print(f"{n:>5} pods: idle serve() loop with a lease renewal a second: {r['idle_cpu_percent']:.2f}% "
                  "of a core", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
