"""A live lab under traffic (issue 11): rolling updates and undo with zero failed requests, readiness
and liveness probes, node failure, and the control loop killed in the middle of a rollout.

Load: real clients sending a steady stream of NEW HTTP connections (curl, one connection each) from a
client pod to the ClusterIP and from the external host to a NodePort; every request is counted and
every answer (the serving pod's hostname) recorded."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import yaml

from netlab.dataplane import lab as labmod
from netlab.live import loop, store_for

from .conftest import kubectl, loop_log, until

CLUSTER = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: live
nodes: [{name: n1, role: control-plane}, {name: n2}, {name: n3}]
"""

WEB = """---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: REPLICAS
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        args: [netexec, --http-port=8080]
        env: [{name: VERSION, value: v1}]
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /hostName, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: n1
  containers: [{name: c, image: busybox}]
"""

LOAD = r"""
end=$(( $(date +%s) + $2 )); : > "$3"
while [ $(date +%s) -lt $end ] && [ ! -e "$3.stop" ]; do
  if out=$(curl -sS --max-time 3 "http://$1/hostName" 2>&1); then echo "ok $out" >> "$3"; else echo "FAIL $out" >> "$3"; fi
done
echo done >> "$3"
"""


def scenario(replicas: int = 6) -> str:
    return CLUSTER + WEB.replace("REPLICAS", str(replicas))


class Load:
    """A client sending new connections to `target` from the client pod or the external host."""

    def __init__(self, lab, where: str, target: str, tmp_path, seconds: int = 90):
        self.out = str(tmp_path / f"load-{where}.txt")
        script = str(tmp_path / "load.sh")
        with open(script, "w") as f:
            f.write(LOAD)
        argv = ["sh", script, target, str(seconds), self.out]
        if where == "pod":
            # privileged (netlab debug --profile=sysadmin): it writes its results in the test's directory
            argv = labmod.pod_debug_argv(lab.name, lab.pod("client"), argv, "sysadmin")
        else:
            argv = labmod.netns_exec_argv(lab.cluster.external_netns, argv)
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> list[str]:
        open(self.out + ".stop", "w").close()
        self.proc.wait(timeout=30)
        with open(self.out) as f:
            lines = f.read().splitlines()
        assert lines and lines[-1] == "done", lines[-3:]
        return lines[:-1]


def web_hosts(lab) -> set[str]:
    return {p["metadata"]["name"] for p in store_for(lab.name).list("Pod") if p["metadata"]["name"].startswith("web-")}


def restart_count(lab, pod: str) -> int:
    """restartCount of the pod's first container, as the kubelet wrote it to the store."""
    status = store_for(lab.name).get("Pod", "default", pod).get("status") or {}
    return (status.get("containerStatuses") or [{}])[0].get("restartCount", 0)


def ready_web(lab) -> set[str]:
    out = set()
    for p in store_for(lab.name).list("Pod"):
        conds = {c["type"]: c["status"] for c in (p.get("status") or {}).get("conditions") or []}
        if p["metadata"]["name"].startswith("web-") and conds.get("Ready") == "True" \
                and not p["metadata"].get("deletionTimestamp"):
            out.add(p["metadata"]["name"])
    return out


def six_new(lab, old: set[str], template_hash: str | None = None) -> set[str] | None:
    """The six ready web pods, once none of them is in `old` (and all have `template_hash`)."""
    h = ready_web(lab)
    if len(h) != 6 or h & old or (template_hash and any(n.rsplit("-", 2)[1] != template_hash for n in h)):
        return None
    return h


