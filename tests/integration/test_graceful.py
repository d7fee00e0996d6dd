"""Graceful pod deletion on a live lab (issue 11, the kubelet's part): preStop before SIGTERM, SIGKILL at
the end of the grace period, terminating endpoints used by kube-proxy's fallback while a deleted pod
keeps serving (agnhost netexec --delay-shutdown), and `logs -f`.

Real namespaces, the real control loop, real clients (curl) and the real rules (iptables-save)."""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from netlab.dataplane import lab as labmod
from netlab.dataplane import procs, state
from netlab.live import store_for
from netlab.store.meta import parse_time

from .conftest import kubectl
from .conftest import until as _until


def until(what: str, check, timeout: float = 60.0, every: float = 0.1):
    return _until(what, check, timeout, every)   # a finer look than the suite's: these tests time signals


CLUSTER = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: grace
nodes: [{name: n1, role: control-plane}, {name: n2}]
"""


def pods(lab, prefix: str) -> dict[str, dict]:
    return {p["metadata"]["name"]: p for p in store_for(lab.name).list("Pod")
            if p["metadata"]["name"].startswith(prefix)}


def running(lab, prefix: str) -> str | None:
    """The name of the Running, not deleted pod named `prefix`..., once its container has a process."""
    st = state.load(lab.name) or {}
    for name, p in pods(lab, prefix).items():
        if p["metadata"].get("deletionTimestamp") or (p.get("status") or {}).get("phase") != "Running":
            continue
        rec = (((st.get("pods") or {}).get(f"default/{name}") or {}).get("procs") or {}).get("app")
        if procs.alive(rec):
            return name
    return None


def container_pid(lab, name: str) -> int:
    rec = ((state.load(lab.name) or {})["pods"][f"default/{name}"]["procs"])["app"]
    return int(rec["pid"])


def written(path) -> bool:
    try:
        return path.read_text().strip() != ""
    except OSError:
        return False


def ready(lab, name: str) -> bool:
    p = pods(lab, name).get(name)
    conds = {c["type"]: c["status"] for c in ((p or {}).get("status") or {}).get("conditions") or []}
    return conds.get("Ready") == "True"


HOOKS = """---
apiVersion: apps/v1
kind: Deployment
metadata: {name: polite}
spec:
  replicas: 1
  selector: {matchLabels: {app: polite}}
  template:
    metadata: {labels: {app: polite}}
    spec:
      nodeName: n2
      terminationGracePeriodSeconds: 10
      containers:
      - name: app
        image: busybox
        securityContext: {privileged: true}   # it writes the test's directory on the host
        command:
        - sh
        - -c
        - |
          trap 'date +%s.%N > DIR/term; exit 0' TERM
          while :; do sleep 0.05; done
        lifecycle:
          preStop:
            exec:
              command: [sh, -c, 'date +%s.%N > DIR/prestop; sleep 1']
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: stubborn}
spec:
  replicas: 1
  selector: {matchLabels: {app: stubborn}}
  template:
    metadata: {labels: {app: stubborn}}
    spec:
      nodeName: n2
      terminationGracePeriodSeconds: 4
      containers:
      - name: app
        image: busybox
        securityContext: {privileged: true}   # it writes the test's directory on the host
        command:
        - sh
        - -c
        - |
          trap 'date +%s.%N >> DIR/stubborn-term' TERM
          while :; do sleep 0.05; done
        lifecycle:
          preStop:
            exec:
              command: [sh, -c, 'exit 3']
