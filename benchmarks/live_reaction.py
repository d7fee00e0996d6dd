"""How fast a live lab reacts, and what its control loop costs idle (issue 11, Performance), on real
namespaces, as root:

    sudo .venv/bin/python benchmarks/live_reaction.py [--pods 10] [--nodes 0] [--repeat 3]
                                                      [--idle-seconds 30] [--json out.json]

The lab: NODES nodes, a Service `web` (iptables proxy mode) selecting PODS pods of two Deployments:
`web` (PODS - REPEAT replicas, no probe) and `probed` (REPEAT replicas, an exec readiness probe, period
1 s, failureThreshold 1, that fails while a flag file named after the pod exists). --nodes 0 (default):
the fewest nodes, at least 3, whose /24 podCIDRs (253 pod addresses each) hold every pod the run makes
(PODS + 10 x REPEAT) at no more than 210 a node, the rest being headroom for the scheduler: 3 for 10
pods, 5 for 1,000. More nodes would only multiply the rule sets every sync writes (each node's table
holds every endpoint) on the same cores.

Measured, each REPEAT times (samples and their median printed):
1. readiness: at t0 the flag of one `probed` pod is created. `detected`: the kubelet's Unhealthy event
   for the pod appears in the store (it is written as the failed probe's result is collected, before the
   pass that reprograms the nodes; a thread follows the store's changes every 5 ms). `rules`: the last
   node's rules no longer choose the pod: the Service's KUBE-SVC chain no longer jumps to the pod's
   KUBE-SEP chain (a thread per node reads that chain alone, `iptables -t nat -S CHAIN`, every 20 ms or
   as long as a read took if longer; the mean read time is printed: it bounds the resolution; a whole
   iptables-save at 1,000 endpoints costs ~0.1 s of CPU a read, and five threads of those starved the
   very loop being timed). Reported:
   t0->detected (the probe's period dominates it), detected->rules (the issue's figure: netlab's own
   reaction), t0->rules, and t0->the pod's status Ready=False in the store (written by the same pass
   after the kernel work: netlab's kubelet feeds its nodes' rules directly, where Kubernetes goes
   kubelet -> API -> EndpointSlice controller -> kube-proxy); then the flag is removed and the pod's
   way back (Ready, in every node's rules) is timed too.
2. scale +10: from starting `netlab scale deploy/web --replicas N+10` to the 10 new pods Ready in the
   store, and to every node's rules choosing all 10 (cumulative: N grows by 10 each sample).
3. idle: `probed` is scaled to 0 and `web` to PODS, so the lab is PODS pods without probes; after it
   settled (no pod terminating, then --settle seconds), REPEAT windows of --idle-seconds each: the
   control loop process's CPU (utime+stime of /proc/PID/stat, all its threads, per cent of one core;
   its waited-for children separately) and its RSS (/proc/PID/status) at the window's end.

Prints the samples as it goes and one JSON object at the end (also to --json). The load average is
printed at the start and after every window (the machine may be shared).
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

from netlab import lab_spec  # noqa: E402
from netlab.live import store_for  # noqa: E402
from netlab.spec.parse import load_text  # noqa: E402

PER_NODE = 210   # pods a node is given at most (of the 253 addresses of its /24 podCIDR)


def scenario(name: str, nodes: int, pods: int, probed: int, flag: str) -> str:
    ns = ", ".join(f"{{name: n{i}}}" for i in range(1, nodes + 1))
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
  replicas: {pods - probed}
  selector: {{matchLabels: {{app: web, probed: "no"}}}}
  template:
    metadata: {{labels: {{app: web, probed: "no"}}}}
    spec:
      containers:
      - name: web
        args: [netexec, --http-port=8080]
        ports: [{{containerPort: 8080}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: probed}}
spec:
  replicas: {probed}
  selector: {{matchLabels: {{app: web, probed: "yes"}}}}
  template:
    metadata: {{labels: {{app: web, probed: "yes"}}}}
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


def med(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 3) if xs else None


def r3(x):
    return None if x is None else round(x, 3)


def live_pods(store, prefix: str) -> list[dict]:
    return [p for p in ll.pods(store, prefix) if not p["metadata"].get("deletionTimestamp")]


def readiness_sample(store, node_ns: list[str], pod: dict, flag: str, timeout: float) -> dict:
    name, ip = pod["metadata"]["name"], ll.pod_ip(pod)
    svc = ll.ServiceChain()
    svc.check(node_ns, [ip])
    seen: dict[str, float] = {}
    stop = threading.Event()

    def watch_store(rev: int):
        # the store's changes since t0, read as they come (every 5 ms): the kubelet's Unhealthy event for
        # the pod (written as the probe's result is collected, before the pass that reprograms the
        # nodes) and the pod's status turning Ready=False (written by that pass, after the kernel work)
        while not stop.is_set() and len(seen) < 2:
            now_rev = store.wait(rev, 0.2, interval=0.005)
            if now_rev == rev:
                continue
            t = time.time()
            for ev in store.watch(rev):
                o = ev.object
                if o.get("kind") == "Event" and o.get("reason") == "Unhealthy" and \
                        (o.get("involvedObject") or {}).get("name") == name:
                    seen.setdefault("event", t)
                elif o.get("kind") == "Pod" and o["metadata"]["name"] == name and \
                        ll.conditions(o).get("Ready") == "False":
                    seen.setdefault("status", t)
            rev = now_rev

    th = threading.Thread(target=watch_store, args=(store.revision(),), daemon=True)
    th.start()
    rules = ll.RulesWatch(node_ns, lambda text: not svc.chooses(text, ip), timeout=timeout, read=svc.read)
    t0 = time.time()
    open(f"{flag}.{name}", "w").close()
    rules.start()
    t_rules = rules.wait()
    th.join(timeout)
    stop.set()
    os.unlink(f"{flag}.{name}")
    t_det, t_status = seen.get("event"), seen.get("status")
    # the way back: Ready again and chosen by every node
    t1 = time.time()
    back = ll.RulesWatch(node_ns, lambda text: svc.chooses(text, ip), timeout=timeout, read=svc.read).start()
    t_ready = ll.until(f"{name} Ready again", lambda: ll.ready(store, name) and time.time(), timeout)
    t_back = back.wait()

    def d(a, b):
        return r3(b - a) if a is not None and b is not None else None
    return {"pod": name, "ip": ip,
            "fail_to_detected_s": d(t0, t_det),
            "detected_to_rules_s": d(t_det, t_rules),
            "fail_to_rules_s": d(t0, t_rules),
            "fail_to_status_not_ready_s": d(t0, t_status),
            "per_node_rules_after_fail_s": {n.rsplit(".", 1)[-1]: d(t0, v) for n, v in rules.at.items()},
            "rules_read_mean_s": r3(rules.mean_read_s()),
            "recover_to_ready_s": d(t1, t_ready),
            "recover_to_rules_s": d(t1, t_back)}


def scale_sample(lab: str, store, node_ns: list[str], replicas: int, timeout: float) -> dict:
    before = {p["metadata"]["name"] for p in ll.pods(store, "web-")}
    t0 = time.time()
    ll.netlab(lab, "scale", "deploy/web", "--replicas", str(replicas))
    t_cli = time.time()

    def new_ready():
        new = [p for p in live_pods(store, "web-") if p["metadata"]["name"] not in before]
        if len(new) == 10 and all(ll.conditions(p).get("Ready") == "True" and ll.pod_ip(p) for p in new):
            return new
        return None
    new = ll.until("10 new pods Ready", new_ready, timeout)
    t_ready = time.time()
    ips = [ll.pod_ip(p) for p in new]
    svc = ll.ServiceChain()
    t_rules = ll.RulesWatch(node_ns, lambda text: all(svc.chooses(text, ip) for ip in ips), timeout=timeout,
                            read=svc.read).start().wait()
    return {"replicas": replicas, "cli_s": r3(t_cli - t0), "to_ready_s": r3(t_ready - t0),
            "to_ready_in_rules_s": r3(max(t_rules, t_ready) - t0) if t_rules else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", type=int, default=10)
    ap.add_argument("--nodes", type=int, default=0, help="0: the fewest that hold the pods (see above)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--idle-seconds", type=float, default=30.0)
    ap.add_argument("--settle", type=float, default=15.0, help="seconds left after the scale-down before idle")
    ap.add_argument("--timeout", type=float, default=180.0, help="for each wait")
    ap.add_argument("--json")
    a = ap.parse_args()
    probed = max(1, a.repeat)
    if a.pods <= probed:
        raise SystemExit(f"--pods must be more than the {probed} probed pods")
    nodes = a.nodes or max(3, math.ceil((a.pods + 10 * a.repeat) / PER_NODE))
    name = f"blive-{secrets.token_hex(3)}"
    flag = f"/tmp/netlab-bench-{name}"
    info = common.banner(f"live lab reaction and idle cost: {a.pods} pods, {nodes} nodes, repeat {a.repeat}",
                         {"lab": name, "probed_pods": probed, "idle_seconds": a.idle_seconds})
    text = scenario(name, nodes, a.pods, probed, flag)
    sc = load_text(text, "<bench>")
    out: dict = {"pods": a.pods, "nodes": nodes, "repeat": a.repeat}
    try:
        t = time.monotonic()
        lab_spec.up(sc, text)
        out["up_s"] = round(time.monotonic() - t, 2)
        store = store_for(name)
        cluster, _ = lab_spec.load_cluster(name)
        node_ns = [n.netns for n in cluster.nodes]
        ll.until(f"{a.pods} pods Ready", lambda: sum(ll.conditions(p).get("Ready") == "True"
                                                     for p in live_pods(store, "")) == a.pods, a.timeout, 0.2)
        out["up_to_all_ready_s"] = round(time.monotonic() - t, 2)
        print(f"up: {out['up_s']} s (all {a.pods} pods Ready after {out['up_to_all_ready_s']} s)", flush=True)

        # 1. readiness
        samples = []
        victims = sorted(live_pods(store, "probed-"), key=lambda p: p["metadata"]["name"])
        for i in range(a.repeat):
            pod = victims[i % len(victims)]
            s = readiness_sample(store, node_ns, pod, flag, a.timeout)
            samples.append(s)
            print(f"readiness {i + 1}: {json.dumps(s)}", flush=True)
        out["readiness"] = {
            "samples": samples,
            "fail_to_detected_median_s": med(s["fail_to_detected_s"] for s in samples),
            "detected_to_rules_median_s": med(s["detected_to_rules_s"] for s in samples),
            "fail_to_rules_median_s": med(s["fail_to_rules_s"] for s in samples),
            "recover_to_rules_median_s": med(s["recover_to_rules_s"] for s in samples)}

        # 2. scale +10
        samples = []
        replicas = a.pods - probed
        for i in range(a.repeat):
            replicas += 10
            s = scale_sample(name, store, node_ns, replicas, a.timeout)
            samples.append(s)
            print(f"scale +10 {i + 1}: {json.dumps(s)}", flush=True)
        out["scale_plus_10"] = {"samples": samples,
                                "to_ready_median_s": med(s["to_ready_s"] for s in samples),
                                "to_ready_in_rules_median_s": med(s["to_ready_in_rules_s"] for s in samples)}

        # 3. idle: PODS pods, no probes
        ll.netlab(name, "scale", "deploy/probed", "--replicas", "0")
        ll.netlab(name, "scale", "deploy/web", "--replicas", str(a.pods))
        ll.until(f"{a.pods} pods, none terminating",
                 lambda: len(ll.pods(store, "")) == a.pods and all(
                     ll.conditions(p).get("Ready") == "True" for p in ll.pods(store, "")), a.timeout, 0.2)
        time.sleep(a.settle)
        pid = ll.loop_pid(name)
        windows = []
        for i in range(a.repeat):
            w = ll.idle_window(pid, a.idle_seconds)
            windows.append(w)
            print(f"idle {i + 1}: {json.dumps(w)}", flush=True)
        out["idle"] = {"pods": len(ll.pods(store, "")), "probes": 0, "loop_pid": pid, "windows": windows,
                       "cpu_percent_median": med(w["cpu_percent"] for w in windows),
                       "rss_mib_median": round(statistics.median(w["vmrss_kib"] for w in windows) / 1024, 1),
                       "peak_rss_mib": round(max(w["vmhwm_kib"] for w in windows) / 1024, 1)}
    finally:
        from live_rollout import keep_loop_log
        keep_loop_log(name)
        t = time.monotonic()
        ll.down(name)
        out["down_s"] = round(time.monotonic() - t, 2)
        for f in os.listdir("/tmp"):
            if f.startswith(os.path.basename(flag)):
                os.unlink(os.path.join("/tmp", f))
    out["loadavg_at_end"] = os.getloadavg()
    summary = {"readiness detected->rules (median)": out["readiness"]["detected_to_rules_median_s"],
               "readiness fail->detected (median)": out["readiness"]["fail_to_detected_median_s"],
               "scale +10 -> Ready and in rules (median)": out["scale_plus_10"]["to_ready_in_rules_median_s"],
               "idle loop CPU % of one core (median)": out["idle"]["cpu_percent_median"],
               "idle loop RSS MiB (median)": out["idle"]["rss_mib_median"]}
    print(json.dumps(out, indent=1))
    print("summary: " + json.dumps(summary))
    common.dump(a.json, {"info": info, "results": [out]})


if __name__ == "__main__":
    main()