def test_rolling_update_and_undo_under_load_fail_no_request(lab, tmp_path):
    lab.up(scenario(6))
    v1 = web_hosts(lab)
    assert len(v1) == 6 and ready_web(lab) == v1
    cip = lab.cluster.services[0].cluster_ip
    node_ip = lab.node("n2").ip
    loads = [Load(lab, "pod", f"{cip}:80", tmp_path), Load(lab, "ext", f"{node_ip}:30080", tmp_path)]
    time.sleep(2)
    kubectl(lab, "set", "env", "deploy/web", "VERSION=v2")
    r = kubectl(lab, "rollout", "status", "deploy/web", "--timeout", "120s")
    assert "successfully rolled out" in r.stdout, r.stdout
    v2 = until("six ready v2 pods", lambda: six_new(lab, v1))
    time.sleep(2)
    # and back: rollout undo restores the v1 template (pods named by its pod-template-hash again)
    kubectl(lab, "rollout", "undo", "deploy/web")
    r = kubectl(lab, "rollout", "status", "deploy/web", "--timeout", "120s")
    assert "successfully rolled out" in r.stdout, r.stdout
    v1_hash = next(iter(v1)).rsplit("-", 2)[1]
    v3 = until("six ready pods of the v1 template", lambda: six_new(lab, v1 | v2, v1_hash))
    time.sleep(2)
    for load in loads:
        lines = load.stop()
        failed = [x for x in lines if not x.startswith("ok ")]
        answered = [x.split()[1] for x in lines if x.startswith("ok ")]
        assert len(lines) > 50, f"{load.out}: only {len(lines)} requests"
        assert failed == [], f"{load.out}: {len(failed)} of {len(lines)} failed: {failed[:5]}"
        seen = set(answered)
        assert seen & v1 and seen & v2 and seen & v3, (sorted(seen), v1, v2, v3)
        # the switch: v1 answers first, the undo's pods last
        assert answered[0] in v1 and answered[-1] in v3, (answered[0], answered[-1])
    # rollout history shows the revisions
    hist = kubectl(lab, "rollout", "history", "deploy/web").stdout
    assert "REVISION" in hist and len([x for x in hist.splitlines()[2:] if x.strip()]) >= 2, hist


def test_readiness_failure_leaves_the_endpoints_and_liveness_failure_restarts(lab, tmp_path):
    flag = f"/var/tmp/netlab-{lab.name}-ready"   # the host's /var/tmp: an exec probe sees it (read-only)
    alive = f"/var/tmp/netlab-{lab.name}-alive"
    for f in (flag, alive):
        open(f, "w").close()
    try:
        text = CLUSTER + f"""---
apiVersion: v1
kind: Pod
metadata: {{name: flappy, labels: {{app: flappy}}}}
spec:
  nodeName: n2
  containers:
  - name: web
    args: [netexec, --http-port=8080]
    ports: [{{containerPort: 8080}}]
    readinessProbe: {{exec: {{command: [test, -f, {flag}]}}, periodSeconds: 1, failureThreshold: 1}}
---
apiVersion: v1
kind: Pod
metadata: {{name: steady, labels: {{app: flappy}}}}
spec:
  nodeName: n3
  containers: [{{name: web, args: [netexec, --http-port=8080], ports: [{{containerPort: 8080}}]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: lively}}
spec:
  nodeName: n3
  containers:
  - name: app
    command: [python3, -m, http.server, "8081"]
    ports: [{{containerPort: 8081}}]
    livenessProbe: {{exec: {{command: [test, -f, {alive}]}}, periodSeconds: 1, failureThreshold: 2}}
---
apiVersion: v1
kind: Service
metadata: {{name: flappy}}
spec:
  selector: {{app: flappy}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  nodeName: n1
  containers: [{{name: c, image: busybox}}]
"""
        lab.up(text)
        cip = lab.cluster.services[0].cluster_ip

        def answers(n: int = 20) -> set[str]:
            got = set()
            for _ in range(n):
                r = lab.pod_exec("client", ["curl", "-sS", "--max-time", "2", f"http://{cip}/hostName"])
                assert r.returncode == 0, r.stderr
                got.add(r.stdout.strip())
            return got
        def state() -> str:
            # what the endpoints, the pods' conditions, the events and the loop's log said when a wait timed out
            out = [kubectl(lab, "get", "endpointslices", check=False).stdout,
                   kubectl(lab, "get", "pods", "-o", "wide", check=False).stdout,
                   kubectl(lab, "get", "events", check=False).stdout[-3000:], loop_log(lab)[-3000:]]
            return "\n".join(out)

        until("both pods chosen", lambda: answers() == {"flappy", "steady"}, detail=state)
        os.unlink(flag)   # its readiness probe fails from now on
        until("flappy out of the endpoints", lambda: answers() == {"steady"}, timeout=20, detail=state)
        events = kubectl(lab, "get", "events").stdout
        assert "Unhealthy" in events and "Readiness probe failed" in events, events
        open(flag, "w").close()
        until("flappy back in the endpoints", lambda: answers() == {"flappy", "steady"}, timeout=20, detail=state)
        # liveness: the container is killed and started again; RESTARTS counts it
        os.unlink(alive)
        until("lively restarted", lambda: restart_count(lab, "lively") >= 1, timeout=30, detail=state)
        open(alive, "w").close()
        pods = kubectl(lab, "get", "pods").stdout
        row = next(line.split() for line in pods.splitlines() if line.startswith("lively "))
        assert int(row[3]) >= 1, pods
        assert "failed liveness probe, will be restarted" in kubectl(lab, "get", "events").stdout
    finally:
        for f in (flag, alive):
            if os.path.exists(f):
                os.unlink(f)


