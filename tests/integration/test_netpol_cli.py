"""`netlab label`, `get|describe|delete netpol` on a real, live lab.

A label change is checked where it matters: the Service that selects by the new label gets the pod as
its endpoint on the wire (curl through the ClusterIP from a node answers with the pod's name), and the
pod was not made again (same UID, same IP, the same network namespace inode, no restart)."""
from __future__ import annotations

import json
import os
import time

from .conftest import kubectl, netlab_cli, until

SCENARIO = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
nodes:
- {role: worker, name: n1}
- {role: worker, name: n2}
---
apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {ns: x}}
---
apiVersion: v1
kind: Pod
metadata: {name: a, labels: {pod: a}}
spec:
  containers:
  - name: c
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: [netexec, --http-port=80]
    ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x, labels: {pod: b}}
spec:
  containers:
  - name: c
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: [netexec, --http-port=80]
    ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: blue}
spec:
  selector: {team: blue}
  ports: [{port: 80, targetPort: 80}]
"""


def pod_json(lab, name: str, ns: str = "default") -> dict:
    return json.loads(kubectl(lab, "get", "pods", name, "-n", ns, "-o", "json").stdout)


def netns_inode(lab, name: str, ns: str = "default") -> int:
    return os.stat(f"/run/netns/nl.{lab.name}.pod.{ns}.{name}").st_ino


def via_service(lab, ip: str) -> str:
    r = netlab_cli("exec", "--node", "n1", "--lab", lab.name, "--", "curl", "-sS", "--max-time", "2",
                   f"http://{ip}/hostname")
    return r.stdout.strip() if r.returncode == 0 else ""


def test_label_a_pod_reaches_the_dataplane_without_restarting_it(lab):
    lab.up(SCENARIO)
    before = pod_json(lab, "a")
    inode = netns_inode(lab, "a")
    assert before["status"]["podIP"] and before["metadata"]["labels"] == {"pod": "a"}
    ip = json.loads(kubectl(lab, "get", "svc", "blue", "-o", "json").stdout)["spec"]["clusterIP"]
    assert via_service(lab, ip) == ""   # no pod has team=blue yet

    r = kubectl(lab, "label", "pod", "a", "team=blue")
    assert r.stdout == "pod/a labeled\n"
    # the Service now selects it: the control loop's pass programmed its endpoint on every node
    until("pod a answering through Service blue", lambda: via_service(lab, ip) == "a", timeout=30)
    rows = kubectl(lab, "get", "pods", "--show-labels").stdout.splitlines()
    row = next(x.split() for x in rows[1:] if x.split()[0] == "a")
    assert row[-1] == "pod=a,team=blue", rows
    after = pod_json(lab, "a")
    assert after["metadata"]["labels"] == {"pod": "a", "team": "blue"}
    # the same pod: same UID, IP and network namespace, no restart
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["status"]["podIP"] == before["status"]["podIP"]
    assert netns_inode(lab, "a") == inode
    assert [c["restartCount"] for c in after["status"]["containerStatuses"]] == [0]

    # an existing value needs --overwrite: kubectl's error, exit 1, nothing changed
    r = kubectl(lab, "label", "pod", "a", "team=red", check=False)
    assert r.returncode == 1 and r.stderr.strip() == "error: 'team' already has a value (blue), and --overwrite is false"
    assert pod_json(lab, "a")["metadata"]["labels"]["team"] == "blue"
    # a bad key: one line, exit 2, nothing changed
    rv = pod_json(lab, "a")["metadata"].get("resourceVersion")
    r = kubectl(lab, "label", "pod", "a", "bad key=x", check=False)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "invalid key" in r.stderr
    assert pod_json(lab, "a")["metadata"].get("resourceVersion") == rv

    # --overwrite moves it out of the Service; KEY- removes the label
    r = kubectl(lab, "label", "pod", "a", "team=red", "--overwrite")
    assert r.stdout == "pod/a labeled\n"
    until("Service blue without endpoints", lambda: via_service(lab, ip) == "", timeout=30)
    r = kubectl(lab, "label", "pod", "a", "team-")
    assert r.stdout == "pod/a unlabeled\n"
    final = pod_json(lab, "a")
    assert final["metadata"]["labels"] == {"pod": "a"}
    assert final["metadata"]["uid"] == before["metadata"]["uid"] and netns_inode(lab, "a") == inode
    assert final["status"]["podIP"] == before["status"]["podIP"]


def test_label_a_namespace(lab):
    lab.up(SCENARIO)

    def ns_labels(name: str) -> dict:
        return json.loads(kubectl(lab, "get", "ns", name, "-o", "json").stdout)["metadata"]["labels"]

    assert ns_labels("x") == {"ns": "x", "kubernetes.io/metadata.name": "x"}
    r = kubectl(lab, "label", "ns", "x", "ns=y", check=False)
    assert r.returncode == 1 and r.stderr.strip() == "error: 'ns' already has a value (x), and --overwrite is false"
    assert kubectl(lab, "label", "ns", "x", "ns=y", "--overwrite").stdout == "namespace/x labeled\n"
    assert kubectl(lab, "label", "namespace", "x", "team=blue").stdout == "namespace/x labeled\n"
    assert ns_labels("x") == {"ns": "y", "team": "blue", "kubernetes.io/metadata.name": "x"}
    assert kubectl(lab, "label", "ns", "x", "team-").stdout == "namespace/x unlabeled\n"
    r = kubectl(lab, "label", "ns", "x", "team=a b", check=False)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "invalid value" in r.stderr
    assert ns_labels("x") == {"ns": "y", "kubernetes.io/metadata.name": "x"}
    # the API server's own namespaces can be labeled too
    assert kubectl(lab, "label", "ns", "default", "team=core").stdout == "namespace/default labeled\n"
    rows = kubectl(lab, "get", "ns", "--show-labels").stdout.splitlines()
    by = {x.split()[0]: x.split() for x in rows[1:]}
    assert by["default"][-1] == "kubernetes.io/metadata.name=default,team=core"
    assert by["x"][1] == "Active" and by["x"][-1] == "kubernetes.io/metadata.name=x,ns=y"
    # the pods in the namespaces keep running
    assert pod_json(lab, "b", "x")["status"]["phase"] == "Running"


POLICY = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-from-x, labels: {team: net}}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {ns: x}}
      podSelector: {matchLabels: {pod: b}}
    ports:
    - {port: 80}
    - {protocol: UDP, port: 81, endPort: 90}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-egress, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Egress]
"""


