"""kubectl's verbs (netlab/cli/kubectl.py, rollout.py, getlive.py) without root: the CLI against a
store of a simulated cluster (tests/unit/ctrl_sim.py: the controllers and a simulated kubelet with a
fake clock) instead of a lab's. What is checked: kubectl's lines, exit codes, that bad input writes
nothing and that every write asks for the lab's control loop."""
from __future__ import annotations

import json
import os
import threading
import time

import pytest
from click.testing import CliRunner

from netlab.cli import cli, getlive, kubeutil
from netlab.dataplane import lab as labmod
from netlab.errors import NotFound, UsageError
from netlab.store.meta import is_deleting

from .ctrl_sim import Sim

CLUSTER = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
nodes:
- {role: worker, name: n1}
- {role: worker, name: n2}
- {role: worker, name: n3}
"""

WEB = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        args: [netexec, --http-port=8080]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""


class World:
    """A simulated cluster behind the CLI: `run(...)` invokes netlab with the sim's store as the lab's."""

    def __init__(self, monkeypatch, tmp_path):
        self.sim = Sim(ready=0)
        self.ensured = []
        self.tmp = tmp_path
        target = kubeutil.Target("sim", self.sim.store, ensure=self.ensured.append, scenario=CLUSTER)
        monkeypatch.setattr(kubeutil, "open_target", lambda lab: target)

    @property
    def store(self):
        return self.sim.store

    def file(self, text: str, name: str = "m.yaml") -> str:
        p = self.tmp / name
        p.write_text(text)
        return str(p)

    def run(self, *args, settle: bool = True, input: str | None = None):
        r = CliRunner().invoke(cli, list(args), input=input)
        if settle:
            self.sim.tick(1)
        return r

    def deploy(self, replicas: int | None = None):
        text = WEB if replicas is None else WEB.replace("spec:\n  selector", f"spec:\n  replicas: {replicas}\n  selector", 1)
        r = self.run("apply", "-f", self.file(text))
        assert r.exit_code == 0, r.output
        for _ in range(5):
            self.sim.tick(1)
        return r


@pytest.fixture
def world(monkeypatch, tmp_path):
    return World(monkeypatch, tmp_path)


def lines(r) -> list[str]:
    return r.output.strip().splitlines()


# ------------------------------------------------------------------ apply

def test_apply_prints_kubectl_lines_and_keeps_what_scale_changed(world):
    r = world.deploy()
    assert lines(r) == ["deployment.apps/web created", "service/web created"]
    assert world.ensured == ["sim"]
    assert len([p for p in world.store.list("Pod")]) == 1  # apps/v1's default: 1 replica
    r = world.run("apply", "-f", world.file(WEB))
    assert lines(r) == ["deployment.apps/web unchanged", "service/web unchanged"]
    assert world.run("scale", "deploy/web", "--replicas", "4").exit_code == 0
    r = world.run("apply", "-f", world.file(WEB))
    assert lines(r) == ["deployment.apps/web unchanged", "service/web unchanged"]
    assert world.store.get("Deployment", "default", "web")["spec"]["replicas"] == 4  # the file never set it


def test_apply_reads_stdin_and_directories(world):
    r = world.run("apply", "-f", "-", input=WEB)
    assert r.exit_code == 0 and "deployment.apps/web created" in r.output
    d = world.tmp / "dir"
    d.mkdir()
    (d / "a.yaml").write_text(WEB.replace("name: web, labels", "name: api, labels"))
    r = world.run("apply", "-f", str(d))
    assert lines(r) == ["deployment.apps/api created", "service/web unchanged"]


BAD = {
    "maxSurge and maxUnavailable 0": (
        WEB.replace("spec:\n  selector", "spec:\n  strategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: 0}}\n"
                    "  selector", 1),
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"),
    "negative replicas": (WEB.replace("spec:\n  selector", "spec:\n  replicas: -3\n  selector", 1), "spec.replicas"),
    "unknown probe handler": (
        WEB.replace("args: [netexec, --http-port=8080]", "args: [netexec, --http-port=8080]\n"
                    "        readinessProbe: {httpGot: {port: 8080}}"),
        'readinessProbe.httpGot: Unsupported value: "httpGot"'),
    "duplicate key": (WEB.replace("metadata: {name: web}", "metadata: {name: web, name: other}"), "duplicate key"),
    "unknown field": (WEB.replace("  selector: {app: web}", "  selectr: {app: web}"), "selectr"),
    "Cluster document": (CLUSTER + "---\n" + WEB, "a Cluster document cannot be applied to a running lab"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_apply_refuses_bad_input_with_one_line_exit_2_and_writes_nothing(world, case):
    world.deploy(replicas=2)
    before, ensured = world.store.revision(), list(world.ensured)
    text, expected = BAD[case]
    r = world.run("apply", "-f", world.file(text, "bad.yaml"), settle=False)
    assert r.exit_code == 2, r.output
    out = [x for x in lines(r) if not x.startswith("netlab: ignoring")]
    assert len(out) == 1 and out[0].startswith("error: ") and expected in out[0], r.output
    assert "bad.yaml" in out[0]  # names the file, then the object and the field
    assert world.store.revision() == before and world.ensured == ensured


def test_apply_prune_needs_a_selector_or_all_and_prunes_only_what_apply_made(world):
    world.deploy()
    r = world.run("apply", "-f", world.file(WEB), "--prune")
    assert r.exit_code == 1 and "all resources selected for prune without explicitly passing --all" in r.output
    only_svc = WEB.split("---\n")[1]
    r = world.run("apply", "-f", world.file(only_svc), "--prune", "-l", "app=web")
    assert lines(r) == ["service/web unchanged", "deployment.apps/web pruned"]
    assert world.store.try_get("Deployment", "default", "web") is None


# ------------------------------------------------------------------ scale, set

def test_scale_and_its_errors(world):
    world.deploy()
    r = world.run("scale", "deploy/web", "--replicas", "5")
    assert r.exit_code == 0 and lines(r) == ["deployment.apps/web scaled"]
    assert world.store.get("Deployment", "default", "web")["spec"]["replicas"] == 5
    r = world.run("scale", "deployment", "web", "--replicas", "3")
    assert r.exit_code == 0 and world.store.get("Deployment", "default", "web")["spec"]["replicas"] == 3
    before = world.store.revision()
    r = world.run("scale", "svc/web", "--replicas", "3", settle=False)
    assert r.exit_code == 1 and lines(r) == ["error: cannot scale service/web: a Service has no replicas; scale a "
                                             "Deployment, ReplicaSet or StatefulSet instead"]
    r = world.run("scale", "deploy/nope", "--replicas", "3", settle=False)
    assert r.exit_code == 1 and lines(r) == ['Error from server (NotFound): deployments.apps "nope" not found']
    r = world.run("scale", "deploy/web", "--replicas", "-1", settle=False)
    assert r.exit_code == 1 and "spec.replicas: Invalid value: -1" in r.output
    r = world.run("scale", "deploy/web", settle=False)
    assert r.exit_code == 2 and "--replicas" in r.output
    # past what this machine holds (its real readings): refused as `up` refuses it, naming the limit and the fix
    r = world.run("scale", "deploy/web", "--replicas", "10000000", settle=False)
    assert r.exit_code == 2, r.output
    assert len(lines(r)) == 1 and lines(r)[0].startswith("error: deployment.apps/web: 9999997 more pods bring lab ")
    assert "to 10000000 pods, but this machine holds at most" in r.output
    assert "use fewer replicas" in r.output or "sysctl" in r.output
    assert world.store.revision() == before


def test_set_image_starts_a_rollout_and_undo_goes_back(world):
    world.deploy(replicas=3)
    r = world.run("set", "image", "deploy/web", "web=agnhost:2.54")
    assert lines(r) == ["deployment.apps/web image updated"]
    for _ in range(10):
        world.sim.tick(31)  # past the old pods' grace period
    pods = world.store.list("Pod")
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"agnhost:2.54"} and len(pods) == 3
    r = world.run("rollout", "history", "deploy/web")
    assert lines(r) == ["deployment.apps/web", "REVISION  CHANGE-CAUSE", "1         <none>", "2         <none>"]
    r = world.run("rollout", "status", "deploy/web")
    assert r.exit_code == 0 and lines(r)[-1] == 'deployment "web" successfully rolled out'
    before = world.store.revision()
    r = world.run("rollout", "undo", "deploy/web", "--to-revision", "7", settle=False)
    assert r.exit_code == 1 and lines(r) == ["error: unable to find specified revision 7 in history of deployment/web; "
                                             "revisions are: 1, 2 (see rollout history)"]
    assert world.store.revision() == before
    r = world.run("rollout", "undo", "deploy/web")
    assert r.exit_code == 0 and lines(r) == ["deployment.apps/web rolled back"]
    for _ in range(10):
        world.sim.tick(31)
    assert {p["spec"]["containers"][0]["image"] for p in world.store.list("Pod")} == {
        "registry.k8s.io/e2e-test-images/agnhost:2.53"}
    r = world.run("set", "image", "deploy/web", "nope=x", settle=False)
    assert r.exit_code == 1 and 'unable to find container named "nope"' in r.output


def test_set_env_sets_and_removes(world):
    world.deploy()
    r = world.run("set", "env", "deploy/web", "A=1", "B=2")
    assert lines(r) == ["deployment.apps/web env updated"]
    env = world.store.get("Deployment", "default", "web")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    world.run("set", "env", "deploy/web", "A-", "B=3")
    env = world.store.get("Deployment", "default", "web")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "B", "value": "3"}]
    r = world.run("set", "env", "svc/web", "A=1", settle=False)
    assert r.exit_code == 1 and "Deployments only" in r.output


# ------------------------------------------------------------------ rollout

def test_rollout_status_deadline_exceeded_and_timeout(world):
    world.deploy()
    # a template no node can take: the rollout never progresses
    text = WEB.replace("    spec:\n      containers", "    spec:\n      nodeSelector: {disk: ssd}\n      containers")
    text = text.replace("spec:\n  selector", "spec:\n  progressDeadlineSeconds: 5\n  selector", 1)
    world.run("apply", "-f", world.file(text))
    r = world.run("rollout", "status", "deploy/web", "--timeout", "0.3s", settle=False)
    assert r.exit_code == 1 and lines(r)[-1] == "error: timed out waiting for the condition", r.output
    assert lines(r)[0].startswith('Waiting for deployment "web" rollout to finish')
    for _ in range(8):
        world.sim.tick(1)
    r = world.run("rollout", "status", "deploy/web", settle=False)
    assert r.exit_code == 1 and lines(r) == ['error: deployment "web" exceeded its progress deadline']


def test_rollout_status_waits_for_the_loop_and_exits_0_when_done(world):
    world.deploy(replicas=2)
    world.run("set", "image", "deploy/web", "web=v2", settle=False)
    done = threading.Event()

    def loop():  # what the lab's control loop does meanwhile
        while not done.is_set():
            world.sim.tick(1)
            time.sleep(0.05)
    t = threading.Thread(target=loop)
    t.start()
    try:
        r = world.run("rollout", "status", "deploy/web", "--timeout", "20s", settle=False)
    finally:
        done.set()
        t.join()
    assert r.exit_code == 0, r.output
    assert lines(r)[-1] == 'deployment "web" successfully rolled out' and len(lines(r)) >= 2


def test_pause_resume_restart(world):
    world.deploy()
    assert lines(world.run("rollout", "pause", "deploy/web")) == ["deployment.apps/web paused"]
    r = world.run("rollout", "pause", "deploy/web")
    assert r.exit_code == 1 and lines(r) == ['error: deployments.apps "web" is already paused']
    r = world.run("rollout", "restart", "deploy/web")
    assert r.exit_code == 1 and "can't restart paused deployment" in r.output
    assert lines(world.run("rollout", "resume", "deploy/web")) == ["deployment.apps/web resumed"]
    assert lines(world.run("rollout", "restart", "deploy/web")) == ["deployment.apps/web restarted"]
    tmpl = world.store.get("Deployment", "default", "web")["spec"]["template"]
    assert "kubectl.kubernetes.io/restartedAt" in tmpl["metadata"]["annotations"]
    r = world.run("rollout", "status", "svc/web", settle=False)
    assert r.exit_code == 1 and "rollout works on Deployments" in r.output


# ------------------------------------------------------------------ delete

def test_delete_deployment_pod_and_not_found(world):
    world.deploy(replicas=2)
    pod = world.store.list("Pod")[0]
    r = world.run("delete", "pod", pod["metadata"]["name"], "--wait=false", settle=False)
    assert lines(r) == [f'pod "{pod["metadata"]["name"]}" deleted']
    marked = world.store.get("Pod", "default", pod["metadata"]["name"])
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 30  # the pod's terminationGracePeriodSeconds
    r = world.run("delete", "po", pod["metadata"]["name"], "--grace-period", "0", "--force", "--wait=false")
    assert r.exit_code == 0 and "Immediate deletion" in r.output
    r = world.run("delete", "deploy", "web")
    assert r.exit_code == 0 and lines(r) == ['deployment.apps "web" deleted']
    assert world.store.try_get("Deployment", "default", "web") is None
    r = world.run("delete", "deploy/web", settle=False)
    assert r.exit_code == 1 and lines(r) == ['Error from server (NotFound): deployments.apps "web" not found']
    r = world.run("delete", "deploy/web", "--ignore-not-found", settle=False)
    assert r.exit_code == 0 and r.output == ""
    r = world.run("delete", "-f", world.file(WEB))
    assert lines(r) == ['service "web" deleted', 'Error from server (NotFound): deployments.apps "web" not found']
    assert r.exit_code == 1


# ------------------------------------------------------------------ nodes

def test_taint_steers_new_pods_and_no_execute_evicts_them(world):
    world.deploy(replicas=3)
    assert sorted(p["spec"]["nodeName"] for p in world.store.list("Pod")) == ["n1", "n2", "n3"]
    r = world.run("taint", "node", "n1", "dedicated=db:NoSchedule")
    assert (r.exit_code, lines(r)) == (0, ["node/n1 tainted"])
    assert world.store.get("Node", None, "n1")["spec"]["taints"][0] == {"key": "dedicated", "value": "db",
                                                                       "effect": "NoSchedule"}
    world.run("scale", "deploy/web", "--replicas", "6")
    for _ in range(5):
        world.sim.tick(1)
    on = [p["spec"]["nodeName"] for p in world.store.list("Pod")]
    assert len(on) == 6 and on.count("n1") == 1, on   # the pod already there stays; no new one goes there
    # the same key and effect again: kubectl's error, nothing written; --overwrite changes the value
    before = world.store.revision()
    r = world.run("taint", "nodes", "n1", "dedicated=web:NoSchedule", settle=False)
    assert r.exit_code == 1 and lines(r) == [
        "error: node n1 already has dedicated taint(s) with same effect(s) and --overwrite is false"]
    assert world.store.revision() == before
    assert lines(world.run("taint", "node/n1", "dedicated=web:NoSchedule", "--overwrite")) == ["node/n1 modified"]
    # NoExecute: the pods there that do not tolerate it are evicted and made again elsewhere
    assert lines(world.run("taint", "node", "n2", "maint:NoExecute")) == ["node/n2 tainted"]
    for _ in range(40):
        world.sim.tick(31)
    on = [p["spec"]["nodeName"] for p in world.store.list("Pod") if not p["metadata"].get("deletionTimestamp")]
    assert len(on) == 6 and "n2" not in on and on.count("n1") == 1, on
    events = [e["reason"] for e in world.store.list("Event")]
    assert "TaintManagerEviction" in events
    assert lines(world.run("taint", "node", "n2", "maint-")) == ["node/n2 untainted"]
    assert "taints" not in world.store.get("Node", None, "n2")["spec"]
    r = world.run("taint", "node", "n2", "maint-", settle=False)
    assert r.exit_code == 1 and lines(r) == ['error: taint "maint" not found']
    r = world.run("taint", "node", "n2", "maint:Sometimes", settle=False)
    assert r.exit_code == 2 and "invalid taint effect: Sometimes" in r.output and len(lines(r)) == 1
    r = world.run("taint", "pod", "x", "a=b:NoSchedule", settle=False)
    assert r.exit_code == 1 and "taint applies to nodes only" in r.output
    r = world.run("taint", "node", "a=b:NoSchedule", "n1", settle=False)
    assert r.exit_code == 1 and "all resources must be specified before taint changes: n1" in r.output
    assert lines(world.run("taint", "nodes", "--all", "zone=x:PreferNoSchedule")) == [
        "node/n1 tainted", "node/n2 tainted", "node/n3 tainted"]


def test_cordon_uncordon_and_drain(world):
    world.deploy(replicas=3)
    assert lines(world.run("cordon", "n1")) == ["node/n1 cordoned"]
    assert lines(world.run("cordon", "n1")) == ["node/n1 already cordoned"]
    assert world.store.get("Node", None, "n1")["spec"]["unschedulable"] is True
    assert lines(world.run("uncordon", "n1")) == ["node/n1 uncordoned"]
    bare = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bare", "namespace": "default"},
            "spec": {"nodeName": "n2", "containers": [{"name": "c", "image": "x"}]}}
    world.store.create(bare)
    before = world.store.revision()
    r = world.run("drain", "n2", settle=False)
    assert r.exit_code == 1 and "cannot delete Pods that declare no controller (use --force to override)" in r.output
    assert world.store.revision() == before
    on_n2 = [p["metadata"]["name"] for p in world.store.list("Pod") if p["spec"].get("nodeName") == "n2"]
    done = threading.Event()

    def loop():
        while not done.is_set():
            world.sim.tick(31)
            time.sleep(0.05)
    t = threading.Thread(target=loop)
    t.start()
    try:
        r = world.run("drain", "n2", "--force", "--timeout", "20s", settle=False)
    finally:
        done.set()
        t.join()
    assert r.exit_code == 0, r.output
    out = lines(r)
    assert out[0] == "node/n2 cordoned" and out[-1] == "node/n2 drained"
    assert sorted(x for x in out if x.startswith("pod/")) == sorted(f"pod/{n} evicted" for n in on_n2)
    assert not [p for p in world.store.list("Pod") if p["spec"].get("nodeName") == "n2"]


# ------------------------------------------------------------------ wait, describe

def test_wait_for_condition_and_delete(world):
    world.deploy()
    r = world.run("wait", "--for=condition=Available", "deploy/web", "--timeout=5s", settle=False)
    assert r.exit_code == 0 and lines(r) == ["deployment.apps/web condition met"]
    r = world.run("wait", "--for=condition=Available=False", "deploy/web", "--timeout=0.2s", settle=False)
    assert r.exit_code == 1 and lines(r) == ["error: timed out waiting for the condition on deployments/web"]
    r = world.run("wait", "--for=jsonpath=x", "deploy/web", settle=False)
    assert r.exit_code == 1 and "unrecognized condition" in r.output
    r = world.run("wait", "--for=condition=Available", "deploy/nope", settle=False)
    assert r.exit_code == 1 and 'deployments.apps "nope" not found' in r.output
    r = world.run("wait", "--for=delete", "deploy/nope", settle=False)
    assert r.exit_code == 0


def test_describe_deployment_pod_and_node_end_with_events(world):
    world.deploy()
    pod = world.store.list("Pod")[0]["metadata"]["name"]
    for args, first in ((["deploy", "web"], "Name:                   web"), (["pod", pod], f"Name:            {pod}"),
                        (["node/n1"], "Name:               n1")):
        r = world.run("describe", *args, settle=False)
        assert r.exit_code == 0, r.output
        assert lines(r)[0] == first and "Events:" in r.output
    r = world.run("describe", "pod", pod, settle=False)
    assert "Controlled By:   ReplicaSet/web-" in r.output and "Scheduled" in r.output
    r = world.run("describe", "svc", "web", settle=False)
    assert r.exit_code == 0 and lines(r)[0] == "Name:                     web" and "Events:  <none>" in r.output


LB = """apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: first, namespace: metallb-system}
spec:
  addresses: [172.18.255.200/32]
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2, namespace: metallb-system}
spec:
  ipAddressPools: [first]
  nodeSelectors: [{matchLabels: {kubernetes.io/hostname: n1}}]