"""


def test_prestop_runs_before_sigterm_and_a_server_ignoring_sigterm_is_killed_at_the_grace_period(lab, tmp_path):
    os.chmod(tmp_path, 0o755)
    lab.up(CLUSTER + HOOKS.replace("DIR", str(tmp_path)))
    polite = until("the polite pod running", lambda: running(lab, "polite-"))
    stubborn = until("the stubborn pod running", lambda: running(lab, "stubborn-"))
    pid = container_pid(lab, stubborn)

    # a preStop exec that writes a file: the file is there before SIGTERM reaches the container, and
    # SIGTERM follows the hook's end (the hook sleeps 1 s)
    t0 = time.time()
    kubectl(lab, "delete", "pod", polite, "--wait=false")
    until("SIGTERM in the polite container", lambda: written(tmp_path / "term"), timeout=15)
    assert written(tmp_path / "prestop"), "SIGTERM came, the preStop hook's file is not there"
    pre = float((tmp_path / "prestop").read_text())
    term = float((tmp_path / "term").read_text())
    assert t0 <= pre < term, (t0, pre, term)
    assert term - pre >= 0.9, f"SIGTERM came {term - pre:.2f}s after the preStop hook started (it runs 1 s)"
    until("the polite pod gone from the store", lambda: polite not in pods(lab, "polite-"), timeout=15)

    # a container that ignores SIGTERM (its trap only notes it) is SIGKILLed when the grace period (4 s)
    # ends, not before and not much after; its failing preStop is an event
    kubectl(lab, "delete", "pod", stubborn, "--wait=false")
    md = pods(lab, "stubborn-")[stubborn]["metadata"]   # the deletion's time: deletionTimestamp - grace
    deleted = parse_time(md["deletionTimestamp"]) - md["deletionGracePeriodSeconds"]
    until("the stubborn container dead", lambda: procs.start_time(pid) is None, timeout=20, every=0.02)
    died = time.time() - deleted
    assert 3.9 <= died <= 5.5, f"the stubborn container died {died:.2f}s after the deletion (grace 4 s)"
    assert (tmp_path / "stubborn-term").exists(), "it got no SIGTERM before the SIGKILL"
    until("the stubborn pod gone from the store", lambda: stubborn not in pods(lab, "stubborn-"), timeout=10)
    ns = f"{lab.name}"
    assert not [n for n in labmod.lab_namespaces(ns) if stubborn in n] or until(
        "its namespace gone", lambda: not [n for n in labmod.lab_namespaces(ns) if stubborn in n], timeout=10)

    events = kubectl(lab, "get", "events").stdout
    assert "Killing" in events and "Stopping container app" in events, events
    assert "FailedPreStopHook" in events and "exited with 3" in events, events


SOLO = """---
apiVersion: v1
kind: Pod
metadata: {name: solo-a, labels: {app: solo}}
spec:
  nodeName: n2
  terminationGracePeriodSeconds: 30
  containers:
  - name: app
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: [netexec, --http-port=8080, --delay-shutdown=DELAY_A]
---
apiVersion: v1
kind: Pod
metadata: {name: solo-b, labels: {app: solo}}
spec:
  nodeName: n2
  terminationGracePeriodSeconds: 30
  containers:
  - name: app
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: [netexec, --http-port=8080, --delay-shutdown=6]
---
apiVersion: v1
kind: Service
metadata: {name: solo}
spec:
  selector: {app: solo}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: n1
  containers: [{name: c, image: busybox}]