def test_node_stop_moves_its_pods_and_start_brings_it_back(lab, tmp_path):
    lab.up(scenario(4).replace("name: live", "name: live\ncontrolPlane: {nodeMonitorGracePeriod: 4, "
                                             "defaultTolerationSeconds: 2}"))
    store = store_for(lab.name)
    on = lambda node: {p["metadata"]["name"] for p in store.list("Pod")  # noqa: E731
                       if p["spec"].get("nodeName") == node and p["metadata"]["name"].startswith("web-")}
    lost = on("n3")
    assert lost, "the scheduler spread web over the three nodes"
    kubectl(lab, "node", "stop", "n3")
    until("n3 NotReady", lambda: "NotReady" in next(
        x for x in kubectl(lab, "get", "nodes").stdout.splitlines() if x.startswith("n3 ")), timeout=30)
    until("four ready web pods elsewhere", lambda: len(ready_web(lab) - lost) == 4, timeout=60)
    assert not ready_web(lab) & lost
    cip = lab.cluster.services[0].cluster_ip
    seen = set()
    for _ in range(30):
        r = lab.pod_exec("client", ["curl", "-sS", "--max-time", "2", f"http://{cip}/hostName"])
        assert r.returncode == 0, r.stderr
        seen.add(r.stdout.strip())
    assert seen and not seen & lost, (seen, lost)
    kubectl(lab, "node", "start", "n3")
    until("n3 Ready", lambda: next(x for x in kubectl(lab, "get", "nodes").stdout.splitlines()
                                   if x.startswith("n3 ")).split()[1] == "Ready", timeout=30)
    until("the evicted pods let go", lambda: not (web_hosts(lab) & lost), timeout=30)