---
apiVersion: v1
kind: Service
metadata: {name: lb1}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""


def test_metallb_kinds_get_with_crd_columns_and_describe_svc_events(world):
    r = world.run("apply", "-f", world.file(LB))
    assert r.exit_code == 0, r.output
    assert lines(r) == ["namespace/metallb-system created", "ipaddresspool.metallb.io/first created",
                        "l2advertisement.metallb.io/l2 created", "service/lb1 created"]
    world.sim.tick(1)
    r = world.run("get", "ipaddresspools", "-n", "metallb-system", settle=False)
    assert lines(r) == ["NAME    AUTO ASSIGN   AVOID BUGGY IPS   ADDRESSES",
                        'first   true          false             ["172.18.255.200/32"]']
    r = world.run("get", "l2advertisements", "-n", "metallb-system", "-o", "wide", settle=False)
    assert lines(r) == ["NAME   IPADDRESSPOOLS   IPADDRESSPOOL SELECTORS   INTERFACES   NODE SELECTORS",
                        'l2     ["first"]                                               '
                        '[{"matchLabels":{"kubernetes.io/hostname":"n1"}}]']
    r = world.run("describe", "svc", "lb1", settle=False)
    assert "LoadBalancer Ingress:     172.18.255.200 (VIP)" in r.output, r.output
    assert "metallb.universe.tf/ip-allocated-from-pool: first" in r.output
    assert any(line.split()[:2] == ["Normal", "IPAllocated"] and line.endswith(
        'metallb-controller  Assigned IP ["172.18.255.200"]') for line in lines(r)), r.output
    # a second LoadBalancer: the pool is exhausted, it stays pending and says why
    r = world.run("apply", "-f", world.file(LB.replace("name: lb1", "name: lb2"), "m2.yaml"))
    world.sim.tick(1)
    r = world.run("describe", "svc", "lb2", settle=False)
    assert "LoadBalancer Ingress" not in r.output
    assert any(line.split()[:2] == ["Warning", "AllocationFailed"] and line.endswith(
        'Failed to allocate IP for "default/lb2": no available IPs') for line in lines(r)), r.output
    r = world.run("get", "ipaddresspool", "first", "-n", "metallb-system", "-o", "yaml", settle=False)
    assert "autoAssign: true" in r.output and "kind: IPAddressPool" in r.output


