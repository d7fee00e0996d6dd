"""LoadBalancer failover time (issue 14, Performance): MetalLB's layer-2 mode on real namespaces, as root:

    sudo .venv/bin/python benchmarks/lb_failover.py [--graces 10,3] [--repeat 3] [--json out.json]

The lab (iptables proxy mode): 3 nodes, a Deployment of 3 agnhost netexec pods spread over them, a
LoadBalancer Service at 172.18.200.10:80 in an IPAddressPool with an L2Advertisement, MetalLB's speaker
on every node. For each node monitor grace period G in --graces (controlPlane.nodeMonitorGracePeriod:
netlab's default is 10 s, Kubernetes' 40 s), a lab is brought up, then REPEAT times:

- a client in the external host's namespace opens a new TCP connection to the LB IP and sends one HTTP
  request every 20 ms (timeout 200 ms), recording each answer's time and the MAC its neighbour entry
  for the LB IP has (`ip neigh`, read by the client every request);
- tcpdump in the external host's namespace records the gratuitous ARPs;
- at t0 `netlab node stop` of the announcing node starts (the CLI writes the node's stop, the control
  loop takes its underlay link down). Timed from t0: the last answer through the old node, the node
  NotReady in the store (the grace), the announcements file naming the new node (the election), the
  new node's first gratuitous ARP seen by the external host, and the first answered request after the
  failure (= the failover time, the issue's figure: the client sees no answer from the last answer
  before the link went down until this one);
- `netlab node start` brings the node back; the election gives the IP back to it (it is first in the
  order); the next repeat waits until it announces again and requests are answered.

Prints every sample and the medians; JSON at the end (also to --json). The failover time is the grace
period plus netlab's own reaction (the node lifecycle controller's look, the pass that publishes the
election, the speaker's poll, the first request after the gratuitous ARP); the grace dominates by far.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import livelab as ll  # noqa: E402

from netlab import lab_spec  # noqa: E402
from netlab.dataplane import lab as labmod  # noqa: E402
from netlab.dataplane import layout  # noqa: E402
from netlab.lb.announce import election_order  # noqa: E402
from netlab.live import store_for  # noqa: E402
from netlab.spec.parse import load_text  # noqa: E402

LB_IP = "172.18.200.10"
NODES = ("n1", "n2", "n3")
SCENARIO = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: blb
nodes: [{name: n1, role: control-plane}, {name: n2}, {name: n3}]
networking: {kubeProxyMode: iptables}
controlPlane: {nodeMonitorGracePeriod: GRACE, defaultTolerationSeconds: 300}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: bench-pool, namespace: metallb-system}
spec: {addresses: [172.18.200.0/28]}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: bench-l2, namespace: metallb-system}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      tolerations: [{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}]
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        args: [netexec, --http-port=8080]
        ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: LoadBalancer
  loadBalancerIP: 172.18.200.10
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""

# the external host's client: one new connection and request every 20 ms; prints "t ok|fail MAC"
CLIENT = r"""
import socket, subprocess, sys, time, json
ip, every, timeout = sys.argv[1], 0.02, 0.2
while True:
    t = time.time()
    ok = False
    try:
        s = socket.create_connection((ip, 80), timeout=timeout)
        s.settimeout(timeout)
        s.sendall(b"GET /hostname HTTP/1.0\r\nHost: lb\r\n\r\n")
        ok = s.recv(4096).startswith(b"HTTP/1.")
        s.close()
    except OSError:
        pass
    n = json.loads(subprocess.run(["ip", "-j", "neigh", "show", ip], capture_output=True, text=True).stdout or "[]")
    mac = (n[0].get("lladdr") if n else None) or "-"
    print(f"{t:.4f} {'ok' if ok else 'fail'} {mac}", flush=True)
    time.sleep(max(0.0, every - (time.time() - t)))