"""


def chosen(lab, ip: str) -> dict[str, bool]:
    """Node -> whether its kube-proxy rules (iptables or nftables, as the lab's mode) DNAT to `ip`:8080."""
    mode = lab.cluster.networking.proxy_mode
    argv = ["iptables-save", "-t", "nat"] if mode == "iptables" else ["nft", "list", "table", "ip", "kube-proxy"]
    out = {}
    for node in ("n1", "n2"):
        r = lab.node_exec(node, argv)
        assert r.returncode == 0, r.stderr
        out[node] = any(f"{ip}:8080" in line and "dnat" in line.lower() for line in r.stdout.splitlines())
    return out


def slice_conditions(lab) -> dict[str, dict]:
    out = {}
    for s in store_for(lab.name).list("EndpointSlice"):
        if (s["metadata"].get("labels") or {}).get("kubernetes.io/service-name") == "solo":
            for e in s.get("endpoints") or []:
                out[e["targetRef"]["name"]] = e["conditions"]
    return out


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_terminating_endpoint_serves_through_the_fallback_only_when_no_ready_one_is_left(lab, mode):
    lab.up(CLUSTER + f"networking: {{kubeProxyMode: {mode}}}\n" + SOLO.replace("DELAY_A", "12"))
    assert lab.cluster.networking.proxy_mode == mode
    vip = str(next(s for s in lab.cluster.services if s.name == "solo").cluster_ip)
    ip_a, ip_b = str(lab.pod("solo-a").ip), str(lab.pod("solo-b").ip)
    until("both solo pods ready", lambda: ready(lab, "solo-a") and ready(lab, "solo-b"))
    until("both chosen", lambda: all(chosen(lab, ip_a).values()) and all(chosen(lab, ip_b).values()), timeout=20)

    # solo-a deleted while solo-b is ready: its endpoint is terminating (serving) and no rule chooses it
    kubectl(lab, "delete", "pod", "solo-a", "--wait=false")
    until("solo-a terminating in the slice", lambda: slice_conditions(lab).get("solo-a") ==
          {"ready": False, "serving": True, "terminating": True}, timeout=10)
    until("solo-a out of every node's rules", lambda: not any(chosen(lab, ip_a).values()), timeout=10)
    assert all(chosen(lab, ip_b).values())
    answers = {lab.http(("pod", "client"), vip, 80, "/hostname") for _ in range(8)}
    assert answers == {"solo-b"}, answers
    doc = json.loads(kubectl(lab, "get", "endpointslices", "-o", "json").stdout)
    conds = {e["targetRef"]["name"]: e["conditions"] for s in doc["items"] for e in s["endpoints"]
             if e.get("targetRef")}   # (the kubernetes Service's slice lists the control plane: no pods)
    assert conds["solo-a"] == {"ready": False, "serving": True, "terminating": True}, conds
    assert conds["solo-b"] == {"ready": True, "serving": True, "terminating": False}, conds
    table = kubectl(lab, "get", "endpointslices").stdout.splitlines()
    assert table[0].split() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"], table

    # solo-b deleted too: no ready endpoint is left, so both serving terminating ones are chosen again
    # (kube-proxy's fallback) and the Service keeps answering while they delay their shutdown
    t0 = time.monotonic()
    kubectl(lab, "delete", "pod", "solo-b", "--wait=false")
    until("the fallback chooses the terminating endpoints",
          lambda: all(chosen(lab, ip_a).values()) and all(chosen(lab, ip_b).values()), timeout=10)
    got = []
    while time.monotonic() - t0 < 5:
        got.append(lab.http(("pod", "client"), vip, 80, "/hostname"))
        time.sleep(0.1)
    assert set(got) <= {"solo-a", "solo-b"} and len(got) >= 10, got
    assert "solo-b" in got, got
    # once both have shut down, the pods are gone and the Service has no endpoint
    until("both pods gone", lambda: not pods(lab, "solo-"), timeout=30)
    until("no rule chooses them", lambda: not any(chosen(lab, ip_a).values()) and not any(chosen(lab, ip_b).values()),
          timeout=15)
    r = lab._run(("pod", "client"), ["curl", "-sS", "--max-time", "3", f"http://{vip}/hostname"])
    assert r.returncode != 0, r.stdout



WRITER = """---
apiVersion: v1
kind: Pod
metadata: {name: writer}
spec:
  nodeName: n2
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: busybox
    command: [sh, -c, 'i=0; while :; do echo "line $i"; i=$((i+1)); sleep 0.2; done']
"""


def test_logs_follow_prints_new_lines_until_the_pod_goes(lab):
    lab.up(CLUSTER + WRITER)
    until("a few lines", lambda: len(kubectl(lab, "logs", "writer").stdout.splitlines()) >= 3, timeout=20)
    two = kubectl(lab, "logs", "writer", "--tail", "2").stdout.splitlines()
    assert len(two) == 2 and all(x.startswith("line ") for x in two), two
    exe = os.path.join(os.path.dirname(__import__("sys").executable), "netlab")
    f = subprocess.Popen([exe, "logs", "-f", "writer", "--tail", "1", "--lab", lab.name], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        first = f.stdout.readline().split()
        seen = [int(first[1])]
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2:
            seen.append(int(f.stdout.readline().split()[1]))
        # the lines written after it started, in order, none missing
        assert len(seen) >= 6 and seen == list(range(seen[0], seen[0] + len(seen))), seen
        kubectl(lab, "delete", "pod", "writer", "--wait=false")
        f.wait(timeout=30)     # it ends by itself once the pod is gone
        assert f.returncode == 0, f.stderr.read()
    finally:
        if f.poll() is None:
            f.kill()
            f.wait()


RESUME = """---
apiVersion: v1
kind: Pod
metadata: {name: tough}
spec:
  nodeName: n2
  terminationGracePeriodSeconds: 6
  containers:
  - name: app
    image: busybox
    securityContext: {privileged: true}   # it writes the test's directory on the host
    command:
    - sh
    - -c
    - |
      trap 'echo term >> DIR/tough-term' TERM
      while :; do sleep 0.05; done
    lifecycle:
      preStop:
        exec:
          command: [sh, -c, 'echo hook >> DIR/tough-hook']
"""


def test_a_loop_killed_mid_termination_resumes_it_from_the_store(lab, tmp_path):
    import signal as sig
    from netlab.live import loop
    lab.up(CLUSTER + RESUME.replace("DIR", str(tmp_path)))
    until("the tough pod running", lambda: running(lab, "tough"))
    pid = container_pid(lab, "tough")
    kubectl(lab, "delete", "pod", "tough", "--wait=false")
    md = pods(lab, "tough")["tough"]["metadata"]
    deleted = parse_time(md["deletionTimestamp"]) - md["deletionGracePeriodSeconds"]
    until("SIGTERM sent", lambda: written(tmp_path / "tough-term"), timeout=10)
    rec = loop.running(lab.name)
    os.kill(int(rec["pid"]), sig.SIGKILL)
    until("the loop gone", lambda: loop.running(lab.name) is None, timeout=10)
    time.sleep(1)
    restarted = time.time()              # the new loop starts after this
    kubectl(lab, "get", "pods")          # any netlab command brings the loop back
    until("the loop back", lambda: loop.running(lab.name) is not None, timeout=10)
    until("the tough container dead", lambda: procs.start_time(pid) is None, timeout=20, every=0.02)
    died = time.time()
    # killed at the end of the grace period counted from the deletion, not before it and not anew from
    # the restart: a grace counted from the new loop's start ends at restarted + 6 s at the earliest
    # (how soon after the deletion the new loop runs depends on the machine's load, so that is the bound)
    assert died - deleted >= 5.9, f"the container died {died - deleted:.2f}s after the deletion (grace 6 s)"
    assert died < restarted + 6, (f"the container died {died - restarted:.2f}s after the loop's restart, "
                                  f"{died - deleted:.2f}s after the deletion: the grace period began anew")
    until("the pod gone from the store", lambda: "tough" not in pods(lab, "tough"), timeout=10)
    # neither the hook nor SIGTERM was repeated by the loop that took over
    assert (tmp_path / "tough-hook").read_text().splitlines() == ["hook"]
    assert (tmp_path / "tough-term").read_text().splitlines() == ["term"]


HTTP_HOOK = """---
apiVersion: v1
kind: Pod
metadata: {name: hooked}
spec:
  nodeName: n2
  terminationGracePeriodSeconds: 5
  containers:
  - name: app
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: [netexec, --http-port=8080, --delay-shutdown=1]
    lifecycle:
      preStop:
        httpGet: {path: /echo?msg=prestop-hook, port: 8080}
"""


def test_http_prestop_from_the_node_then_sigterm_seen_by_logs_follow(lab):
    lab.up(CLUSTER + HTTP_HOOK)
    until("hooked ready", lambda: ready(lab, "hooked"), timeout=20)
    exe = os.path.join(os.path.dirname(__import__("sys").executable), "netlab")
    f = subprocess.Popen([exe, "logs", "-f", "hooked", "--lab", lab.name], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        kubectl(lab, "delete", "pod", "hooked", "--wait=false")
        out, err = f.communicate(timeout=30)     # -f ends once the pod is gone
    finally:
        if f.poll() is None:
            f.kill()
            f.wait()
    lines = out.splitlines()
    hook = [i for i, x in enumerate(lines) if "prestop-hook" in x]
    term = [i for i, x in enumerate(lines) if "received SIGTERM" in x]
    assert hook and term and hook[0] < term[0], out
    # the hook came from the node's namespace, as the kubelet's httpGet: its source is on node n2
    node_side = {str(lab.node("n2").ip), str(lab.cluster.node("n2").gateway)}
    assert any(ip in lines[hook[0]] for ip in node_side), lines[hook[0]]
    assert "sleeping 1 seconds" in out and "exited with code 0" in out, out