# ------------------------------------------------------------------ get

def test_a_stored_pods_status_is_checked_against_what_the_kernel_shows():
    """get pod -o json|yaml: the stored status with the kernel's view over it (cli/get._checked_status): the
    kernel's phase and container states win; a condition it confirms keeps its stored times; a stored reason
    and message go when the kernel sees the pod running as it should."""
    from netlab.cli.get import _checked_status
    stored = {"phase": "Running", "qosClass": "BestEffort", "reason": "Stale", "message": "old news",
              "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "T1"},
                             {"type": "PodScheduled", "status": "True", "lastTransitionTime": "T0"}],
              "containerStatuses": [{"name": "c", "image": "busybox", "containerID": "netlab://1",
                                     "state": {"running": {"startedAt": "T1"}}, "ready": True}]}
    ran = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"},
                                              {"type": "PodScheduled", "status": "True"}],
           "containerStatuses": [{"name": "c", "state": {"running": {"startedAt": "T1"}}, "ready": True}]}
    out = _checked_status(stored, ran)
    assert out["conditions"] == stored["conditions"] and out["qosClass"] == "BestEffort"
    assert "reason" not in out and "message" not in out
    assert out["containerStatuses"] == stored["containerStatuses"]
    ended = {"phase": "Failed", "reason": "Error", "message": "exit 3",
             "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
                            {"type": "PodScheduled", "status": "True"}],
             "containerStatuses": [{"name": "c", "state": {"terminated": {"exitCode": 3}}, "ready": False}]}
    out = _checked_status(stored, ended)
    assert (out["phase"], out["reason"], out["message"]) == ("Failed", "Error", "exit 3")
    assert out["conditions"] == [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
                                 stored["conditions"][1]]
    assert out["containerStatuses"] == [{"name": "c", "image": "busybox", "containerID": "netlab://1",
                                         "state": {"terminated": {"exitCode": 3}}, "ready": False}]
    assert stored["phase"] == "Running" and stored["reason"] == "Stale"   # (the stored object is not changed)