def test_get_describe_delete_netpol_after_apply(lab, tmp_path):
    lab.up(SCENARIO)
    f = tmp_path / "policy.yaml"
    f.write_text(POLICY)
    r = kubectl(lab, "apply", "-f", str(f))
    assert r.stdout.splitlines() == ["networkpolicy.networking.k8s.io/allow-from-x created",
                                     "networkpolicy.networking.k8s.io/deny-egress created"]
    rows = [x.split() for x in kubectl(lab, "get", "netpol", "-A").stdout.splitlines()]
    assert rows[0] == ["NAMESPACE", "NAME", "POD-SELECTOR", "AGE"]
    assert [r[:3] for r in rows[1:]] == [["default", "allow-from-x", "pod=a"], ["x", "deny-egress", "<none>"]]
    assert kubectl(lab, "get", "networkpolicies", "-n", "x", "-o", "name").stdout == \
        "networkpolicy.networking.k8s.io/deny-egress\n"
    doc = json.loads(kubectl(lab, "get", "netpol", "allow-from-x", "-o", "json").stdout)
    assert doc["kind"] == "NetworkPolicy" and doc["spec"]["podSelector"] == {"matchLabels": {"pod": "a"}}
    out = kubectl(lab, "describe", "netpol", "allow-from-x").stdout.splitlines()
    assert out[0] == "Name:         allow-from-x" and out[2].startswith("Created on:   ")
    assert out[3:] == ["Labels:       team=net",
                       "Annotations:  <none>",
                       "Spec:",
                       "  PodSelector:     pod=a",
                       "  Allowing ingress traffic:",
                       "    To Port: 80/TCP",
                       "    To Port Range: 81-90/UDP",
                       "    From:",
                       "      NamespaceSelector: ns=x",
                       "      PodSelector: pod=b",
                       "  Not affecting egress traffic",
                       "  Policy Types: Ingress"]
    out = kubectl(lab, "describe", "networkpolicy", "deny-egress", "-n", "x").stdout.splitlines()
    assert out[5:] == ["Spec:",
                       "  PodSelector:     <none> (Allowing the specific traffic to all pods in this namespace)",
                       "  Not affecting ingress traffic",
                       "  Allowing egress traffic:",
                       "    <none> (Selected pods are isolated for egress connectivity)",
                       "  Policy Types: Egress"]
    r = kubectl(lab, "delete", "netpol", "deny-egress", "-n", "x")
    assert r.stdout == 'networkpolicy.networking.k8s.io "deny-egress" deleted\n'
    r = kubectl(lab, "get", "netpol", "-n", "x", check=False)
    assert r.returncode == 0 and r.stdout == "" and "No resources found in x namespace." in r.stderr
    r = kubectl(lab, "describe", "netpol", "deny-egress", "-n", "x", check=False)
    assert r.returncode == 1 and r.stderr.strip() == \
        'Error from server (NotFound): networkpolicies.networking.k8s.io "deny-egress" not found'


