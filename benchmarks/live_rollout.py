"""A rolling update of a big Deployment under a constant load (issue 11, Performance), on real
namespaces, as root:

    sudo .venv/bin/python benchmarks/live_rollout.py [--replicas 100] [--surge 25%] [--initial-delay 2]
        [--period 1] [--success 1] [--min-ready 0] [--rate 50] [--repeat 1] [--json out.json]

The lab: 3 nodes (--nodes), a Deployment `web` of REPLICAS netexec pods (strategy RollingUpdate,
maxSurge SURGE, maxUnavailable 0, minReadySeconds MIN_READY; an httpGet readiness probe on /hostName
with initialDelaySeconds, periodSeconds and successThreshold from the options) behind a NodePort
Service (ClusterIP port 80, nodePort 30080), and a client pod on n1.

Each sample: two clients (benchmarks/httpload.py) send RATE new connections a second each, one from
the client pod to the ClusterIP and one from the lab's external host to n2's NodePort, every request
counted (sent, answered, failed: refused, reset, timed out after 3 s, or a status other than 200); after
3 s `netlab set env deploy/web VERSION=vN` starts a rollout (t0) and `netlab rollout status` follows it;
measured: t0 -> `rollout status` returned, t0 -> the store's Deployment complete (every replica updated
and available, no old one left), a timeline of new/old pods (every 0.25 s); 3 s later the clients stop.

The probes' own floor: with maxUnavailable 0 the rollout makes ceil(REPLICAS / surge) waves of new pods,
and a new pod cannot be Ready before initialDelaySeconds + (successThreshold - 1) x periodSeconds after
it started (netlab's prober runs the first probe initialDelaySeconds after the container started, then
every period; the kubelet's first probe can come up to one period later) nor available before
minReadySeconds more: floor = waves x (initialDelay + (successThreshold - 1) x period + minReady).
Reported: the wall time, the floor, and the rest (wall - floor) in total and per wave: what netlab
(controllers, pod start, dataplane syncs, the CLI) adds.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import livelab as ll  # noqa: E402
from httpload import Load  # noqa: E402

from netlab import lab_spec  # noqa: E402
from netlab.dataplane import lab as labmod  # noqa: E402
from netlab.live import store_for  # noqa: E402
from netlab.spec.parse import load_text  # noqa: E402

NODE_PORT = 30080


def scenario(name: str, a) -> str:
    ns = ", ".join(f"{{name: n{i}}}" for i in range(1, a.nodes + 1))
    return f"""apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: {name}
nodes: [{ns}]
networking: {{kubeProxyMode: iptables}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: {a.replicas}
  minReadySeconds: {a.min_ready}
  strategy: {{type: RollingUpdate, rollingUpdate: {{maxSurge: "{a.surge}", maxUnavailable: 0}}}}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        args: [netexec, --http-port=8080]
        env: [{{name: VERSION, value: v1}}]
        ports: [{{containerPort: 8080}}]
        readinessProbe:
          httpGet: {{path: /hostName, port: 8080}}
          initialDelaySeconds: {a.initial_delay}
          periodSeconds: {a.period}
          successThreshold: {a.success}
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  type: NodePort
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080, nodePort: {NODE_PORT}}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  nodeName: n1
  containers: [{{name: c, image: busybox}}]