def test_every_node_stopped_at_once_evicts_nothing(lab):
    """Kubernetes' full disruption: no node Ready anywhere is taken for the controller's own problem
    (a stalled store, every heartbeat held up), not the nodes': they are NotReady, but none is tainted
    NoExecute and no pod is evicted, however long it lasts; started again, the same pods serve.
    The nodes are stopped one `node stop` after the other: the first may be tainted alone for a moment
    (one node of three is a node failure), and every pod's toleration (12 s, the bare client pod's too:
    the API server's admission gives it) outlasts that moment."""
    lab.up(scenario(4).replace("name: live", "name: live\ncontrolPlane: {nodeMonitorGracePeriod: 3, "
                                             "defaultTolerationSeconds: 12}"))
    store = store_for(lab.name)
    before = ready_web(lab)
    assert len(before) == 4
    nodes = ("n1", "n2", "n3")
    for n in nodes:   # (the client pod's node, n1, first)
        kubectl(lab, "node", "stop", n)

    def status() -> dict[str, str]:
        rows = kubectl(lab, "get", "nodes").stdout.splitlines()[1:]
        return {r.split()[0]: r.split()[1] for r in rows}

    def taints() -> dict[str, set]:
        return {n: {(t["key"], t["effect"]) for t in store.get("Node", None, n)["spec"].get("taints") or []}
                for n in nodes}
    until("every node NotReady", lambda: all(status()[n].startswith("NotReady") for n in nodes), timeout=30)
    until("no node tainted NoExecute", lambda: all(t == {("node.kubernetes.io/unreachable", "NoSchedule")}
                                                   for t in taints().values()), timeout=30, detail=taints)
    time.sleep(14)   # past the toleration of a taint that came before the last node went
    pods = {p["metadata"]["name"]: p for p in store.list("Pod") if p["metadata"]["name"].startswith(("web-", "client"))}
    assert set(pods) == before | {"client"} and not any(p["metadata"].get("deletionTimestamp") for p in pods.values())
    assert all(t == {("node.kubernetes.io/unreachable", "NoSchedule")} for t in taints().values()), taints()
    events = kubectl(lab, "get", "events").stdout
    assert "TaintManagerEviction" not in events, events
    for n in nodes:
        kubectl(lab, "node", "start", n)
    until("every node Ready", lambda: all(status()[n] == "Ready" for n in nodes), timeout=30)
    until("the same four web pods ready", lambda: ready_web(lab) == before, timeout=30)
    cip = lab.cluster.services[0].cluster_ip
    r = lab.pod_exec("client", ["curl", "-sS", "--max-time", "2", f"http://{cip}/hostName"])
    assert r.returncode == 0 and r.stdout.strip() in before, (r.stdout, r.stderr)


def test_a_bare_pod_on_a_failed_node_is_evicted_after_its_default_toleration_not_at_once(lab):
    """A pod the user wrote (no controller's) gets the DefaultTolerationSeconds admission as the controllers'
    pods do: `get -o yaml` shows the lab's tolerations, and when its node fails the pod outlives the NoExecute
    taint for those seconds before the node lifecycle controller evicts it."""
    lab.up(scenario(2).replace("name: live", "name: live\ncontrolPlane: {nodeMonitorGracePeriod: 3, "
                                             "defaultTolerationSeconds: 20}"))
    store = store_for(lab.name)
    shown = yaml.safe_load(kubectl(lab, "get", "pod", "client", "-o", "yaml").stdout)
    assert {(t["key"], t["effect"], t["tolerationSeconds"]) for t in shown["spec"]["tolerations"]} == {
        ("node.kubernetes.io/not-ready", "NoExecute", 20), ("node.kubernetes.io/unreachable", "NoExecute", 20)}
    node = shown["spec"]["nodeName"]
    kubectl(lab, "node", "stop", node)

    def noexec() -> list:
        return [t for t in store.get("Node", None, node)["spec"].get("taints") or [] if t["effect"] == "NoExecute"]
    until(f"{node} tainted NoExecute", noexec, timeout=30)
    time.sleep(5)   # a quarter of the toleration: a pod without it was evicted at once
    pod = store.try_get("Pod", "default", "client")
    assert pod is not None and not pod["metadata"].get("deletionTimestamp"), pod and pod["metadata"]
    until("the client pod evicted", lambda: (store.try_get("Pod", "default", "client") or {"metadata": {
        "deletionTimestamp": "gone"}})["metadata"].get("deletionTimestamp"), timeout=60)
    events = kubectl(lab, "get", "events").stdout
    assert any("TaintManagerEviction" in x and "pod/client" in x for x in events.splitlines()), events
    kubectl(lab, "node", "start", node)


