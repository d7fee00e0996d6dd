"""DaemonSet on real namespaces (issue 12): a pod on every eligible node (on the tainted control
plane only for the DaemonSet that tolerates its taint), each answering curl from another pod directly
and through a Service selecting them; a node added to the Cluster (`up` of the edited scenario) gets
its pod and it answers, a node removed loses it; `apply -f` of a changed template rolls (`rollout status ds/NAME`); a
selector that does not match the template is refused by the CLI in one line, exit 2, nothing built."""
from __future__ import annotations

import json
import os
import subprocess

from netlab.dataplane import lab as labmod

from .conftest import kubectl, netlab_cli, pods_json, until

CLUSTER = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: ds
nodes: [{name: cp, role: control-plane}, {name: w1, role: worker}, {name: w2, role: worker}WORKER3]
"""

AGENT = """apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1}}
  template:
    metadata: {labels: {app: agentEXTRA}}
    spec:
      containers: [{name: netexec, image: registry.k8s.io/e2e-test-images/agnhost:2.39, args: [netexec],
                    ports: [{containerPort: 8080}]}]
"""

REST = """apiVersion: apps/v1
kind: DaemonSet
metadata: {name: everywhere}
spec:
  selector: {matchLabels: {app: everywhere}}
  template:
    metadata: {labels: {app: everywhere}}
    spec:
      tolerations: [{key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}]
      containers: [{name: c, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: agent}
spec:
  selector: {app: agent}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: w1
  containers: [{name: c}]
"""


def scenario(w3: bool = False, extra: str = "") -> str:
    return (CLUSTER.replace("WORKER3", ", {name: w3, role: worker}" if w3 else "") + "---\n"
            + AGENT.replace("EXTRA", extra) + "---\n" + REST)


def daemon_pods(lab, ds: str) -> dict[str, dict]:
    """node -> the running, ready, not terminating pod of DaemonSet `ds` there."""
    out = {}
    for p in pods_json(lab.name).values():
        refs = p["metadata"].get("ownerReferences") or []
        if not refs or refs[0]["name"] != ds or p["metadata"].get("deletionTimestamp"):
            continue
        if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or []):
            out[p["spec"]["nodeName"]] = p
    return out


def cni0_sys(lab, node: str, attr: str) -> str:
    """/sys/class/net/cni0/ATTR in the node's namespace (`ip netns exec` mounts that namespace's sysfs)."""
    r = subprocess.run(["ip", "netns", "exec", lab.node(node).netns, "cat", f"/sys/class/net/cni0/{attr}"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def cni0_mac(lab, node: str) -> str:
    return cni0_sys(lab, node, "address")


def curl(lab, url: str) -> str:
    r = lab._run(("pod", "client"), ["curl", "-sS", "--max-time", "3", url])
    return r.stdout.strip() if r.returncode == 0 else ""


def test_daemonset_runs_a_pod_on_each_eligible_node_that_answers(lab, tmp_path):
    lab.up(scenario())
    agents = until("an agent pod on each worker", lambda: (lambda d: d if set(d) == {"w1", "w2"} else None)(
        daemon_pods(lab, "agent")))
    assert "cp" not in daemon_pods(lab, "agent")   # the control-plane taint is not tolerated
    assert set(until("everywhere pods on all three nodes",
                     lambda: (lambda d: d if len(d) == 3 else None)(daemon_pods(lab, "everywhere")))) == {"cp", "w1", "w2"}
    for node, p in agents.items():   # each pod answers, by its own address, from a pod on another node too
        assert curl(lab, f"http://{p['status']['podIP']}:8080/hostname") == p["metadata"]["name"]
        assert p["metadata"]["labels"]["controller-revision-hash"] and p["metadata"]["labels"]["pod-template-generation"] == "1"
    svc = json.loads(kubectl(lab, "get", "services", "agent", "-o", "json").stdout)
    vip = svc["spec"]["clusterIP"]
    names = {p["metadata"]["name"] for p in agents.values()}
    seen: set = set()
    until("both agent pods behind the Service", lambda: seen.add(curl(lab, f"http://{vip}/hostname")) or names <= seen)
    table = kubectl(lab, "get", "ds").stdout.splitlines()
    assert table[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE", "SELECTOR",
                                "AGE"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["agent"][1:7] == ["2", "2", "2", "2", "2", "<none>"]
    assert rows["everywhere"][1:6] == ["3", "3", "3", "3", "3"]
    wide = kubectl(lab, "get", "daemonsets", "agent", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"] and wide[1].split()[-1] == "app=agent"

    # a node added to the Cluster gets its pod, which answers (through the Service too)
    lab.up(scenario(w3=True))
    agents = until("an agent pod on w3", lambda: (lambda d: d if "w3" in d else None)(daemon_pods(lab, "agent")))
    assert set(agents) == {"w1", "w2", "w3"}
    new = agents["w3"]
    assert curl(lab, f"http://{new['status']['podIP']}:8080/hostname") == new["metadata"]["name"]
    until("the w3 pod behind the Service",
          lambda: curl(lab, f"http://{vip}/hostname") == new["metadata"]["name"], timeout=60, every=0.1)
    ds = json.loads(kubectl(lab, "get", "ds", "agent", "-o", "json").stdout)
    assert ds["status"]["desiredNumberScheduled"] == 3

    # apply -f of a changed template rolls every pod; the other pods of a node keep reaching other nodes
    # (cni0 keeps its own MAC when the veth whose MAC it had goes: else their gateway neighbour entry
    # is stale and their traffic to other nodes is lost for up to ~40 s)
    macs = {n: cni0_mac(lab, n) for n in ("w1", "w2", "w3")}
    for n in macs:   # set, not taken from a port (the kernel's NET_ADDR_SET): it will not follow the ports
        assert cni0_sys(lab, n, "addr_assign_type") == "3"
    f = tmp_path / "agent.yaml"
    f.write_text(AGENT.replace("EXTRA", ", rev: two"))
    assert "daemonset.apps/agent configured" in kubectl(lab, "apply", "-f", str(f)).stdout
    r = kubectl(lab, "rollout", "status", "ds/agent", "--timeout", "120s")
    assert 'daemon set "agent" successfully rolled out' in r.stdout
    after = until("three rolled pods", lambda: (lambda d: d if len(d) == 3 and all(
        p["metadata"]["labels"].get("rev") == "two" for p in d.values()) else None)(
        daemon_pods(lab, "agent")))
    assert not {p["metadata"]["name"] for p in after.values()} & {p["metadata"]["name"] for p in agents.values()}
    for p in after.values():
        assert p["metadata"]["labels"]["pod-template-generation"] == "2"
        url = f"http://{p['status']['podIP']}:8080/hostname"
        assert curl(lab, url) == p["metadata"]["name"]
    assert {n: cni0_mac(lab, n) for n in ("w1", "w2", "w3")} == macs

    # a node removed from the Cluster takes its pod with it
    lab.up(scenario(extra=", rev: two"))
    until("no agent pod left on w3", lambda: set(daemon_pods(lab, "agent")) == {"w1", "w2"})
    ds = json.loads(kubectl(lab, "get", "ds", "agent", "-o", "json").stdout)
    assert ds["status"]["desiredNumberScheduled"] == 2


def test_daemonset_selector_not_matching_its_template_is_refused(lab, tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(scenario(extra=", tier: x").replace("{app: agent, tier: x}", "{app: agnet}"))
    r = netlab_cli("up", str(f), "--lab", lab.name)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "DaemonSet default/agent" in lines[0] and "spec.selector.matchLabels" in lines[0] \
        and "the selector must match the template's labels" in lines[0], r.stderr
    assert not labmod.lab_namespaces(lab.name) and not os.path.exists(f"/run/netlab/{lab.name}")
