"""hostNetwork pods and hostPort (issue 12), on real namespaces with real clients.

- a hostNetwork pod serves in its node's network namespace: curl of nodeIP:port from another node and
  from a pod; it is its Service's endpoint with the node's IP (the ClusterIP reaches it from a pod, in
  iptables and nftables modes); `get pods -o wide` and its status show the node's IP; its hostname is
  the node's; deleting it stops its server and leaves the node's namespace as it was;
- a pod with hostPort 8080 answers on nodeIP:8080 from another node, from a pod, from the node itself
  (localhost) and from itself (hairpin), through CNI portmap's chains, which go with the pod;
- two hostNetwork pods wanting one port on a cluster with one schedulable node: the second stays
  Pending with the scheduler's NodePorts reason;
- bad hostPort input: exit 2, one line, nothing built.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile

import pytest

from netlab.dataplane import lab as labmod

from .conftest import kubectl, netlab_cli, pods_json, pods_table, until

HOSTNET = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: hn
networking: {kubeProxyMode: MODE}
nodes: [{name: n1, role: control-plane}, {name: n2}, {name: n3}]
---
apiVersion: v1
kind: Pod
metadata: {name: hostweb, labels: {app: hostweb}}
spec:
  hostNetwork: true
  dnsPolicy: ClusterFirstWithHostNet
  nodeName: n2
  containers:
  - name: web
    image: registry.k8s.io/e2e-test-images/agnhost:2.39
    args: [netexec, --http-port=8080]
    ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: n3
  containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: Service
metadata: {name: hostweb}
spec:
  selector: {app: hostweb}
  ports: [{port: 80, targetPort: 8080}]
"""


def curl(lab, where, url: str) -> subprocess.CompletedProcess:
    return lab._run(where, ["curl", "-sS", "--max-time", "3", url])


def listening(lab, node: str, port: int) -> bool:
    out = lab.node_exec(node, ["ss", "-Hltn", f"sport = :{port}"]).stdout
    return bool(out.strip())


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_host_network_pod_serves_on_its_nodes_ip_and_is_an_endpoint(lab, mode):
    lab.up(HOSTNET.replace("MODE", mode))
    n2 = str(lab.node("n2").ip)
    # its server listens in the node's own namespace: from another node and from a pod, on the node IP
    assert lab.http(("node", "n1"), n2, 8080, "/hostname") == "n2"      # the node's hostname (Kubernetes')
    assert lab.http(("pod", "client"), n2, 8080, "/hostname") == "n2"
    assert listening(lab, "n2", 8080)
    assert lab.pod_exec("hostweb", ["hostname"]).stdout.strip() == "n2"
    # its IP is the node's: status, `get pods -o wide`, the EndpointSlice, the ClusterIP's DNAT
    status = pods_json(lab.name)["hostweb"]["status"]
    assert status["podIP"] == status["hostIP"] == n2 and status["podIPs"] == [{"ip": n2}]
    wide = kubectl(lab, "get", "pods", "-o", "wide").stdout.splitlines()
    row = next(line.split() for line in wide if line.startswith("hostweb "))
    assert row[5] == n2 and row[6] == "n2", wide
    slices = json.loads(kubectl(lab, "get", "endpointslices", "-o", "json").stdout)["items"]
    mine = [e["addresses"] for s in slices if s["metadata"]["labels"].get("kubernetes.io/service-name") == "hostweb"
            for e in s["endpoints"]]
    assert mine == [[n2]], slices
    vip = next(s for s in lab.cluster.services if s.name == "hostweb").cluster_ip
    until("the ClusterIP to reach the hostNetwork pod",
          lambda: curl(lab, ("pod", "client"), f"http://{vip}/hostname").stdout.strip() == "n2")
    assert lab.http(("node", "n2"), vip, 80, "/hostname") == "n2"    # from its own node (a local endpoint)
    # deleted: its server stops serving the port; the node's namespace and address stay
    def addresses() -> list:   # (the IPv6 link-local address's flags change by themselves: tentative until DAD ends)
        got = json.loads(lab.node_exec("n2", ["ip", "-j", "addr", "show", "eth0"]).stdout)
        return sorted((a["family"], a["local"], a["prefixlen"]) for link in got for a in link["addr_info"])
    links_before = addresses()
    assert any(a[1] == n2 for a in links_before), links_before   # the node IP it served on
    kubectl(lab, "delete", "pod", "hostweb")
    until("the hostNetwork pod's port to close", lambda: not listening(lab, "n2", 8080))
    until("the pod to leave the store", lambda: "hostweb" not in pods_table(lab.name))
    assert addresses() == links_before
    assert f"nl.{lab.name}.node.n2" in labmod.lab_namespaces(lab.name)
    assert not os.path.exists(f"/run/netlab/{lab.name}/uts/default.hostweb")
    assert curl(lab, ("node", "n1"), f"http://{n2}:8080/").returncode == 7


COMMAND = """apiVersion: v1
kind: Pod
metadata: {name: hostcmd}
spec:
  hostNetwork: true
  nodeName: n1
  containers:
  - name: web
    image: python
    command: [python3, -m, http.server, "9090"]
    ports: [{containerPort: 9090}]
"""