"""


def announced(lab: str) -> dict[str, str]:
    try:
        with open(os.path.join(layout.lb_dir(lab), "announce.json")) as f:
            return {a["ip"]: a["node"] for a in json.load(f)["announcements"]}
    except (OSError, ValueError, KeyError):
        return {}


def wait(what: str, check, timeout: float = 120.0, every: float = 0.005):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(every)
    raise RuntimeError(f"timed out waiting for {what}")


def node_ready(store, name: str) -> bool:
    n = store.try_get("Node", None, name)
    return bool(n) and any(c["type"] == "Ready" and c["status"] == "True" for c in (n.get("status") or {}).get("conditions") or [])


def one_failover(lab: str, cluster, macs: dict[str, str], tmp: str) -> dict:
    store = store_for(lab)
    old = wait("the LB IP announced", lambda: announced(lab).get(LB_IP), 60)
    new_expected = election_order([n for n in NODES if n != old], LB_IP)[0]
    ext = cluster.external_netns
    cap = os.path.join(tmp, f"arp-{secrets.token_hex(3)}.txt")
    dump = subprocess.Popen(labmod.netns_exec_argv(ext, ["tcpdump", "-i", "eth0", "-n", "-e", "-l", "-U", "--time-stamp-precision=micro",
                                                         "-tt", "arp"]), stdout=open(cap, "w"), stderr=subprocess.DEVNULL)
    client = subprocess.Popen(labmod.netns_exec_argv(ext, [sys.executable, "-c", CLIENT, LB_IP]), stdout=subprocess.PIPE,
                              text=True)
    lines: list[str] = []
    try:
        time.sleep(1.5)   # tcpdump listening, the client answered through the old node
        t0 = time.time()
        ll.netlab(lab, "node", "stop", old)
        t_notready = wait("NotReady", lambda: not node_ready(store, old) and time.time(), 120)
        t_elected = wait("the election moved", lambda: announced(lab).get(LB_IP) not in (None, old) and time.time(), 60)
        new = announced(lab)[LB_IP]
        # the first answered request after the failure, through the new node's MAC
        t_first = None
        while t_first is None:
            line = client.stdout.readline()
            if not line:
                raise RuntimeError("the client ended")
            lines.append(line)
            t, status, mac = line.split()
            if float(t) > t0 and status == "ok" and mac.lower() == macs[new]:
                t_first = float(t)
            if time.time() - t0 > 120:
                raise RuntimeError("no answer through the new node within 120 s")
        time.sleep(0.3)
    finally:
        client.send_signal(signal.SIGTERM)
        client.wait(timeout=10)
        dump.send_signal(signal.SIGINT)
        dump.wait(timeout=10)
    last_old = max((float(x.split()[0]) for x in lines if x.split()[1] == "ok" and float(x.split()[0]) <= t_first
                    and x.split()[2].lower() == macs[old]), default=None)
    first_fail = min((float(x.split()[0]) for x in lines if x.split()[1] == "fail" and float(x.split()[0]) > t0),
                     default=None)
    garp = None
    with open(cap) as f:
        for row in f:
            if macs[new] in row.lower() and re.search(rf"(who-has {re.escape(LB_IP)} tell {re.escape(LB_IP)}|"
                                                       rf"Reply {re.escape(LB_IP)} is-at)", row):
                garp = float(row.split()[0])
                break
    ll.netlab(lab, "node", "start", old)
    wait("the node back and announcing", lambda: node_ready(store, old) and announced(lab).get(LB_IP) == old, 120, 0.1)
    rel = lambda t: None if t is None else round(t - t0, 4)  # noqa: E731
    return {"from": old, "to": new, "to_expected": new_expected, "first_failed_request_s": rel(first_fail),
            "last_answer_via_old_s": rel(last_old), "notready_s": rel(t_notready), "elected_s": rel(t_elected),
            "gratuitous_arp_s": rel(garp), "failover_s": rel(t_first),
            "outage_s": None if first_fail is None else round(t_first - first_fail, 4)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graces", default="10,3", help="node monitor grace periods (s), comma-separated")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    graces = [int(g) for g in args.graces.split(",") if g]
    info = common.banner("LoadBalancer failover (MetalLB layer 2)", {"graces": graces, "repeat": args.repeat})
    out = {"info": info, "graces": graces, "repeat": args.repeat, "results": []}
    tmp = tempfile.mkdtemp(prefix="bench-lb-")
    for grace in graces:
        name = f"blb{secrets.token_hex(2)}"
        text = SCENARIO.replace("GRACE", str(grace))
        sc = load_text(text)
        sc.name = name
        try:
            cluster = lab_spec.up(sc, text).cluster
            macs = {}
            for n in NODES:
                r = subprocess.run(labmod.netns_exec_argv(cluster.node(n).netns, ["ip", "-j", "link", "show", "eth0"]),
                                   capture_output=True, text=True, check=True)
                macs[n] = json.loads(r.stdout)[0]["address"].lower()
            wait("every speaker Ready", lambda: sum(ll.ready(store_for(name), p["metadata"]["name"], "metallb-system")
                                                      for p in store_for(name).list("Pod", "metallb-system")) == 3, 120, 0.2)
            samples = []
            for i in range(args.repeat):
                s = one_failover(name, cluster, macs, tmp)
                samples.append(s)
                print(f"grace {grace} s, repeat {i + 1}: {s}", flush=True)
            row = {"grace_s": grace, "samples": samples}
            for k in ("first_failed_request_s", "notready_s", "elected_s", "gratuitous_arp_s", "failover_s", "outage_s"):
                row[f"median_{k}"] = common.median([s[k] for s in samples if s[k] is not None])
            print(f"grace {grace} s: median failover {row['median_failover_s']} s (NotReady {row['median_notready_s']}, "
                  f"elected {row['median_elected_s']}, gratuitous ARP {row['median_gratuitous_arp_s']})", flush=True)
            out["results"].append(row)
        finally:
            labmod.down(name)
    common.dump(args.json, out)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