def test_control_loop_killed_mid_rollout_comes_back_and_finishes(lab, tmp_path):
    lab.up(scenario(6))
    v1 = web_hosts(lab)
    cip = lab.cluster.services[0].cluster_ip
    load = Load(lab, "pod", f"{cip}:80", tmp_path)
    time.sleep(1)
    kubectl(lab, "set", "env", "deploy/web", "VERSION=v2")
    until("the rollout under way", lambda: len(web_hosts(lab) - v1) >= 2, timeout=60)
    rec = loop.running(lab.name)
    assert rec is not None
    os.kill(int(rec["pid"]), signal.SIGKILL)
    until("the loop gone", lambda: loop.running(lab.name) is None, timeout=10)
    kubectl(lab, "get", "pods")   # any netlab command brings it back (it records itself once started)
    until("the loop back", lambda: loop.running(lab.name) is not None, timeout=10,
          detail=lambda: loop_log(lab)[-3000:])
    r = kubectl(lab, "rollout", "status", "deploy/web", "--timeout", "120s", check=False)
    if "successfully rolled out" not in r.stdout:   # what the loop did, and what each node's server serves
        from netlab.dataplane import layout
        servers = "".join(f"{n}: {open(layout.server_status(lab.name, n)).read()}\n" for n in ("n1", "n2", "n3")
                          if os.path.exists(layout.server_status(lab.name, n)))
        raise AssertionError(r.stdout + r.stderr + kubectl(lab, "get", "pods", "-o", "wide", check=False).stdout
                             + servers + loop_log(lab)[-4000:])
    try:
        final = until("six ready v2 pods", lambda: six_new(lab, v1))
    except AssertionError:
        raise AssertionError(f"ready {sorted(ready_web(lab))}, all {sorted(web_hosts(lab))}, v1 {sorted(v1)}, "
                             f"{kubectl(lab, 'get', 'pods', check=False).stdout}") from None
    time.sleep(1)
    lines = load.stop()
    failed = [x for x in lines if not x.startswith("ok ")]
    assert len(lines) > 30 and failed == [], f"{len(failed)} of {len(lines)} failed: {failed[:5]}"
    # no pod lost or duplicated: exactly the six of the new ReplicaSet, each with one namespace
    until("the old pods let go", lambda: web_hosts(lab) == final, timeout=30)
    netns = lambda: sorted(n.rsplit(".", 1)[1] for n in os.listdir("/run/netns")  # noqa: E731
                           if n.startswith(f"nl.{lab.name}.pod.default.web-"))
    until("one namespace per pod, no other", lambda: netns() == sorted(final), timeout=30)


IDLE = CLUSTER + """---
apiVersion: v1
kind: Pod
metadata: {name: worker}
spec:
  nodeName: n2
  containers: [{name: main, image: busybox, command: [sh, -c, 'echo started >> /tmp/started-$(hostname); sleep 3600']}]
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  nodeName: n3
  containers: [{name: web, args: [netexec, --http-port=8080], ports: [{containerPort: 8080}]}]
"""


def test_an_idle_loop_repairs_what_moved_under_the_lab_without_a_command(lab):
    """The loop's periodic look (live/audit.py) finds a container killed by hand, a pod namespace
    deleted by hand, and a node's rules flushed by hand, and a pass repairs each: nothing is run but
    the loop."""
    from netlab.dataplane import nsfs, procs, state
    from netlab.dataplane.iptables import flavour_commands
    from netlab.live.loop import RESYNC_SECONDS
    lab.up(IDLE)
    worker = lab.pod("worker")
    rec = state.load(lab.name)["pods"][worker.key]["procs"]["main"]
    os.kill(int(rec["pid"]), signal.SIGKILL)
    until("the killed container started again",
          lambda: procs.alive((state.load(lab.name)["pods"][worker.key].get("procs") or {}).get("main"))
          and state.load(lab.name)["pods"][worker.key]["procs"]["main"]["pid"] != rec["pid"],
          timeout=RESYNC_SECONDS + 15)
    assert state.load(lab.name)["pods"][worker.key]["restarts"] == 1
    web = lab.pod("web")
    subprocess.run(["ip", "netns", "delete", web.netns], check=True)
    until("the deleted pod namespace made again", lambda: nsfs.is_ns_file(nsfs.netns_path(web.netns)),
          timeout=RESYNC_SECONDS + 15)
    until("the rebuilt pod answering", lambda: lab.pod_exec("worker", ["curl", "-sS", "--max-time", "2",
                                                                       f"http://{web.ip}:8080/hostname"]).stdout == "web",
          timeout=30)
    _, _, save = flavour_commands("auto")
    lab.node_exec("n1", [save.replace("-save", ""), "-t", "nat", "-F"])
    until("n1's rules restored", lambda: "-A KUBE-SERVICES" in lab.node_exec("n1", [save, "-t", "nat"]).stdout,
          timeout=RESYNC_SECONDS + 15)