BAD_POLICIES = [
    ("spec:\n  podSelector: {}\n  ingress:\n  - from: [{ipBlock: {cidr: 10.0.0.0/33}}]\n",
     "spec.ingress[0].from[0].ipBlock.cidr '10.0.0.0/33' is not a valid CIDR"),
    ("spec:\n  podSelector: {}\n  ingress:\n  - from: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.1.0.0/24]}}]\n",
     "except[0] 10.1.0.0/24 is not a strict subset of cidr 10.0.0.0/16"),
    ("spec:\n  podSelector: {}\n  egress:\n  - ports: [{port: 90, endPort: 80}]\n", "endPort 80 is below port 90"),
    ("spec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: http, endPort: 90}]\n",
     "endPort may not be specified when port is a name"),
    ("spec:\n  podSelector: {}\n  policyTypes: [Ingres]\n", "spec.policyTypes[0] 'Ingres' is not a policy type"),
]


def test_a_bad_policy_on_a_live_lab_is_one_line_exit_2_and_changes_nothing(lab, tmp_path):
    """What the API server refuses: one line naming the document and the field, exit 2, and neither the
    store nor any node's netfilter tables change (a default-deny policy applied in the same file is not
    applied either)."""
    lab.up(SCENARIO)

    def tables() -> dict:
        return {n: lab.node_exec(n, ["iptables-save", "-t", "filter"]).stdout.splitlines()[1:-1]
                for n in ("n1", "n2")}
    before, stored = tables(), kubectl(lab, "get", "netpol", "-A", "-o", "name", check=False).stdout
    deny = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny}\nspec:\n  podSelector: {}\n"
    for body, message in BAD_POLICIES:
        f = tmp_path / "bad.yaml"
        f.write_text(deny + "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: bad}\n"
                     + body)
        r = kubectl(lab, "apply", "-f", str(f), check=False)
        assert r.returncode == 2, r
        assert len(r.stderr.strip().splitlines()) == 1 and "NetworkPolicy bad: " in r.stderr \
            and message in r.stderr, r.stderr
    time.sleep(1.5)    # a pass the apply would have caused has run by now
    assert kubectl(lab, "get", "netpol", "-A", "-o", "name", check=False).stdout == stored == ""
    after = tables()
    assert rules(after) == rules(before)


def rules(tables: dict) -> dict:
    """iptables-save lines without the chain declarations (their packet counters move with traffic)."""
    return {n: [ln for ln in lines if not ln.startswith(":")] for n, lines in tables.items()}