"""


def surge_count(surge: str, replicas: int) -> int:
    """maxSurge as a number of pods (a percentage rounds up, as the Deployment controller does)."""
    return math.ceil(replicas * float(surge[:-1]) / 100) if surge.endswith("%") else int(surge)


def generation(store) -> int:
    return store.get("Deployment", "default", "web")["metadata"].get("generation", 1)


def complete(store, replicas: int, after_generation: int) -> bool:
    """The rollout of a generation after `after_generation` is done: every replica updated and available,
    no old one left."""
    d = store.try_get("Deployment", "default", "web")
    st = (d or {}).get("status") or {}
    return bool(d) and st.get("observedGeneration", 0) > after_generation and \
        st.get("updatedReplicas") == replicas and st.get("availableReplicas") == replicas and \
        st.get("replicas") == replicas


class Timeline(threading.Thread):
    """Every `every` s: (t - t0, new pods, new pods Ready, old pods left) from the store."""

    def __init__(self, store, old: set[str], t0: float, replicas: int, every: float = 0.25):
        super().__init__(daemon=True)
        self.gen0 = generation(store)
        self.store, self.old, self.t0, self.replicas, self.every = store, old, t0, replicas, every
        self.rows: list[tuple] = []
        self.done_at: float | None = None
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            t = time.time()
            ps = [p for p in ll.pods(self.store, "web-") if not p["metadata"].get("deletionTimestamp")]
            new = [p for p in ps if p["metadata"]["name"] not in self.old]
            row = (round(t - self.t0, 2), len(new), sum(ll.conditions(p).get("Ready") == "True" for p in new),
                   len(ps) - len(new))
            if not self.rows or row[1:] != self.rows[-1][1:]:
                self.rows.append(row)
            if self.done_at is None and complete(self.store, self.replicas, self.gen0):
                self.done_at = t
            self.halt.wait(self.every)


def sample(name: str, store, cluster, a, version: int, tmp: str) -> dict:
    old = {p["metadata"]["name"] for p in ll.pods(store, "web-")}
    client = cluster.pod("default", "client")
    cip = str(cluster.services[0].cluster_ip)
    node_ip = str(next(n for n in cluster.nodes if n.name == "n2").ip)
    loads = {"pod->ClusterIP": Load(labmod.pod_exec_argv(name, client, []), f"{cip}:80",
                                    os.path.join(tmp, "load-pod.jsonl"), a.rate),
             "external->NodePort": Load(labmod.netns_exec_argv(cluster.external_netns, []), f"{node_ip}:{NODE_PORT}",
                                        os.path.join(tmp, "load-ext.jsonl"), a.rate)}
    try:
        time.sleep(3)
        t0 = time.time()
        tl = Timeline(store, old, t0, a.replicas)
        tl.start()
        ll.netlab(name, "set", "env", "deploy/web", f"VERSION=v{version}")
        t_cli = time.time()
        r = ll.netlab(name, "rollout", "status", "deploy/web", "--timeout", f"{int(a.timeout)}s", timeout=a.timeout + 30)
        t_status = time.time()
        if "successfully rolled out" not in r.stdout:
            raise RuntimeError(f"rollout status: {r.stdout[-300:]}")
        ll.until("the Deployment complete in the store", lambda: tl.done_at, 60, 0.1)
        tl.halt.set()
        tl.join()
        time.sleep(3)
    finally:
        counts = {k: v.stop() for k, v in loads.items()}
    out = {"version": f"v{version}", "set_env_cli_s": round(t_cli - t0, 3),
           "to_rollout_status_s": round(t_status - t0, 3), "to_complete_in_store_s": round(tl.done_at - t0, 3),
           "timeline_t_new_newready_old": tl.rows}
    for k, c in counts.items():
        reqs = c.pop("requests")
        during = [x for x in reqs if t0 <= x["t"] <= t_status]
        bodies = [x.get("body") for x in reqs if x["ok"]]
        out[k] = {**c, "during_rollout_sent": len(during), "during_rollout_failed": sum(not x["ok"] for x in during),
                  "failures_t_err": [(round(x["t"] - t0, 2), x["err"][:80]) for x in reqs if not x["ok"]][:200],
                  "p50_ms": round(common.percentile([x["ms"] for x in reqs if x["ok"]], 50) or 0, 2),
                  "p99_ms": round(common.percentile([x["ms"] for x in reqs if x["ok"]], 99) or 0, 2),
                  "max_ms": max((x["ms"] for x in reqs), default=0),
                  "answered_by_old": sum(b in old for b in bodies), "answered_by_new": sum(b not in old for b in bodies)}
    return out


def keep_loop_log(name: str) -> None:
    """The lab's control-loop log goes with the lab: a copy is kept in benchmarks/results/."""
    import shutil
    from netlab.live import loop
    dst = os.path.join(common.ROOT, "benchmarks", "results", f"{name}-control-loop.log")
    try:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(loop.logfile(name), dst)
        print(f"control loop log: {os.path.relpath(dst, common.ROOT)}")
    except OSError as e:
        print(f"control loop log not kept: {e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicas", type=int, default=100)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--surge", default="25%", help="maxSurge: a number or a percentage")
    ap.add_argument("--initial-delay", type=int, default=2)
    ap.add_argument("--period", type=int, default=1)
    ap.add_argument("--success", type=int, default=1)
    ap.add_argument("--min-ready", type=int, default=0)
    ap.add_argument("--rate", type=float, default=50.0, help="new connections a second, of each client")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--json")
    a = ap.parse_args()
    surge = surge_count(a.surge, a.replicas)
    waves = math.ceil(a.replicas / surge)
    per_wave = a.initial_delay + (a.success - 1) * a.period + a.min_ready
    floor = waves * per_wave
    name = f"broll-{secrets.token_hex(3)}"
    info = common.banner(f"live lab rolling update: {a.replicas} replicas, {a.nodes} nodes, maxSurge {a.surge}"
                         f" ({surge} pods), maxUnavailable 0, repeat {a.repeat}",
                         {"lab": name, "probe": f"httpGet initialDelaySeconds {a.initial_delay} periodSeconds {a.period} "
                                                f"successThreshold {a.success}", "minReadySeconds": a.min_ready,
                          "load": f"2 clients x {a.rate:g} new connections/s",
                          "probe_floor": f"{waves} waves x {per_wave} s = {floor} s"})
    text = scenario(name, a)
    sc = load_text(text, "<bench>")
    out: dict = {"replicas": a.replicas, "nodes": a.nodes, "max_surge": a.surge, "surge_pods": surge, "waves": waves,
                 "probe": {"initialDelaySeconds": a.initial_delay, "periodSeconds": a.period,
                           "successThreshold": a.success}, "minReadySeconds": a.min_ready,
                 "rate_per_client": a.rate, "probe_floor_s": floor}
    tmp = f"/tmp/netlab-{name}"
    os.makedirs(tmp, exist_ok=True)
    try:
        t = time.monotonic()
        lab_spec.up(sc, text)
        store = store_for(name)
        ll.until(f"{a.replicas} web pods Ready", lambda: sum(ll.conditions(p).get("Ready") == "True"
                                                            for p in ll.pods(store, "web-")) == a.replicas, a.timeout, 0.2)
        out["up_to_all_ready_s"] = round(time.monotonic() - t, 2)
        print(f"up: all {a.replicas} pods Ready after {out['up_to_all_ready_s']} s", flush=True)
        cluster, _ = lab_spec.load_cluster(name)
        samples = []
        for i in range(a.repeat):
            s = sample(name, store, cluster, a, i + 2, tmp)
            s["netlab_s"] = round(s["to_rollout_status_s"] - floor, 3)
            s["netlab_per_wave_s"] = round(s["netlab_s"] / waves, 3)
            samples.append(s)
            brief = {k: v for k, v in s.items() if k != "timeline_t_new_newready_old"}
            print(f"rollout {i + 1}: {json.dumps(brief)}", flush=True)
            print(f"   timeline (s, new, new Ready, old): {s['timeline_t_new_newready_old']}", flush=True)
        out["samples"] = samples
        out["to_rollout_status_median_s"] = round(statistics.median(s["to_rollout_status_s"] for s in samples), 3)
        out["to_complete_in_store_median_s"] = round(statistics.median(s["to_complete_in_store_s"] for s in samples), 3)
        out["netlab_median_s"] = round(statistics.median(s["netlab_s"] for s in samples), 3)
        out["failed_total"] = sum(s[k]["failed"] for s in samples for k in ("pod->ClusterIP", "external->NodePort"))
        out["sent_total"] = sum(s[k]["sent"] for s in samples for k in ("pod->ClusterIP", "external->NodePort"))
    finally:
        keep_loop_log(name)
        ll.down(name)
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)
    out["loadavg_at_end"] = os.getloadavg()
    print(json.dumps({k: v for k, v in out.items() if k != "samples"}, indent=1))
    print("summary: " + json.dumps({"rollout wall (median)": out["to_rollout_status_median_s"],
                                    "probe floor": floor, "netlab's part (median)": out["netlab_median_s"],
                                    "failed/sent": f"{out['failed_total']}/{out['sent_total']}"}))
    common.dump(a.json, {"info": info, "results": [out]})


if __name__ == "__main__":
    main()