def test_host_network_command_runs_in_the_node_and_stops_with_the_pod(lab):
    """A container with a command runs in the node's namespace too, and is stopped when the pod goes."""
    lab.up(HOSTNET.replace("MODE", "iptables"))
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(COMMAND)
        f.flush()
        kubectl(lab, "apply", "-f", f.name)
    n1 = str(lab.node("n1").ip)
    until("the command's server on n1's address",
          lambda: curl(lab, ("node", "n3"), f"http://{n1}:9090/").returncode == 0, timeout=30)
    until("the pod to be Ready", lambda: pods_table(lab.name).get("hostcmd", ["", ""])[1] == "1/1")
    kubectl(lab, "delete", "pod", "hostcmd")
    until("the command to stop", lambda: not listening(lab, "n1", 9090))
    gone = subprocess.run(["pgrep", "-f", "http.server 9090"], capture_output=True, text=True)
    assert gone.stdout.strip() == "" or all(
        f"{lab.name}/" not in open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace")
        for pid in gone.stdout.split() if os.path.exists(f"/proc/{pid}/environ"))


HOSTPORT = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: hp
networking: {kubeProxyMode: MODE}
nodes: [{name: n1, role: control-plane}, {name: n2}, {name: n3}]
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  nodeName: n2
  containers:
  - name: web
    image: registry.k8s.io/e2e-test-images/agnhost:2.39
    args: [netexec, --http-port=80]
    ports: [{containerPort: 80, hostPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: n3
  containers: [{name: c, image: busybox}]
"""


def cni_chains(lab, node: str) -> list[str]:
    out = lab.node_exec(node, ["iptables-save", "-t", "nat"]).stdout
    return [line for line in out.splitlines() if "CNI-" in line]


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_host_port_is_forwarded_as_portmap_does(lab, mode):
    lab.up(HOSTPORT.replace("MODE", mode))
    n2, web = str(lab.node("n2").ip), lab.pod("web")
    gateway = str(lab.node("n2").gateway)
    # from another node: its own address as the source (no masquerade)
    assert lab.http(("node", "n1"), n2, 8080, "/clientip").split(":")[0] == str(lab.node("n1").ip)
    # from a pod on another node (flannel masquerades it to n3's address on the way out)
    assert lab.http(("pod", "client"), n2, 8080, "/hostname") == "web"
    # from the node itself, to its address and to localhost (marked and masqueraded: cni0's address)
    assert lab.http(("node", "n2"), n2, 8080, "/hostname") == "web"
    assert lab.http(("node", "n2"), "127.0.0.1", 8080, "/clientip").split(":")[0] == gateway
    # hairpin: the pod through its own hostPort
    assert lab.http(("pod", "web"), n2, 8080, "/clientip").split(":")[0] == gateway
    rules = cni_chains(lab, "n2")
    assert f"-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT" in rules
    assert any(f"-j DNAT --to-destination {web.ip}:80" in r and "--dport 8080" in r for r in rules), rules
    assert cni_chains(lab, "n1") == []           # no hostPort pod there: no chain
    # nothing else listens on 8080 in the node: it is the DNAT
    assert not listening(lab, "n2", 8080)
    kubectl(lab, "delete", "pod", "web")
    until("portmap's chains to go with the pod", lambda: cni_chains(lab, "n2") == [])
    assert curl(lab, ("node", "n1"), f"http://{n2}:8080/").returncode != 0


ONE_WORKER = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: np
nodes: [{name: cp, role: control-plane}, {name: w1, role: worker}]
---
apiVersion: v1
kind: Pod
metadata: {name: first}
spec:
  hostNetwork: true
  containers: [{name: web, image: registry.k8s.io/e2e-test-images/agnhost:2.39, args: [netexec, --http-port=8080],
                ports: [{containerPort: 8080}]}]
"""

SECOND = """apiVersion: v1
kind: Pod
metadata: {name: second}
spec:
  hostNetwork: true
  containers: [{name: web, image: registry.k8s.io/e2e-test-images/agnhost:2.39, args: [netexec, --http-port=8080],
                ports: [{containerPort: 8080}]}]
"""


def test_two_host_network_pods_with_one_port_never_share_a_node(lab):
    lab.up(ONE_WORKER)
    assert lab.http(("node", "cp"), lab.node("w1").ip, 8080, "/hostname") == "w1"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(SECOND)
        f.flush()
        kubectl(lab, "apply", "-f", f.name)

    def refused():
        rows = [line for line in kubectl(lab, "get", "events").stdout.splitlines()
                if "FailedScheduling" in line and "pod/second" in line]
        return rows and rows[-1]
    msg = until("the second pod to be refused by the scheduler", refused)
    assert "1 node(s) didn't have free ports for the requested pod ports" in msg, msg
    assert "untolerated taint" in msg, msg           # the control plane's taint, the other node's reason
    row = pods_table(lab.name)["second"]
    assert row[1:3] == ["0/1", "Pending"], row
    assert pods_table(lab.name)["first"][2] == "Running"


BAD = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: bad
nodes: [{name: n1}]
---
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  HOSTNET
  containers: [{name: c, ports: [PORT]}]
"""


@pytest.mark.parametrize("host_network,port,message", [
    (False, "{containerPort: 80, hostPort: 70000}",
     "Pod default/p: spec.containers[0].ports[0].hostPort 70000 is out of range 0-65535"),
    (True, "{containerPort: 80, hostPort: 8080}",
     "Pod default/p: spec.containers[0].ports[0].hostPort Invalid value: 8080: must match `containerPort` (80)"),
])
def test_bad_host_port_input_exits_2_and_builds_nothing(host_network, port, message):
    text = BAD.replace("HOSTNET", "hostNetwork: true" if host_network else "").replace("PORT", port)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(text)
        f.flush()
        for verb in ("validate", "up"):
            r = netlab_cli(verb, f.name)
            assert r.returncode == 2, (verb, r.stdout, r.stderr)
            assert message in r.stderr, r.stderr
            assert len([line for line in r.stderr.splitlines() if line.strip()]) == 1, r.stderr
    assert "bad" not in labmod.labs()