def test_get_deploy_rs_events_with_kubectl_columns(world):
    world.deploy(replicas=2)
    r = world.run("get", "deploy,rs", settle=False)
    out = lines(r)   # several kinds: kubectl's --show-kind (each name with its kind), a blank line between
    assert out[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"] and out[1].split()[:4] == [
        "deployment.apps/web", "2/2", "2", "2"]
    assert out[2] == "" and out[3].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert out[4].split()[0].startswith("replicaset.apps/web-") and out[4].split()[1:4] == ["2", "2", "2"]
    r = world.run("get", "deploy,rs", "-o", "json", settle=False)   # one List of both kinds
    assert [i["kind"] for i in json.loads(r.output)["items"]] == ["Deployment", "ReplicaSet"]
    r = world.run("get", "deploy,sts,rs", "-n", "nowhere", settle=False)   # said once, not per kind
    assert r.exit_code == 0 and lines(r) == ["No resources found in nowhere namespace."]
    r = world.run("get", "events", settle=False)
    reasons = [x.split()[2] for x in lines(r)[1:]]
    assert reasons[0] == "ScalingReplicaSet" and "SuccessfulCreate" in reasons and "Scheduled" in reasons
    r = world.run("get", "deploy", "-o", "name", settle=False)
    assert lines(r) == ["deployment.apps/web"]
    r = world.run("get", "deploy", "web", "-o", "json", settle=False)
    assert json.loads(r.output)["kind"] == "Deployment"
    r = world.run("get", "rs", "--show-labels", "-l", "app=web", settle=False)
    assert lines(r)[0].split()[-1] == "LABELS" and "app=web,pod-template-hash=" in lines(r)[1]
    r = world.run("get", "deploy", "-l", "app=other", settle=False)
    assert r.exit_code == 0 and "No resources found in default namespace." in r.output
    r = world.run("get", "deploy", "nope", settle=False)
    assert r.exit_code == 1 and lines(r) == ['Error from server (NotFound): deployments.apps "nope" not found']
    # kubectl's `get deploy nope web gone`: web's row, then a NotFound line for each missing name, exit 1
    r = world.run("get", "deploy", "nope", "web", "gone", "-o", "name", settle=False)
    assert r.exit_code == 1 and lines(r) == ["deployment.apps/web",
                                             'Error from server (NotFound): deployments.apps "nope" not found',
                                             'Error from server (NotFound): deployments.apps "gone" not found']
    r = world.run("get", "rs,deploy", "web", "-o", "name", settle=False)   # no rs named web: the deploy still shown
    assert r.exit_code == 1 and lines(r) == ["deployment.apps/web",
                                             'Error from server (NotFound): replicasets.apps "web" not found']
    r = world.run("get", "deploy", "-o", "wide", settle=False)
    assert lines(r)[0].split()[5:] == ["CONTAINERS", "IMAGES", "SELECTOR"]


def test_get_watch_prints_a_row_per_change(world, capsys):
    world.deploy(replicas=1)

    def later():
        time.sleep(0.3)
        world.store.update(dict(world.store.get("Deployment", "default", "web"),
                                spec=dict(world.store.get("Deployment", "default", "web")["spec"], replicas=3)))
    t = threading.Thread(target=later)
    t.start()
    getlive.watch(["Deployment"], (), "default", False, None, None, False, None, stop_after=1.0)
    t.join()
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["NAME", "READY"] and out[1].split()[:2] == ["web", "1/1"]
    assert out[2].split()[:2] == ["web", "1/3"]  # the change, without a header


# ------------------------------------------------------------------ which lab

def test_resolve_lab_picks_the_last_brought_up_and_says_so(monkeypatch, tmp_path):
    from netlab.dataplane import layout
    monkeypatch.setattr(layout, "RUN_DIR", str(tmp_path))
    monkeypatch.setattr(labmod, "labs", lambda: ["a", "b", "c"])
    for lab, t in (("a", "100"), ("b", "300"), ("c", "200")):
        (tmp_path / lab).mkdir()
        (tmp_path / lab / "last-up").write_text(t)
    said = []
    assert labmod.resolve_lab(None, say=said.append) == "b"
    assert said == ["using lab b (last brought up); choose another with --lab NAME"]
    assert labmod.resolve_lab("c", say=said.append) == "c" and len(said) == 1
    with pytest.raises(UsageError, match="several labs are up"):
        labmod.resolve_lab(None, pick_last=False)
    with pytest.raises(NotFound, match="lab 'x' is not up"):
        labmod.resolve_lab("x")
    monkeypatch.setattr(labmod, "labs", lambda: ["a"])
    assert labmod.resolve_lab(None, say=said.append) == "a" and len(said) == 1  # the only one: nothing to say
    monkeypatch.setattr(labmod, "labs", lambda: ["d", "e"])
    with pytest.raises(UsageError, match="choose one with --lab NAME"):
        labmod.resolve_lab(None)  # none was brought up by this netlab: no guess


@pytest.mark.parametrize("text,seconds", [("30s", 30), ("1m30s", 90), ("500ms", 0.5), ("0", 0), ("2h", 7200), ("5", 5)])
def test_durations_as_kubectl_takes_them(text, seconds):
    assert kubeutil.duration(text) == seconds


def test_a_bad_duration_is_a_usage_error(world):
    r = world.run("rollout", "status", "deploy/web", "--timeout", "soon", settle=False)
    assert r.exit_code == 2 and "invalid duration" in r.output


def test_pods_no_node_runs_are_deleted_at_once(world):
    """The API server's rule: a pod that is not bound to a node has no kubelet to confirm its end, so
    a graceful delete removes it at once (it never stays Terminating)."""
    world.deploy(replicas=1)
    for n in ("n1", "n2", "n3"):
        world.run("cordon", n)
    world.run("scale", "deploy/web", "--replicas", "3")
    pending = [p for p in world.store.list("Pod") if not p["spec"].get("nodeName")]
    assert len(pending) == 2
    r = world.run("delete", "pod", pending[0]["metadata"]["name"])  # waits: must not hang
    assert r.exit_code == 0 and world.store.try_get("Pod", "default", pending[0]["metadata"]["name"]) is None
    world.run("scale", "deploy/web", "--replicas", "1")  # the ReplicaSet deletes the unbound one first
    assert [p["metadata"]["name"] for p in world.store.list("Pod") if p["metadata"].get("deletionTimestamp")] == []
    assert len(world.store.list("Pod")) == 1


# ------------------------------------------------------------------ jobs and cronjobs

CRONJOB = """apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: "0 * * * *"
  timeZone: Europe/Paris
  jobTemplate:
    spec:
      completions: 2
      parallelism: 2
      template:
        spec:
          restartPolicy: Never
          containers: [{name: c, image: busybox, command: ["true"]}]
"""