def test_a_liveness_failure_restarts_a_built_in_container(lab):
    """A netexec pod served by its node's built-in server (no process of its own): a failed liveness
    probe ends its container (exit 137, as the kubelet's kill), it is started again and RESTARTS counts
    it; the pod answers again afterwards."""
    alive = f"/var/tmp/netlab-{lab.name}-alive"
    open(alive, "w").close()
    try:
        lab.up(CLUSTER + f"""---
apiVersion: v1
kind: Pod
metadata: {{name: web}}
spec:
  nodeName: n2
  containers:
  - name: web
    args: [netexec, --http-port=8080]
    ports: [{{containerPort: 8080}}]
    livenessProbe: {{exec: {{command: [test, -f, {alive}]}}, periodSeconds: 1, failureThreshold: 1}}
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  nodeName: n1
  containers: [{{name: c, image: busybox}}]
""")
        ip = lab.pod("web").ip
        get = lambda: lab.pod_exec("client", ["curl", "-sS", "--max-time", "2", f"http://{ip}:8080/hostname"])  # noqa: E731
        assert get().stdout == "web"
        assert restart_count(lab, "web") == 0
        os.unlink(alive)
        until("web restarted", lambda: restart_count(lab, "web") >= 1, timeout=30)
        open(alive, "w").close()
        until("web answering again", lambda: get().stdout == "web", timeout=20)
        row = next(line.split() for line in kubectl(lab, "get", "pods").stdout.splitlines() if line.startswith("web "))
        assert int(row[3]) >= 1, row
        events = kubectl(lab, "get", "events").stdout
        assert "failed liveness probe, will be restarted" in events, events
        from netlab.dataplane import layout
        with open(layout.container_log(lab.name, "default", "web", layout.BUILTIN)) as f:
            assert "killed by the kubelet (liveness probe failed)" in f.read()
    finally:
        if os.path.exists(alive):
            os.unlink(alive)


def test_up_starts_the_loop_during_its_last_steps_and_an_up_failing_there_leaves_none(lab, monkeypatch):
    """`up` starts the lab's control loop once its kernel work is done (live/loop.start), so its start-up
    runs beside the pods' status write: when `up` returns the loop runs and has recorded itself, and an
    `up` that fails after that point (here its status write) leaves no loop process behind, as before."""
    from netlab.dataplane import procs
    from netlab.live.sync import LiveLab
    text = CLUSTER + WEB.replace("REPLICAS", "2")
    seen = {}
    real = LiveLab.write_status

    def spy(self, *a, **kw):   # the loop, started before the status write, is running while it goes on
        seen.setdefault("pending", loop._starting.get(lab.name))
        return real(self, *a, **kw)
    monkeypatch.setattr(LiveLab, "write_status", spy)
    lab.up(text)
    p = seen.get("pending")
    assert p is not None, "the loop was not started before the status write"
    rec = loop.running(lab.name)
    assert rec is not None and int(rec["pid"]) == p.pid, (rec, p.pid)
    assert not loop._starting
    labmod.down(lab.name)
    until("the loop gone", lambda: loop.running(lab.name) is None, timeout=10)

    def boom(self, *a, **kw):
        seen["failing"] = loop._starting.get(lab.name)
        raise RuntimeError("status write failed (test)")
    monkeypatch.setattr(LiveLab, "write_status", boom)
    try:
        lab.up(text)
    except RuntimeError as e:
        assert "status write failed" in str(e)
    else:
        raise AssertionError("up did not fail")
    started = seen.get("failing")
    assert started is not None
    assert procs.start_time(started.pid) is None, "the loop started by the failed up still runs"
    assert loop.running(lab.name) is None and not loop._starting
    owned = list(procs.tagged([loop.owner(lab.name)], host=True))
    assert owned == [], owned