def test_get_cronjobs_create_job_from_a_cronjob_get_jobs_and_wait(world):
    from netlab.controllers.kubelet import container_status
    r = world.run("apply", "-f", world.file(CRONJOB))
    assert r.exit_code == 0 and lines(r) == ["cronjob.batch/tick created"], r.output
    r = world.run("get", "cj", settle=False)
    assert lines(r)[0].split() == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"]
    assert lines(r)[1].split()[:7] == ["tick", "0", "*", "*", "*", "*", "Europe/Paris"]
    assert lines(r)[1].split()[7:10] == ["False", "0", "<none>"]
    r = world.run("create", "job", "now", "--from=cronjob/tick")
    assert r.exit_code == 0 and lines(r) == ["job.batch/now created"], r.output
    job = world.store.get("Job", "default", "now")
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job["metadata"]["ownerReferences"][0]["name"] == "tick"
    world.sim.tick(2)
    r = world.run("get", "jobs", settle=False)
    assert lines(r)[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert lines(r)[1].split()[:3] == ["now", "Running", "0/2"]
    r = world.run("wait", "--for=condition=complete", "job/now", "--timeout=0.2s", settle=False)
    assert r.exit_code == 1 and "timed out" in r.output
    for p in world.store.list("Pod"):
        p["status"] = dict(p["status"], phase="Succeeded", containerStatuses=[container_status(
            "c", "terminated", started_at=world.sim.now - 1, finished_at=world.sim.now)])
        world.store.update_status(p)
    world.sim.tick(1)
    r = world.run("wait", "--for=condition=complete", "job/now", "--timeout=1s", settle=False)
    assert r.exit_code == 0 and lines(r) == ["job.batch/now condition met"]
    assert lines(world.run("get", "jobs", settle=False))[1].split()[:3] == ["now", "Complete", "2/2"]
    r = world.run("create", "job", "now", "--from=cronjob/tick")
    assert r.exit_code == 1 and 'jobs.batch "now" already exists' in r.output
    r = world.run("create", "job", "x", "--from=cronjob/nope")
    assert r.exit_code == 1 and 'cronjobs.batch "nope" not found' in r.output


def test_metallb_objects_round_trip_and_the_shorthand_pools_are_not_the_inputs(monkeypatch, tmp_path):
    w = World(monkeypatch, tmp_path)
    shorthand = CLUSTER + "loadBalancer:\n  pools:\n  - {name: lab, addresses: [172.18.250.0/30]}\n"
    target = kubeutil.Target("sim", w.sim.store, ensure=w.ensured.append, scenario=shorthand)
    monkeypatch.setattr(kubeutil, "open_target", lambda lab: target)
    r = w.run("apply", "-f", w.file(LB))
    assert r.exit_code == 0 and "lab" not in r.output, r.output   # only the file's objects are applied
    kind_of = {"ipaddresspool": "IPAddressPool", "l2advertisement": "L2Advertisement"}
    for kind, name in (("ipaddresspool", "first"), ("l2advertisement", "l2")):
        for fmt in ("yaml", "json"):
            out = w.run("get", kind, name, "-n", "metallb-system", "-o", fmt, settle=False).output
            before = w.store.get(kind_of[kind], "metallb-system", name).get("spec")
            r = w.run("apply", "-f", w.file(out, f"{kind}.{fmt}"))   # (configured: the defaults are written now)
            assert r.exit_code == 0 and lines(r)[0].startswith(f"{kind}.metallb.io/{name} "), r.output
            r = w.run("apply", "-f", w.file(out, f"{kind}.{fmt}"))
            assert r.exit_code == 0 and lines(r) == [f"{kind}.metallb.io/{name} unchanged"], r.output
            assert w.store.get(kind_of[kind], "metallb-system", name).get("spec") == before
    # a pool overlapping the lab's own (the Cluster document's shorthand) is refused, nothing written
    bad = LB.split("---")[0].replace("name: first", "name: second").replace("172.18.255.200/32", "172.18.250.2/32")
    r = w.run("apply", "-f", w.file(bad, "bad.yaml"))
    assert r.exit_code == 2 and "overlaps 172.18.250.0-172.18.250.3 of pool 'lab'" in r.output, r.output
    assert w.store.try_get("IPAddressPool", "metallb-system", "second") is None
    # ... and so is one overlapping a pool applied before
    bad = bad.replace("172.18.250.2/32", "172.18.255.200/30")
    r = w.run("apply", "-f", w.file(bad, "bad2.yaml"))
    assert r.exit_code == 2 and "overlaps 172.18.255.200 of pool 'first'" in r.output, r.output


def test_apply_past_what_the_machine_holds_is_refused_and_writes_nothing(world):
    world.deploy()
    before = world.store.revision()
    big = WEB.replace("spec:\n  selector", "spec:\n  replicas: 10000000\n  selector", 1).replace("name: web, labels",
                                                                                            "name: big, labels")
    r = world.run("apply", "-f", world.file(big), settle=False)
    assert r.exit_code == 2, r.output
    assert len(lines(r)) == 1 and lines(r)[0].startswith("error: Deployment default/big: 10000000 more pods bring lab ")
    assert "but this machine holds at most" in r.output
    assert world.store.revision() == before and world.store.try_get("Deployment", "default", "big") is None
    # the same objects again, not growing: no check to fail
    assert world.run("apply", "-f", world.file(WEB)).exit_code == 0


def test_a_pod_template_runs_a_program_as_the_parser_decides(world, monkeypatch):
    """apply and scale count the processes of the pods they add as `up` does (the parser's templates: the
    images netlab's built-in server plays and agnhost's netexec command line run none, a command runs
    one): with 20 processes left on the machine, 30 more pods of a program are refused, not of those."""
    from netlab.dataplane import machine
    from netlab.spec.capacity import PROCS_PER_NODE, MachineLimits, Readings
    nodes = len(world.store.list("Node"))
    readings = Readings(pid_max=1000 + nodes * PROCS_PER_NODE + 20)   # (1000 kept free, the nodes' taken)
    monkeypatch.setattr(machine, "limits", lambda: MachineLimits(readings))
    agnhost = "image: registry.k8s.io/e2e-test-images/agnhost:2.53\n        args: [netexec, --http-port=8080]"

    def deployment(name: str, container: str, replicas: int) -> str:
        return WEB.split("---")[0].replace("name: web, labels", f"name: {name}, labels").replace(
            "spec:\n  selector", f"spec:\n  replicas: {replicas}\n  selector", 1).replace(agnhost, container)
    served = {"agnhost": agnhost,
              "busybox": "image: busybox\n        args: [netexec, --http-port=80]",
              "nginx": "image: nginx:1.27"}
    for name, container in served.items():
        r = world.run("apply", "-f", world.file(deployment(name, container, 30)), settle=False)
        assert r.exit_code == 0, (name, r.output)
    sleep = "image: busybox\n        command: [sleep, '3600']"
    r = world.run("apply", "-f", world.file(deployment("sleep", sleep, 30)), settle=False)
    assert r.exit_code == 2, r.output
    assert lines(r)[0].startswith("error: Deployment default/sleep: 30 more pods bring lab sim "), r.output
    assert "(processes: kernel.pid_max" in r.output and world.store.try_get("Deployment", "default", "sleep") is None
    assert world.run("apply", "-f", world.file(deployment("sleep", sleep, 1)), settle=False).exit_code == 0
    # scale: the stored template, parsed
    assert world.run("scale", "deploy/agnhost", "--replicas", "60", settle=False).exit_code == 0
    r = world.run("scale", "deploy/sleep", "--replicas", "30", settle=False)
    assert r.exit_code == 2 and lines(r)[0].startswith("error: deployment.apps/sleep: 29 more pods bring lab sim "), \
        r.output
    assert world.run("scale", "deploy/sleep", "--replicas", "15", settle=False).exit_code == 0
    # a stored template the parser refuses now (`set image` made it: http-echo takes no netexec args) is
    # counted as running a program
    assert world.run("set", "image", "deploy/agnhost", "web=hashicorp/http-echo", settle=False).exit_code == 0
    r = world.run("scale", "deploy/agnhost", "--replicas", "90", settle=False)
    assert r.exit_code == 2 and lines(r)[0].startswith("error: deployment.apps/agnhost: 30 more pods bring lab "), \
        r.output
    assert world.store.get("Deployment", "default", "agnhost")["spec"]["replicas"] == 60

# ------------------------------------------------------------------ patch

def test_patch_types_services_node_ports_and_no_change(world):
    world.deploy(2)
    r = world.run("patch", "deploy/web", "-p", '{"spec": {"replicas": 3}}')
    assert r.exit_code == 0 and lines(r) == ["deployment.apps/web patched"], r.output
    assert world.store.get("Deployment", "default", "web")["spec"]["replicas"] == 3
    r = world.run("patch", "deploy", "web", "--type", "merge", "-p", "spec: {replicas: 3}")   # YAML too
    assert r.exit_code == 0 and lines(r) == ["deployment.apps/web patched (no change)"], r.output
    r = world.run("patch", "deploy", "web", "--type", "json", "-p", '[{"op": "replace", "path": "/spec/replicas", '
                                                                    '"value": 1}]')
    assert r.exit_code == 0 and world.store.get("Deployment", "default", "web")["spec"]["replicas"] == 1
    # the last applied configuration stays the file's: an apply of the file afterwards sees its own fields only
    ann = world.store.get("Deployment", "default", "web")["metadata"]["annotations"]
    assert '"replicas":2' in ann["kubectl.kubernetes.io/last-applied-configuration"]
    # a Service made a NodePort gets a node port, as the API server allocates it; back to ClusterIP loses it
    r = world.run("patch", "svc/web", "-p", '{"spec": {"type": "NodePort"}}')
    assert r.exit_code == 0, r.output
    port = world.store.get("Service", "default", "web")["spec"]["ports"][0]
    assert 30000 <= port["nodePort"] <= 32767 and port["targetPort"] == 8080
    r = world.run("patch", "svc/web", "-p", '{"spec": {"type": "ClusterIP"}}')
    assert r.exit_code == 0, r.output
    assert "nodePort" not in world.store.get("Service", "default", "web")["spec"]["ports"][0]


@pytest.mark.parametrize("args,code,says", [
    (("deploy/web", "-p", '{"spec": {"replicas": -1}}'), 2, "--patch: Deployment default/web: spec.replicas -1 is out"),
    (("deploy/web", "-p", '{"spec": {"replicaz": 1}}'), 2, "unknown field spec.replicaz"),
    (("deploy/web", "-p", '{"spec": {"replicas": 1, "replicas": 2}}'), 2, "duplicate key spec.replicas"),
    (("deploy/web", "-p", '{"metadata": {"name": "other"}}'), 2, "changes the kind, name or namespace"),
    (("deploy/web", "-p", '{"metadata": {"uid": "x"}}'), 2, "changes metadata.uid"),
    (("deploy/web", "-p", '{"metadata": {"resourceVersion": "1"}}'), 1, "Error from server (Conflict)"),
    (("deploy/web", "-p", '{"status": {"replicas": 9}}'), 2, "status"),
    (("deploy/web", "-p", ""), 2, "--patch: is empty"),
    (("deploy/web",), 2, "give the patch with -p PATCH or --patch-file FILE"),
    (("deploy/nope", "-p", "{}"), 1, 'deployments.apps "nope" not found'),
    (("deploy/web", "svc/web", "-p", "{}"), 1, "one object at a time"),
])
def test_patch_refuses_bad_input_and_writes_nothing(world, args, code, says):
    world.deploy(2)
    before = world.store.revision()
    r = world.run("patch", *args, settle=False)
    said = [x for x in lines(r) if x and not x.startswith(("Usage:", "Try "))]   # (click's usage lines)
    assert r.exit_code == code and says in r.output and len(said) == 1, r.output
    assert world.store.revision() == before


def test_patch_of_a_pod_changes_its_labels_not_its_spec(world):
    world.deploy(1)
    name = world.store.list("Pod")[0]["metadata"]["name"]
    r = world.run("patch", "pod", name, "-p", '{"spec": {"containers": [{"name": "web", "image": "x"}]}}', settle=False)
    assert r.exit_code == 1 and "Forbidden: pod updates may not change" in r.output
    r = world.run("patch", "pod", name, "--type", "merge", "-p", '{"metadata": {"labels": {"app": null}}}')
    assert r.exit_code == 0 and lines(r) == [f"pod/{name} patched"], r.output
    for _ in range(3):
        world.sim.tick(1)
    pods = {p["metadata"]["name"]: p for p in world.store.list("Pod")}
    assert len(pods) == 2 and "ownerReferences" not in pods[name]["metadata"]   # released, and replaced
    # labelled back: adopted again, and one of the two goes (the ReplicaSet wants one)
    r = world.run("patch", "pod", name, "-p", '{"metadata": {"labels": {"app": "web"}}}')
    assert r.exit_code == 0, r.output
    assert world.store.get("Pod", "default", name)["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    for _ in range(40):
        world.sim.tick(1)
    assert len([p for p in world.store.list("Pod") if not is_deleting(p)]) == 1


def test_patch_a_built_in_namespace_and_not_a_node(world):
    r = world.run("patch", "ns", "default", "-p", '{"metadata": {"labels": {"team": "x"}}}')
    assert r.exit_code == 0 and lines(r) == ["namespace/default patched"], r.output
    ns = world.store.get("Namespace", None, "default")
    assert ns["metadata"]["labels"]["team"] == "x"
    assert "kubectl.kubernetes.io/last-applied-configuration" not in (ns["metadata"].get("annotations") or {})
    node = world.store.list("Node")[0]["metadata"]["name"]
    before = world.store.revision()
    r = world.run("patch", "node", node, "-p", '{"spec": {"unschedulable": true}}', settle=False)
    assert r.exit_code == 2 and f"use netlab cordon/uncordon {node}" in r.output and len(lines(r)) == 1
    assert world.store.revision() == before


# ------------------------------------------------------------------ edit

def editor(tmp_path, sed: str) -> str:
    """An EDITOR that edits the file it is given with one sed expression, as a user would by hand."""
    path = tmp_path / "editor.sh"
    path.write_text(f"#!/bin/sh\nsed -i '{sed}' \"$1\"\n")
    path.chmod(0o755)
    return str(path)


def test_edit_applies_what_changed_and_keeps_a_refused_copy(world, monkeypatch, tmp_path):
    world.deploy(2)
    monkeypatch.setenv("EDITOR", editor(tmp_path, "s/replicas: 2/replicas: 3/"))
    monkeypatch.delenv("KUBE_EDITOR", raising=False)
    r = world.run("edit", "deploy", "web")
    assert r.exit_code == 0 and lines(r) == ["deployment.apps/web edited"], r.output
    assert world.store.get("Deployment", "default", "web")["spec"]["replicas"] == 3
    # saved unchanged: nothing written
    monkeypatch.setenv("EDITOR", "true")
    before = world.store.revision()
    r = world.run("edit", "deploy/web", settle=False)
    assert r.exit_code == 0 and lines(r) == ["Edit cancelled, no changes made."]
    assert world.store.revision() == before
    # refused: one line naming the copy kept of the changes, exit 2, nothing written
    monkeypatch.setenv("KUBE_EDITOR", editor(tmp_path, "s/replicas: 3/replicaz: 3/"))
    r = world.run("edit", "deploy/web", settle=False)
    said = [x for x in lines(r) if x.startswith("error:")]
    assert r.exit_code == 2 and len(said) == 1 and "unknown field spec.replicaz" in said[0], r.output
    kept = said[0].split()[1].rstrip(":")
    with open(kept) as f:
        assert "replicaz: 3" in f.read()
    os.unlink(kept)
    assert world.store.revision() == before
    monkeypatch.setenv("KUBE_EDITOR", "no-such-editor")
    r = world.run("edit", "deploy/web", settle=False)
    assert r.exit_code == 1 and "no editor 'no-such-editor' found" in r.output


# ------------------------------------------------------------------ replace

def test_replace_writes_the_file_whole_and_keeps_what_the_server_set(world):
    world.deploy(2)
    assert world.run("label", "deploy/web", "team=a").exit_code == 0
    svc = world.store.get("Service", "default", "web")
    # the file as `get -o yaml` shows it, edited: a field left out is gone (apply would keep the label)
    dep = world.store.get("Deployment", "default", "web")
    dep["spec"]["replicas"] = 3
    dep["metadata"]["labels"] = {"app": "web"}
    r = world.run("replace", "-f", world.file(json.dumps(dep)))
    assert r.exit_code == 0 and lines(r) == ["deployment.apps/web replaced"], r.output
    now = world.store.get("Deployment", "default", "web")
    assert now["spec"]["replicas"] == 3 and now["metadata"]["labels"] == {"app": "web"}
    assert now["metadata"]["uid"] == dep["metadata"]["uid"] and now["status"]
    # the last applied configuration, which apply wrote, is the file's object now (kubectl's rule)
    last = json.loads(now["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["replicas"] == 3 and "uid" not in last["metadata"]
    # a Service written without its ClusterIP keeps the one it has, as the API server keeps it
    r = world.run("replace", "-f", world.file(WEB.split("---\n")[1]))
    assert r.exit_code == 0 and lines(r) == ["service/web replaced"], r.output
    assert world.store.get("Service", "default", "web")["spec"]["clusterIP"] == svc["spec"]["clusterIP"]


@pytest.mark.parametrize("edit,code,says", [
    (lambda d: d["metadata"].update(resourceVersion="1"), 1, "Error from server (Conflict): Operation cannot be"),
    # a stale file whose generation is stale too is a Conflict (what changed is someone's write), not a field
    (lambda d: d["metadata"].update(resourceVersion="1", generation=9), 1, "Error from server (Conflict)"),
    (lambda d: d["metadata"].update(uid="x"), 2, "changes metadata.uid of Deployment default/web"),
    (lambda d: d["metadata"].update(name="nope"), 1, 'error when replacing "', ),
    (lambda d: d["spec"].update(replicaz=1), 2, "unknown field spec.replicaz"),
    (lambda d: d.update(kind="Cluster"), 2, "a Cluster document cannot be replaced in a running lab"),
])
def test_replace_refuses_with_one_line_and_writes_nothing(world, edit, code, says):
    world.deploy(2)
    dep = {k: v for k, v in world.store.get("Deployment", "default", "web").items() if k != "status"}
    edit(dep)
    before = world.store.revision()
    r = world.run("replace", "-f", world.file(json.dumps(dep)), settle=False)
    assert r.exit_code == code and says in r.output and len(lines(r)) == 1, r.output
    assert world.store.revision() == before


def test_replace_a_pods_spec_only_with_force(world):
    world.run("run", "solo", "--image", "busybox", "--", "sleep", "3600")
    pod = {k: v for k, v in world.store.get("Pod", "default", "solo").items() if k != "status"}
    pod["spec"]["containers"][0]["args"] = ["sleep", "7200"]
    f = world.file(json.dumps(pod))
    before = world.store.revision()
    r = world.run("replace", "-f", f, settle=False)
    assert r.exit_code == 1 and "Forbidden: pod updates may not change" in r.output and len(lines(r)) == 1
    assert world.store.revision() == before
    r = world.run("replace", "--force", "-f", f)
    assert r.exit_code == 0 and lines(r) == ['pod "solo" deleted', "pod/solo replaced"], r.output
    now = world.store.get("Pod", "default", "solo")
    assert now["spec"]["containers"][0]["args"] == ["sleep", "7200"]
    assert now["metadata"]["uid"] != pod["metadata"]["uid"]


SOLO = """apiVersion: v1
kind: Pod
metadata: {name: solo, labels: {app: solo}}
spec:
  containers: [{name: c, image: busybox, args: [sleep, "3600"]}]
  tolerations:
  - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 60}
"""


def test_a_bare_pod_is_stored_with_the_default_tolerations_and_applies_again_unchanged(world, monkeypatch):
    """DefaultTolerationSeconds admission for a pod the user writes (not only the controllers' pods): the
    toleration it has is kept, the one it lacks is added with the lab's seconds; apply, diff and replace of
    the same manifest see no change in the pod's spec (a pod is not made anew for the admission's fields)."""
    def tolerations(name):
        pod = world.store.get("Pod", "default", name)
        return {t["key"]: t.get("tolerationSeconds") for t in pod["spec"]["tolerations"]}
    f = world.file(SOLO)
    r = world.run("apply", "-f", f)
    assert r.exit_code == 0 and lines(r) == ["pod/solo created"], r.output
    assert tolerations("solo") == {"node.kubernetes.io/not-ready": 60, "node.kubernetes.io/unreachable": 10}
    uid = world.store.get("Pod", "default", "solo")["metadata"]["uid"]
    r = world.run("apply", "-f", f)
    assert r.exit_code == 0 and lines(r) == ["pod/solo unchanged"], r.output
    r = world.run("diff", "-f", f, settle=False)
    assert r.exit_code == 0 and r.output == "", r.output
    # the pod as stored, a label added and the admission's toleration left out: admitted again, not a change
    pod = {k: v for k, v in world.store.get("Pod", "default", "solo").items() if k != "status"}
    pod["metadata"]["labels"]["tier"] = "x"
    pod["spec"]["tolerations"] = pod["spec"]["tolerations"][:1]
    r = world.run("replace", "-f", world.file(json.dumps(pod), "r.json"))
    assert r.exit_code == 0 and lines(r) == ["pod/solo replaced"], r.output
    assert world.store.get("Pod", "default", "solo")["metadata"]["uid"] == uid
    assert tolerations("solo") == {"node.kubernetes.io/not-ready": 60, "node.kubernetes.io/unreachable": 10}
    # the lab's own defaultTolerationSeconds (its Cluster document's controlPlane)
    target = kubeutil.Target("sim", world.store, ensure=world.ensured.append,
                             scenario=CLUSTER + "controlPlane: {defaultTolerationSeconds: 45}\n")
    monkeypatch.setattr(kubeutil, "open_target", lambda lab: target)
    r = world.run("run", "other", "--image", "busybox", "--", "sleep", "3600")
    assert r.exit_code == 0, r.output
    assert tolerations("other") == {"node.kubernetes.io/not-ready": 45, "node.kubernetes.io/unreachable": 45}


# ------------------------------------------------------------------ diff

def test_diff_shows_what_apply_would_change_and_changes_nothing(world):
    world.deploy(2)
    before = world.store.revision()
    applied = WEB.replace("spec:\n  selector", "spec:\n  replicas: 2\n  selector", 1)   # what deploy(2) applied
    r = world.run("diff", "-f", world.file(applied), settle=False)
    assert r.exit_code == 0 and r.output == "", r.output
    changed = applied.replace("replicas: 2", "replicas: 4") + """---
apiVersion: v1
kind: Secret
metadata: {name: token}
stringData: {token: s3cret}
"""
    r = world.run("diff", "-f", world.file(changed), settle=False)
    assert r.exit_code == 1, r.output
    assert world.store.revision() == before and world.store.try_get("Secret", "default", "token") is None
    # diff -u -N of kubectl's files: the Deployment's replicas and generation, the new Secret masked
    heads = [x.split()[-1].rsplit("/", 1)[1] for x in r.output.splitlines() if x.startswith("diff -u -N ")]
    assert heads == ["apps.v1.Deployment.default.web", "v1.Secret.default.token"], r.output
    assert "-  replicas: 2\n+  replicas: 4\n" in r.output and "-  generation: 1\n+  generation: 2\n" in r.output
    assert "s3cret" not in r.output and "+  token: '*** (after)'" in r.output
    assert "resourceVersion" not in "".join(x for x in r.output.splitlines() if x.startswith(("+", "-")))
    # a field the file no longer sets is removed by apply's three-way merge: replicas back to its default
    r = world.run("diff", "-f", world.file(WEB), settle=False)
    assert r.exit_code == 1 and "-  replicas: 2\n+  replicas: 1\n" in r.output, r.output
    # bad input: apply's line, exit 2, nothing written
    r = world.run("diff", "-f", world.file(changed.replace("selector:", "selectr:", 1)), settle=False)
    assert r.exit_code == 2 and "unknown field spec.selectr" in r.output, r.output


def test_diff_runs_kubectl_external_diff(world, monkeypatch):
    world.deploy(2)
    monkeypatch.setenv("KUBECTL_EXTERNAL_DIFF", "diff -q")
    r = world.run("diff", "-f", world.file(WEB.replace("8080]", "8080, --udp-port=8081]")), settle=False)
    assert r.exit_code == 1 and r.output.startswith("Files ") and "differ" in r.output, r.output
    monkeypatch.setenv("KUBECTL_EXTERNAL_DIFF", "no-such-diff -u")
    r = world.run("diff", "-f", world.file(WEB), settle=False)
    assert r.exit_code == 1 and "no diff program 'no-such-diff'" in r.output


# ------------------------------------------------------------------ create -f

def test_create_f_creates_what_is_not_there_and_says_already_exists_for_the_rest(world):
    r = world.run("create", "-f", world.file(WEB))
    assert r.exit_code == 0 and lines(r) == ["deployment.apps/web created", "service/web created"], r.output
    # as kubectl create: no last-applied configuration (unless --save-config)
    assert "kubectl.kubernetes.io/last-applied-configuration" not in \
        (world.store.get("Deployment", "default", "web")["metadata"].get("annotations") or {})
    other = WEB.replace("name: web", "name: api")
    before = world.store.get("Deployment", "default", "web")["metadata"]["generation"]
    r = world.run("create", "--save-config", "-f", world.file(other, "api.yaml"), "-f", world.file(WEB))
    assert r.exit_code == 1, r.output
    assert [x for x in lines(r) if not x.startswith("Error")] == ["deployment.apps/api created", "service/api created"]
    assert 'Error from server (AlreadyExists): error when creating "' in r.output
    assert 'deployments.apps "web" already exists' in r.output and 'services "web" already exists' in r.output
    assert world.store.get("Deployment", "default", "web")["metadata"]["generation"] == before   # left as it was
    assert "kubectl.kubernetes.io/last-applied-configuration" in \
        world.store.get("Deployment", "default", "api")["metadata"]["annotations"]
    # bad input: apply's line, exit 2, nothing written; no -f and no subcommand: kubectl's error
    rev = world.store.revision()
    r = world.run("create", "-f", world.file(WEB.replace("name: web", "name: x").replace("replicas", "replicaz")
                                              .replace("selector:", "selectr:", 1)), settle=False)
    assert r.exit_code == 2 and "unknown field spec.selectr" in r.output and world.store.revision() == rev
    r = world.run("create", settle=False)
    assert r.exit_code == 1 and "must specify one of -f and -k" in r.output


def test_a_refused_edit_opens_the_editor_again_with_why(world, monkeypatch, tmp_path):
    """As kubectl edit: the user's first save is refused, the file comes back with the reason on top, the
    second save (fixed) is applied."""
    world.deploy(2)
    seen = tmp_path / "second.yaml"
    ed = tmp_path / "human.sh"
    ed.write_text(f"""#!/bin/sh
if grep -q 'netlab refused the last save' "$1"; then
  cp "$1" {seen}; sed -i 's/replicaz: 5/replicas: 5/' "$1"
else
  sed -i 's/replicas: 2/replicaz: 5/' "$1"
fi
""")
    ed.chmod(0o755)
    monkeypatch.setenv("KUBE_EDITOR", str(ed))
    r = world.run("edit", "deploy/web")
    assert r.exit_code == 0 and lines(r) == ["deployment.apps/web edited"], r.output
    assert world.store.get("Deployment", "default", "web")["spec"]["replicas"] == 5
    second = seen.read_text()
    assert "#   " in second and "unknown field spec.replicaz" in second and "\n  replicaz: 5\n" in second


# ------------------------------------------------------------------ --dry-run

def test_dry_run_checks_and_says_what_would_change_and_writes_nothing(world):
    world.deploy(2)
    dep = world.store.get("Deployment", "default", "web")
    before = world.store.revision()
    four = WEB.replace("spec:\n  selector", "spec:\n  replicas: 4\n  selector", 1)
    r = world.run("apply", "--dry-run=server", "-f", world.file(four), settle=False)
    assert lines(r) == ["deployment.apps/web configured (server dry run)", "service/web unchanged (server dry run)"]
    r = world.run("patch", "deploy/web", "--dry-run=client", "-p", '{"spec": {"replicas": 5}}', settle=False)
    assert r.exit_code == 0 and lines(r) == ["deployment.apps/web patched (dry run)"], r.output
    r = world.run("create", "--dry-run=server", "-f", world.file(WEB.replace("name: web", "name: api")), settle=False)
    assert lines(r) == ["deployment.apps/api created (server dry run)", "service/api created (server dry run)"]
    dep["spec"]["replicas"] = 6
    r = world.run("replace", "--dry-run=server", "-f", world.file(json.dumps(dep)), settle=False)
    assert lines(r) == ["deployment.apps/web replaced (server dry run)"], r.output
    assert world.store.revision() == before and world.ensured == ["sim"]   # (the loop: started by deploy only)
    assert world.store.get("Deployment", "default", "web")["spec"]["replicas"] == 2
    assert world.store.try_get("Deployment", "default", "api") is None
    # a dry run checks as the real run does
    r = world.run("apply", "--dry-run=server", "-f", world.file(four.replace("replicas: 4", "replicas: -1")),
                  settle=False)
    assert r.exit_code == 2 and "spec.replicas -1 is out" in r.output


def test_create_run_expose_dry_run_client_print_a_manifest_and_need_no_lab(world, monkeypatch):
    def no_lab(lab):
        raise AssertionError("a client dry run looked for a lab")
    monkeypatch.setattr(kubeutil, "open_target", no_lab)
    r = world.run("create", "deployment", "web", "--image=nginx", "--replicas=2", "--port=80", "--dry-run=client",
                  "-o", "yaml", settle=False)
    assert r.exit_code == 0, r.output
    import yaml
    d = yaml.safe_load(r.output)
    assert d["kind"] == "Deployment" and d["spec"]["replicas"] == 2 and d["spec"]["selector"] == \
        {"matchLabels": {"app": "web"}} and d["spec"]["template"]["spec"]["containers"][0]["ports"] == \
        [{"containerPort": 80}]
    r = world.run("run", "tmp", "--image=busybox", "--port=80", "--expose", "--dry-run=client", "-o", "json",
                  settle=False)
    assert r.exit_code == 0 and [i["kind"] for i in json.loads(r.output)["items"]] == ["Service", "Pod"], r.output
    r = world.run("run", "tmp", "--image=busybox", "--dry-run=client", settle=False)
    assert lines(r) == ["pod/tmp created (dry run)"]


def test_create_run_expose_dry_run_server_check_and_write_nothing_and_o_yaml_shows_the_stored_object(world):
    world.deploy(1)
    before = world.store.revision()
    r = world.run("expose", "deploy", "web", "--port=80", "--name=web2", "--dry-run=server", settle=False)
    assert lines(r) == ["service/web2 exposed (server dry run)"], r.output
    r = world.run("run", "p", "--image=busybox", "--dry-run=server", "-o", "yaml", settle=False)
    assert r.exit_code == 0 and "uid:" in r.output, r.output   # as the store would hold it
    r = world.run("create", "deployment", "web", "--image=nginx", "--dry-run=server", settle=False)
    assert r.exit_code == 1 and 'deployments.apps "web" already exists' in r.output   # the server's checks
    assert world.store.revision() == before
    r = world.run("create", "deployment", "api", "--image=nginx", "-o", "name")
    assert r.exit_code == 0 and lines(r) == ["deployment.apps/api"], r.output
    assert world.store.try_get("Deployment", "default", "api") is not None
