"""Unit tests of scenario parsing and validation (netlab.spec): pure, no root.

Valid scenarios must parse to the expected `Scenario`; every bad one must raise a one-line `SpecError`
(exit code 2) that names the document, the field and, after '; ', the fix. A seeded fuzz test checks that
mangled scenarios never raise anything but `SpecError`.
"""
from __future__ import annotations

import ipaddress
import random
import time

import pytest

from netlab.errors import SpecError
from netlab.model.build import build
from netlab.spec.parse import load_file, load_text
from netlab.spec.types import ContainerPort

from .scenarios import (DEFAULT_SCENARIO, OMIT, cluster, container, deployment, load, namespace, pod, service,
                        text)

CP_TAINT = "node-role.kubernetes.io/control-plane"
CL1 = "Cluster (document 1)"  # how errors name the Cluster document


# ------------------------------------------------------------------ valid scenarios

def test_default_scenario_parses():
    s = load_file(DEFAULT_SCENARIO)
    assert s.name == "demo"
    assert s.source == str(DEFAULT_SCENARIO)
    assert [(n.name, n.role, n.schedulable) for n in s.nodes] == [
        ("demo-control-plane", "control-plane", False), ("demo-worker", "worker", True)]
    net = s.networking
    assert net.pod_subnet == ipaddress.ip_network("10.244.0.0/16")
    assert net.service_subnet == ipaddress.ip_network("10.96.0.0/16")
    assert net.node_subnet == ipaddress.ip_network("172.18.0.0/16")
    assert (net.backend, net.proxy_mode) == ("vxlan", "iptables")
    assert s.ignored == []
    assert [(e.source, e.target, e.expect, e.backends) for e in s.expectations] == [
        ("pod/client", "pod/web", "reachable", None),
        ("pod/client", "svc/web:80", "reachable", "all"),
        ("external", "nodeport/web", "reachable", None)]

    (web,) = s.deployments
    assert (web.namespace, web.name, web.replicas, web.selector) == ("default", "web", 3, {"app": "web"})
    assert web.template.tolerate_control_plane
    (c,) = web.template.containers
    # agnhost netexec became the built-in server: no command left, the declared ports keep their names
    assert (c.command, c.args) == ([], [])
    assert c.ports == [ContainerPort(8080, "TCP", "http"), ContainerPort(8081, "UDP", "udp")]

    (svc,) = s.services
    assert (svc.type, svc.selector) == ("NodePort", {"app": "web"})
    assert [(p.name, p.port, p.protocol, p.target_port, p.node_port) for p in svc.ports] == [
        ("http", 80, "TCP", "http", 30080), ("udp", 81, "UDP", "udp", None)]

    (client,) = s.pods
    assert (client.namespace, client.name, client.template.node_name) == ("default", "client", "demo-worker")
    assert not client.template.tolerate_control_plane


def test_default_scenario_builds():
    c = build(load_file(DEFAULT_SCENARIO))
    assert len(c.pods) == 4
    assert {p.node for p in c.pods} == {"demo-control-plane", "demo-worker"}


def test_defaults_of_an_empty_cluster_document():
    s = load_text("kind: Cluster\n")
    net = s.networking
    assert s.name == "netlab"
    assert str(net.pod_subnet) == "10.244.0.0/16"
    assert str(net.service_subnet) == "10.96.0.0/16"
    assert str(net.node_subnet) == "172.18.0.0/16"
    assert net.node_cidr_mask == 24
    assert (net.backend, net.proxy_mode, net.iptables_flavour, net.ipvs_scheduler) == ("vxlan", "iptables", "auto", "rr")
    assert net.dns_domain == "cluster.local"
    assert net.nodeport_range == (30000, 32767)
    assert net.mtu == 1500
    assert [(n.name, n.role) for n in s.nodes] == [("netlab-control-plane", "control-plane"),
                                                   ("netlab-worker", "worker")]
    assert (s.pods, s.deployments, s.services, s.namespaces, s.expectations, s.ignored) == ([], [], [], [], [], [])


@pytest.mark.parametrize("scenario_text", ["", "---\n", "# just a comment\n", "---\n---\n",
                                           "apiVersion: v1\nkind: List\nitems: []\n"])
def test_a_file_without_objects_is_refused(scenario_text):
    """kubectl says "no objects passed to apply"; netlab used to build a bare two-node lab."""
    with pytest.raises(SpecError) as e:
        load_text(scenario_text, "empty.yaml")
    assert str(e.value) == ("empty.yaml: has no objects (kubectl would say: no objects passed to apply); write a "
                            "Cluster document or Kubernetes manifests in it, or run `netlab up` with no file to "
                            "build the built-in default lab")
    assert e.value.exit_code == 2


def test_manifests_without_a_cluster_document():
    s = load(pod("client"))
    assert [p.name for p in s.pods] == ["client"]
    assert [n.name for n in s.nodes] == ["netlab-control-plane", "netlab-worker"]


KIND_CONFIG = """\
# a kind cluster config, pasted as it is
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
name: kindy
nodes:
- role: control-plane
  image: kindest/node:v1.31.0
  kubeadmConfigPatches:
  - |
    kind: InitConfiguration
    nodeRegistration:
      kubeletExtraArgs:
        node-labels: "ingress-ready=true"
  extraPortMappings:
  - containerPort: 30080
    hostPort: 30080
    protocol: TCP
- role: worker
  labels:
    disk: ssd
- role: worker
networking:
  podSubnet: "10.245.0.0/16"
  serviceSubnet: "10.97.0.0/16"
  disableDefaultCNI: true
  kubeProxyMode: "iptables"
  apiServerAddress: "127.0.0.1"
  apiServerPort: 6443
"""


def test_kind_config_pasted_as_is():
    s = load_text(KIND_CONFIG)
    assert s.name == "kindy"
    assert [(n.name, n.role, n.schedulable) for n in s.nodes] == [
        ("kindy-control-plane", "control-plane", False),
        ("kindy-worker", "worker", True),
        ("kindy-worker2", "worker", True)]
    assert str(s.networking.pod_subnet) == "10.245.0.0/16"
    assert str(s.networking.service_subnet) == "10.97.0.0/16"
    # what kind does with the rest (node images, port mappings, kubeadm patches, its API server, its CNI)
    # has no meaning for netlab: each is reported once as ignored
    assert s.ignored == [f"{CL1}: networking.disableDefaultCNI", f"{CL1}: networking.apiServerAddress",
                         f"{CL1}: networking.apiServerPort", f"{CL1}: nodes[*].image",
                         f"{CL1}: nodes[*].kubeadmConfigPatches", f"{CL1}: nodes[*].extraPortMappings"]
    cp, w1, w2 = s.nodes
    assert cp.labels[CP_TAINT] == ""
    assert w1.labels["disk"] == "ssd"
    assert w1.labels["kubernetes.io/hostname"] == "kindy-worker"
    assert w2.labels["kubernetes.io/os"] == "linux"
    assert CP_TAINT not in w1.labels


def test_kind_config_fields_netlab_does_not_emulate_are_reported():
    s = load_text(KIND_CONFIG + "featureGates:\n  SomeGate: true\nruntimeConfig:\n  api/all: \"true\"\n")
    assert s.ignored[-2:] == [f"{CL1}: featureGates", f"{CL1}: runtimeConfig"]


def test_a_kind_field_on_every_node_is_reported_once():
    s = load_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n"
                  "- {role: control-plane, image: 'kindest/node:v1.31.0', extraMounts: [{hostPath: /a, containerPath: /a}]}\n"
                  "- {role: worker, image: 'kindest/node:v1.31.0'}\n- {role: worker, image: 'kindest/node:v1.31.0'}\n")
    assert s.ignored == [f"{CL1}: nodes[*].image", f"{CL1}: nodes[*].extraMounts"]


def test_kind_config_without_nodes_is_one_schedulable_control_plane():
    """kind's default: one node, the control plane, without its NoSchedule taint (no workers)."""
    s = load_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: solo\n")
    assert [(n.name, n.role, n.schedulable) for n in s.nodes] == [("solo-control-plane", "control-plane", True)]
    c = build(load_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: solo\n---\n" + text(pod("p"))))
    assert [p.node for p in c.pods] == ["solo-control-plane"]
    # netlab's own Cluster document keeps its default of two nodes
    assert len(load_text("kind: Cluster\napiVersion: netlab.dev/v1alpha1\n").nodes) == 2


def test_kind_like_node_names_count_per_role():
    s = load(cluster("lab", ["control-plane", "control-plane", "worker", "worker", "worker"]))
    assert [n.name for n in s.nodes] == ["lab-control-plane", "lab-control-plane2",
                                         "lab-worker", "lab-worker2", "lab-worker3"]
    assert [n.schedulable for n in s.nodes] == [False, False, True, True, True]


def test_node_role_defaults_to_control_plane_and_explicit_names_are_kept():
    s = load(cluster("lab", [{}, {"role": "worker", "name": "big-box", "labels": {"zone": "a"}}]))
    assert [(n.name, n.role) for n in s.nodes] == [("lab-control-plane", "control-plane"), ("big-box", "worker")]
    assert s.nodes[1].labels["zone"] == "a"


def test_default_node_names_count_only_unnamed_nodes():
    s = load(cluster("lab", [{"role": "worker", "name": "gpu"}, "worker", "worker"]))
    assert [n.name for n in s.nodes] == ["gpu", "lab-worker", "lab-worker2"]


def test_a_control_plane_alone_is_schedulable():
    (cp,) = load(cluster("solo", ["control-plane"])).nodes
    assert cp.schedulable


def test_list_document():
    lst = {"apiVersion": "v1", "kind": "List",
           "items": [deployment("web", 2), service("web", [{"port": 80, "targetPort": "http"}]), pod("client")]}
    s = load(cluster(), lst)
    assert [d.name for d in s.deployments] == ["web"]
    assert [x.name for x in s.services] == ["web"]
    assert [p.name for p in s.pods] == ["client"]


def test_list_may_carry_the_cluster_document():
    lst = {"apiVersion": "v1", "kind": "List", "items": [cluster("inlist"), pod()]}
    s = load(lst)
    assert s.name == "inlist"
    assert [p.name for p in s.pods] == ["p"]


def test_objects_in_a_declared_namespace():
    s = load(cluster(), namespace("team"), pod("p", namespace="team"), service("web", namespace="team"))
    assert s.namespaces == ["team"]
    assert (s.pods[0].namespace, s.services[0].namespace) == ("team", "team")


def test_same_name_in_two_namespaces_is_fine():
    s = load(cluster(), namespace("a"), pod("p"), pod("p", namespace="a"))
    assert sorted(p.namespace for p in s.pods) == ["a", "default"]


@pytest.mark.parametrize("ns", ["default", "kube-system", "kube-public", "kube-node-lease"])
def test_builtin_namespaces_need_no_document(ns):
    assert load(pod(namespace=ns)).pods[0].namespace == ns


# ---- agnhost netexec -> the built-in server

@pytest.mark.parametrize("c, ports", [
    (container(args=["netexec", "--http-port=9000", "--udp-port=9001"]),
     [ContainerPort(9000, "TCP"), ContainerPort(9001, "UDP")]),
    (container(args=["netexec"]), [ContainerPort(8080, "TCP"), ContainerPort(8081, "UDP")]),
    (container(command=["/agnhost", "netexec", "--http-port=8000"]),
     [ContainerPort(8000, "TCP"), ContainerPort(8081, "UDP")]),
    (container(command=["/agnhost"], args=["netexec", "--udp-port=5353"]),
     [ContainerPort(8080, "TCP"), ContainerPort(5353, "UDP")]),
    # a declared port is not declared twice, and keeps its name
    (container(ports=[(8080, "http")], args=["netexec"]),
     [ContainerPort(8080, "TCP", "http"), ContainerPort(8081, "UDP")]),
], ids=["args", "default-ports", "command", "command-and-args", "declared"])
def test_agnhost_netexec_becomes_builtin_ports(c, ports):
    (got,) = load(pod(containers=[c])).pods[0].template.containers
    assert got.ports == ports
    assert (got.command, got.args) == ([], [])


@pytest.mark.parametrize("c", [
    container(args=["serve-hostname"]),
    container(command=["/agnhost", "pause"]),
    container(command=["sleep", "3600"]),
])
def test_other_commands_are_kept(c):
    (got,) = load(pod(containers=[c])).pods[0].template.containers
    assert got.command + got.args == c.get("command", []) + c.get("args", [])


# ---- ignored and skipped fields

def test_unknown_pod_field_is_refused():
    with pytest.raises(SpecError) as e:
        load(cluster(), pod("p", foo="bar"))
    assert str(e.value) == ("Pod default/p: unknown field spec.foo; remove it: PodSpec has no such field "
                            "(kubectl's strict field validation refuses it too)")


def test_unknown_fields_at_every_level_are_reported():
    dep = deployment("web", 1)
    dep["spec"]["template"]["spec"]["containers"][0]["frobnicate"] = 1
    dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["weird"] = 2
    dep["metadata"]["bogus"] = 3
    svc = service("web", [{"port": 80, "mystery": 1}], whatever=True)
    with pytest.raises(SpecError) as e:
        load(cluster(), dep, svc)
    assert e.value.exit_code == 2
    assert sorted(line.split(";")[0] for line in str(e.value).splitlines()) == sorted([
        "Deployment default/web: unknown field metadata.bogus",
        "Deployment default/web: unknown field spec.template.spec.containers[0].frobnicate",
        "Deployment default/web: unknown field spec.template.spec.containers[0].ports[0].weird",
        "Service default/web: unknown field spec.whatever",
        "Service default/web: unknown field spec.ports[0].mystery",
    ])


def test_fields_without_dataplane_meaning_are_accepted_silently():
    c = container("app", [(8080, "http")], imagePullPolicy="Always", terminationMessagePolicy="File")
    p = pod("p", containers=[c], restartPolicy="Always", serviceAccountName="x")
    p["metadata"]["annotations"] = {"a": "b"}
    p["metadata"]["uid"] = "1234"
    p["status"] = {"phase": "Running"}
    # at the API server's defaults; away from them these are reported (test_spec_strict.py)
    dep = deployment("web", 1, terminationGracePeriodSeconds=30)
    dep["spec"].update(strategy={"type": "RollingUpdate"}, revisionHistoryLimit=10)
    s = load(cluster(), p, dep)
    assert s.ignored == []


def test_fields_that_change_behaviour_on_a_real_cluster_are_reported():
    c = container("app", [(8080, "http")], resources={"limits": {"cpu": "1"}},
                  readinessProbe={"httpGet": {"port": 8080}},
                  env=[{"name": "A", "value": "b"},
                       {"name": "S", "valueFrom": {"secretKeyRef": {"name": "x", "key": "k"}}}])
    p = pod("p", containers=[c], affinity={}, volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "c"}}])
    s = load(cluster(), p)
    # env valueFrom is resolved by the kubelet (workload/podenv.py): not reported; a claim has no storage
    assert sorted(s.ignored) == sorted([
        "Pod default/p: spec.containers[0].resources",
        "Pod default/p: spec.affinity",
        "Pod default/p: spec.volumes[0].persistentVolumeClaim (no storage in netlab: the volume is an empty "
        "directory)",
    ])
    assert s.pods[0].template.containers[0].env == {"A": "b", "S": ""}
    assert s.pods[0].template.containers[0].kubelet_env


def test_null_service_selector_is_not_reported_as_ignored():
    s = load(cluster(), service("ext", selector=None))
    assert s.services[0].selector is None
    assert s.ignored == []


# ---- values that are accepted in several spellings

def test_service_defaults():
    p = pod("p", labels={"app": "web"}, containers=[container(ports=[{"containerPort": 8080}])])
    s = load(cluster(), p, service("web", [{"port": 80, "targetPort": 8080}]),
             service("plain", [{"port": 443}]), service("headless", [], clusterIP="None"))
    assert s.pods[0].template.containers[0].ports == [ContainerPort(8080, "TCP")]
    web, plain, headless = s.services
    assert (web.type, web.ports[0].target_port) == ("ClusterIP", 8080)
    assert (plain.ports[0].target_port, plain.ports[0].protocol) == (443, "TCP")
    assert headless.cluster_ip == "None"


@pytest.mark.parametrize("tolerations, tolerates", [
    ([{"key": CP_TAINT, "effect": "NoSchedule"}], True),
    ([{"key": "node-role.kubernetes.io/master", "operator": "Exists"}], True),
    ([{"operator": "Exists"}], True),               # no key tolerates every taint
    ([{"key": "something-else"}], False),
    ([], False),
])
def test_tolerations(tolerations, tolerates):
    assert load(pod(tolerations=tolerations)).pods[0].template.tolerate_control_plane is tolerates


# ------------------------------------------------------------------ bad scenarios

BILLION_LAUGHS = "a: &a ['lol','lol','lol','lol','lol','lol','lol','lol','lol']\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))


def _with_deploy(**fields):
    d = deployment("web", 1)
    d["spec"].update(fields)
    return d


def _svc_ports(*ports, **spec):
    return service("web", list(ports), **spec)


def _long(n):
    return "a" * n


# (id, scenario text, where the error is (start of the message), substring naming the field or problem)
BAD = [
    # -- networks
    ("overlap-pod-service", text(cluster(podSubnet="10.96.0.0/12")),
     CL1, "networking.serviceSubnet 10.96.0.0/16 overlaps networking.podSubnet 10.96.0.0/12"),
    ("overlap-pod-node", text(cluster(podSubnet="172.16.0.0/12")),
     CL1, "networking.nodeSubnet 172.18.0.0/16 overlaps networking.podSubnet"),
    ("overlap-service-node", text(cluster(serviceSubnet="172.18.0.0/24")),
     CL1, "networking.nodeSubnet 172.18.0.0/16 overlaps networking.serviceSubnet"),
    ("loopback", text(cluster(nodeSubnet="127.0.0.0/16")), CL1, "networking.nodeSubnet 127.0.0.0/16"),
    ("podsubnet-too-small", text(cluster(podSubnet="10.244.0.0/24")),
     CL1, "networking.podSubnet 10.244.0.0/24 holds 1 /24 node ranges but the cluster has 2 nodes"),
    ("podsubnet-too-small-3", text(cluster(nodes=["control-plane", "worker", "worker"], podSubnet="10.244.0.0/23")),
     CL1, "networking.podSubnet 10.244.0.0/23 holds 2 /24"),
    ("podcidr-full", text(cluster(nodes=["control-plane"], nodeCIDRMaskSize=28), deployment("web", 20)),
     "node t-control-plane", "20 pods are scheduled on it, but a node's podCIDR holds 13 pod addresses (podCIDR 10.244.0.0/28)"),
    ("ipv6-podsubnet", text(cluster(podSubnet="fd00:10:244::/56")), CL1, "networking.podSubnet fd00:10:244::/56 is IPv6"),
    ("ipv6-family", text(cluster(ipFamily="dual")), CL1, "networking.ipFamily 'dual'"),
    ("host-bits", text(cluster(podSubnet="10.244.0.1/16")), CL1, "networking.podSubnet '10.244.0.1/16' has host bits set"),
    ("not-a-cidr", text(cluster(serviceSubnet="10.96.0.0/40")), CL1, "networking.serviceSubnet '10.96.0.0/40' is not a CIDR"),
    ("prefix-too-long", text(cluster(podSubnet="10.244.0.0/30")), CL1, "networking.podSubnet 10.244.0.0/30 has prefix /30"),
    ("mask-shorter-than-subnet", text(cluster(nodeCIDRMaskSize=8)), CL1, "networking.nodeCIDRMaskSize 8 is out of range 16-29"),
    ("mask-not-a-number", text(cluster(nodeCIDRMaskSize="big")), CL1, "networking.nodeCIDRMaskSize must be an integer"),
    ("nodeport-range", text(cluster(serviceNodePortRange="32767-30000")), CL1, "networking.serviceNodePortRange '32767-30000'"),
    ("backend", text(cluster(backend="calico")), CL1, "networking.backend 'calico' is not supported"),
    ("proxy-mode", text(cluster(kubeProxyMode="none")), CL1, "networking.kubeProxyMode 'none' is not supported"),
    ("mtu", text(cluster(mtu=100)), CL1, "networking.mtu 100 is out of range"),
    ("dns-domain", text(cluster(dnsDomain="Cluster_Local")), CL1, "networking.dnsDomain 'Cluster_Local'"),
    ("networking-list", text(cluster(nodes=None) | {"networking": ["a"]}), CL1, "networking must be a mapping"),

    # -- the Cluster document and its nodes
    ("second-cluster", text(cluster("one"), cluster("two")), "Cluster (document 2)", "is a second Cluster document"),
    ("cluster-api-version", text(cluster() | {"apiVersion": "kind.x-k8s.io/v1"}), CL1,
     "apiVersion 'kind.x-k8s.io/v1' is not a Cluster API version"),
    ("lab-name-upper", text(cluster("Lab")), CL1, "name 'Lab' is not a valid lab name"),
    ("lab-name-long", text(cluster(_long(25))), CL1, "is not a valid lab name"),
    ("empty-nodes", text(cluster(nodes=[])), CL1, "nodes is empty"),
    ("nodes-mapping", text(cluster(nodes=None) | {"nodes": {"a": 1}}), CL1, "nodes must be a list"),
    ("node-is-string", text(cluster(nodes=None) | {"nodes": ["worker"]}), CL1, "nodes[0] must be a mapping"),
    ("node-role", text(cluster(nodes=[{"role": "master"}])), CL1, "nodes[0].role 'master' is not supported"),
    ("duplicate-node", text(cluster(nodes=[{"name": "a"}, {"name": "a", "role": "worker"}])),
     CL1, "nodes[1].name 'a' is used by two nodes"),
    ("duplicate-node-by-default-name", text(cluster(nodes=[{"role": "worker"}, {"name": "t-worker"}])),
     CL1, "nodes[1].name 't-worker' is used by two nodes"),
    ("node-name-upper", text(cluster(nodes=[{"name": "Node1"}])), CL1, "nodes[0].name 'Node1' is not a valid DNS-1123 label"),
    ("node-name-shell", text(cluster(nodes=[{"name": "$(reboot)"}])), CL1, "nodes[0].name '$(reboot)'"),
    ("node-label-bool", text(cluster(nodes=[{"labels": {"gpu": True}}])), CL1, "nodes[0].labels.gpu must be a string"),
    ("too-many-nodes", text(cluster(nodes=["worker"] * 1023)), CL1,
     "nodes lists 1023 nodes, but this machine holds at most 1022 nodes (underlay bridge ports: the kernel's BR_MAX_PORTS"),
    ("node-subnet-too-small", text(cluster(nodes=["worker"] * 5, nodeSubnet="172.18.0.0/29")),
     CL1, "networking.nodeSubnet 172.18.0.0/29 is too small"),
    ("expectation-missing-to", text(cluster() | {"expectations": [{"from": "pod/a"}]}), CL1, "expectations[0].to is required"),
    ("expectation-outcome", text(cluster() | {"expectations": [{"from": "a", "to": "b", "expect": "works"}]}),
     CL1, "expectations[0].expect 'works'"),
    ("expectation-backends", text(cluster() | {"expectations": [{"from": "a", "to": "b", "backends": "some"}]}),
     CL1, "expectations[0].backends 'some'"),

    # -- YAML itself
    ("not-yaml", "a: [1,", "<scenario>", "is not valid YAML at line"),
    ("tab-indent", "kind: Cluster\nnodes:\n\t- role: worker\n", "<scenario>", "is not valid YAML"),
    ("control-char", "kind: Cluster\nname: a\x01b\n", "<scenario>", "is not valid YAML"),
    ("unhashable-key", "? [a]\n: b\n", "<scenario>", "found unhashable key"),
    ("alias-bomb", BILLION_LAUGHS, "<scenario>", "expands to more than"),
    ("recursive-alias", "a: &a [*a]\n", "<scenario>", "expands to more than"),
    ("deep-nesting", "[" * 100_000, "<scenario>", "nests collections more than 100 levels deep"),
    ("deep-nesting-closed", "a: " + "{a: " * 5000 + "1" + "}" * 5000, "<scenario>", "nests collections"),
    ("document-is-list", text(cluster(), "- a\n- b\n"), "document 2", "must be a mapping with apiVersion and kind, not a list"),
    ("document-is-scalar", "hello\n", "document 1", "not the string 'hello'"),
    ("list-items-not-list", text({"apiVersion": "v1", "kind": "List", "items": "x"}), "List (document 1)", "items must be a list"),
    ("list-item-scalar", text({"apiVersion": "v1", "kind": "List", "items": [5]}), "List (document 1)", "items must be objects"),
    ("list-in-list", text({"apiVersion": "v1", "kind": "List", "items": [{"kind": "List", "items": []}]}),
     "List (document 1)", "List inside its items"),

    # -- kinds and apiVersions
    ("unknown-kind", text(cluster(), {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"}}),
     "HorizontalPodAutoscaler x", "kind 'HorizontalPodAutoscaler' is not supported"),
    ("kind-not-string", text(cluster(), {"apiVersion": "v1", "kind": 5}), "document 2", "kind 5 is not supported"),
    ("no-kind", text(cluster(), {"apiVersion": "v1", "metadata": {"name": "x"}}), "document 2", "has no kind"),
    ("deployment-v1", text(cluster(), deployment() | {"apiVersion": "v1"}),
     "Deployment default/web", "apiVersion 'v1' does not match kind Deployment"),
    ("pod-apps-v1", text(cluster(), pod() | {"apiVersion": "apps/v1"}), "Pod default/p", "apiVersion 'apps/v1' does not match kind Pod"),
    ("pod-no-apiversion", text(cluster(), {k: v for k, v in pod().items() if k != "apiVersion"}),
     "Pod default/p", "apiVersion is missing"),

    # -- names
    ("duplicate-pod", text(cluster(), pod("p"), pod("p")), "Pod default/p", "is defined twice"),
    ("duplicate-deployment-in-list", text(cluster(), {"apiVersion": "v1", "kind": "List",
                                                      "items": [deployment("web"), deployment("web")]}),
     "Deployment default/web", "is defined twice"),
    ("duplicate-service", text(cluster(), service("s"), service("s")), "Service default/s", "is defined twice"),
    ("duplicate-container", text(cluster(), pod(containers=[container("c"), container("c")])),
     "Pod default/p", "spec.containers[1].name 'c' is used by two containers"),
    ("name-uppercase", text(cluster(), pod("Web")), "Pod default/Web", "metadata.name 'Web' is not a valid DNS-1123"),
    ("name-underscore", text(cluster(), pod("a_b")), "Pod default/a_b", "metadata.name 'a_b'"),
    ("name-shell", text(cluster(), pod("$(touch pwned)")), "Pod default/$(touch pwned)", "metadata.name '$(touch pwned)'"),
    ("name-64", text(cluster(), pod(_long(64))), "Pod default/aaaa", "metadata.name 'aaaa"),
    ("name-254", text(cluster(), pod(_long(254))), "Pod default/aaaa", "is not a valid DNS-1123 subdomain"),
    ("name-unicode", text(cluster(), pod("café")), "Pod default/caf\\xe9", "metadata.name 'caf\\xe9'"),
    ("name-trailing-dash", text(cluster(), pod("web-")), "Pod default/web-", "metadata.name 'web-'"),
    ("name-missing", text(cluster(), {"apiVersion": "v1", "kind": "Pod", "spec": {}}), "Pod (document 2)", "metadata.name is required"),
    ("name-bool", text(cluster(), pod(True)), "Pod (document 2)", "metadata.name must be a string, not a boolean"),
    ("name-date", text(cluster(), "apiVersion: v1\nkind: Pod\nmetadata: {name: 2024-01-01}\n"),
     "Pod (document 2)", "metadata.name must be a string, not a date"),
    ("service-name-dot", text(cluster(), service("a.b")), "Service default/a.b", "metadata.name 'a.b' is not a valid DNS-1123 label"),
    ("service-name-64", text(cluster(), service(_long(64))), "Service default/aaaa", "metadata.name"),
    ("deployment-name-47", text(cluster(), deployment(_long(47))), "Deployment default/aaaa",
     "metadata.name '" + _long(40) + "...' is longer than 46 characters"),
    ("namespace-name", text(cluster(), namespace("Team")), "Namespace Team", "metadata.name 'Team'"),
    ("namespace-field", text(cluster(), pod(namespace="a_b")), "Pod a_b/p", "metadata.namespace 'a_b'"),
    ("container-name", text(cluster(), pod(containers=[container("App")])), "Pod default/p", "spec.containers[0].name 'App'"),
    ("unknown-namespace", text(cluster(), pod("p", namespace="foo")), "Pod foo/p", "metadata.namespace 'foo' does not exist"),
    ("unknown-namespace-service", text(cluster(), service("s", namespace="foo")), "Service foo/s", "metadata.namespace 'foo'"),
    ("generated-name-taken", None, "Deployment default/web", "is taken by another Pod"),  # filled in below

    # -- scheduling
    ("nodename-missing", text(cluster(), pod(nodeName="nope")), "Pod default/p", "spec.nodeName 'nope' is not a node"),
    ("nodename-missing-deploy", text(cluster(), deployment(nodeName="nope")),
     "Deployment default/web", "spec.template.spec.nodeName 'nope'"),
    ("nodeselector-none", text(cluster(), pod(nodeSelector={"disk": "ssd"})), "Pod default/p", "spec.nodeSelector disk=ssd matches no node"),
    ("nodeselector-deploy", text(cluster(), deployment(nodeSelector={"disk": "ssd"})),
     "Deployment default/web", "spec.template.spec.nodeSelector disk=ssd matches no node"),
    ("nodeselector-tainted", text(cluster(), pod(nodeSelector={"kubernetes.io/hostname": "t-control-plane"})),
     "Pod default/p", "only matches the tainted control-plane node t-control-plane"),
    ("hostnetwork-hostport-differs", text(cluster(), pod(hostNetwork=True, containers=[container(ports=[
        {"containerPort": 8080, "hostPort": 9090}])])), "Pod default/p",
     "spec.containers[0].ports[0].hostPort Invalid value: 9090: must match `containerPort` (8080) when `hostNetwork` is true"),
    ("hostport-70000", text(cluster(), pod(containers=[container(ports=[{"containerPort": 80, "hostPort": 70000}])])),
     "Pod default/p", "spec.containers[0].ports[0].hostPort 70000 is out of range 0-65535"),
    ("hostport-twice", text(cluster(), pod(containers=[container(ports=[{"containerPort": 80, "hostPort": 8080}]),
                                                      container("d", ports=[{"containerPort": 81, "hostPort": 8080}])])),
     "Pod default/p", "spec.containers[1].ports[0].hostPort Duplicate value: 8080/TCP is also the hostPort of container c"),
    ("hostip-bad", text(cluster(), pod(containers=[container(ports=[{"containerPort": 80, "hostPort": 8080,
                                                                    "hostIP": "fe80::1"}])])),
     "Pod default/p", "spec.containers[0].ports[0].hostIP fe80::1 is not an IPv4 address"),
    ("hostnetwork-string", text(cluster(), pod(hostNetwork="yes please")), "Pod default/p", "spec.hostNetwork must be true or false"),

    # -- containers and their ports
    ("no-containers", text(cluster(), pod(containers=[])), "Pod default/p", "spec.containers must list at least one container"),
    ("containers-string", text(cluster(), pod(containers="abc")), "Pod default/p", "spec.containers must be a list"),
    ("container-port-0", text(cluster(), pod(containers=[container(ports=[0])])),
     "Pod default/p", "spec.containers[0].ports[0].containerPort 0 is out of range 1-65535"),
    ("container-port-70000", text(cluster(), pod(containers=[container(ports=[70000])])),
     "Pod default/p", "spec.containers[0].ports[0].containerPort 70000 is out of range"),
    ("container-port-abc", text(cluster(), pod(containers=[container(ports=[{"containerPort": "abc"}])])),
     "Pod default/p", "spec.containers[0].ports[0].containerPort must be an integer, not the string 'abc'"),
    ("container-port-superscript", text(cluster(), pod(containers=[container(ports=[{"containerPort": "²"}])])),
     "Pod default/p", "containerPort must be an integer"),
    ("container-port-dashes", text(cluster(), pod(containers=[container(ports=[{"containerPort": "--5"}])])),
     "Pod default/p", "containerPort must be an integer"),
    ("container-port-float", text(cluster(), pod(containers=[container(ports=[{"containerPort": 80.5}])])),
     "Pod default/p", "containerPort must be an integer, not the number 80.5"),
    ("container-port-huge", text(cluster(), pod(containers=[container(ports=[10 ** 30])])),
     "Pod default/p", "containerPort 1000000000000000000000000000000 is out of range"),
    ("container-port-missing", text(cluster(), pod(containers=[container(ports=[{"name": "http"}])])),
     "Pod default/p", "spec.containers[0].ports[0].containerPort is required"),
    ("container-protocol-http", text(cluster(), pod(containers=[container(ports=[(80, "web", "HTTP")])])),
     "Pod default/p", "spec.containers[0].ports[0].protocol 'HTTP' is not supported"),
    ("container-port-name-digits", text(cluster(), pod(containers=[container(ports=[(80, "8080")])])),
     "Pod default/p", "spec.containers[0].ports[0].name '8080' is not a valid port name"),
    ("container-port-name-long", text(cluster(), pod(containers=[container(ports=[(80, "a-very-long-port-name")])])),
     "Pod default/p", "is not a valid port name"),
    ("container-port-name-twice", text(cluster(), pod(containers=[container("a", [(80, "web")]), container("b", [(81, "web")])])),
     "Pod default/p", "spec.containers[1].ports[0].name 'web' is used by two ports"),
    ("container-port-twice", text(cluster(), pod(containers=[container("a", [80]), container("b", [80])])),
     "Pod default/p", "spec.containers[1].ports[0].containerPort 80/TCP is also declared by container a"),
    ("command-not-list", text(cluster(), pod(containers=[container(command="sleep 1")])),
     "Pod default/p", "spec.containers[0].command must be a list"),

    # -- labels and selectors
    ("label-value-spaces", text(cluster(), pod(labels={"app": "a b"})), "Pod default/p", "metadata.labels.app 'a b' is not a valid label value"),
    ("label-value-long", text(cluster(), pod(labels={"app": _long(64)})), "Pod default/p", "metadata.labels.app"),
    ("label-key-bad", text(cluster(), pod(labels={"-bad": "x"})), "Pod default/p", "metadata.labels key '-bad' is not a valid label key"),
    ("label-key-null", text(cluster(), "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {null: x}}\n"),
     "Pod default/p", "metadata.labels key null is not a string"),
    ("label-value-bool", text(cluster(), pod(labels={"enabled": True})), "Pod default/p", "metadata.labels.enabled must be a string, not a boolean"),
    ("label-value-date", text(cluster(), "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {day: 2024-01-01}}\n"),
     "Pod default/p", "metadata.labels.day must be a string, not a date"),
    ("labels-list", text(cluster(), pod(labels=["a"])), "Pod default/p", "metadata.labels must be a mapping of strings"),
    ("selector-mismatch", text(cluster(), deployment("web", selector={"app": "other"})),
     "Deployment default/web", "spec.selector.matchLabels app=other does not match spec.template.metadata.labels"),
    ("selector-missing", text(cluster(), deployment("web", selector={})), "Deployment default/web", "spec.selector.matchLabels is required"),
    ("selector-expressions", text(cluster(), _with_deploy(selector={"matchLabels": {"app": "web"},
                                                                    "matchExpressions": [{"key": "a"}]})),
     "Deployment default/web", "spec.selector.matchExpressions is not supported"),
    ("replicas-negative", text(cluster(), deployment(replicas=-1)), "Deployment default/web", "spec.replicas -1 is out of range 0-2147483647"),
    ("replicas-string", text(cluster(), deployment(replicas="many")), "Deployment default/web", "spec.replicas must be an integer"),

    # -- services
    ("service-port-0", text(cluster(), _svc_ports({"port": 0})), "Service default/web", "spec.ports[0].port 0 is out of range 1-65535"),
    ("service-port-70000", text(cluster(), _svc_ports({"port": 70000})), "Service default/web", "spec.ports[0].port 70000 is out of range"),
    ("service-port-missing", text(cluster(), _svc_ports({"name": "x"})), "Service default/web", "spec.ports[0].port is required"),
    ("service-no-ports", text(cluster(), _svc_ports()), "Service default/web", "spec.ports must list at least one port"),
    ("service-protocol-http", text(cluster(), _svc_ports({"port": 80, "protocol": "HTTP"})),
     "Service default/web", "spec.ports[0].protocol 'HTTP' is not supported"),
    ("service-protocol-lower", text(cluster(), _svc_ports({"port": 80, "protocol": "tcp"})),
     "Service default/web", "spec.ports[0].protocol 'tcp' is not supported"),
    ("multi-port-no-names", text(cluster(), _svc_ports({"port": 80}, {"name": "b", "port": 81})),
     "Service default/web", "spec.ports[0].name is required when a Service has more than one port"),
    ("port-name-twice", text(cluster(), _svc_ports({"name": "a", "port": 80}, {"name": "a", "port": 81})),
     "Service default/web", "spec.ports[1].name 'a' is used by two ports"),
    ("port-twice", text(cluster(), _svc_ports({"name": "a", "port": 80}, {"name": "b", "port": 80})),
     "Service default/web", "spec.ports[1].port 80/TCP is listed twice"),
    ("target-port-0", text(cluster(), _svc_ports({"port": 80, "targetPort": 0})), "Service default/web", "spec.ports[0].targetPort 0 is out of range"),
    ("target-port-bool", text(cluster(), _svc_ports({"port": 80, "targetPort": True})),
     "Service default/web", "spec.ports[0].targetPort must be a number or a name, not a boolean"),
    ("target-port-bad-name", text(cluster(), _svc_ports({"port": 80, "targetPort": "Web_Port"})),
     "Service default/web", "spec.ports[0].targetPort 'Web_Port' is not a port number or port name"),
    ("target-port-superscript", text(cluster(), _svc_ports({"port": 80, "targetPort": "²"})),
     "Service default/web", "spec.ports[0].targetPort"),
    ("service-type", text(cluster(), _svc_ports({"port": 80}, type="Ingress")), "Service default/web", "spec.type 'Ingress' is not supported"),
    ("nodeport-out-of-range", text(cluster(), _svc_ports({"port": 80, "nodePort": 8080}, type="NodePort")),
     "Service default/web", "spec.ports[0].nodePort 8080 is outside the node port range 30000-32767"),
    ("nodeport-above-range", text(cluster(), _svc_ports({"port": 80, "nodePort": 32768}, type="NodePort")),
     "Service default/web", "spec.ports[0].nodePort 32768 is outside"),
    ("nodeport-custom-range", text(cluster(serviceNodePortRange="31000-31010"), _svc_ports({"port": 80, "nodePort": 30080}, type="NodePort")),
     "Service default/web", "spec.ports[0].nodePort 30080 is outside the node port range 31000-31010"),
    ("nodeport-on-clusterip", text(cluster(), _svc_ports({"port": 80, "nodePort": 30080})),
     "Service default/web", "spec.ports[0].nodePort is set but the service type is ClusterIP"),
    ("nodeport-twice", text(cluster(), service("a", [{"port": 80, "nodePort": 30080}], type="NodePort"),
                            service("b", [{"port": 81, "nodePort": 30080}], type="NodePort")),
     "Service default/b", "spec.ports[0].nodePort 30080/TCP is also used by Service default/a"),
    ("nodeport-twice-across-namespaces", text(cluster(), namespace("o"), service("a", [{"port": 80, "nodePort": 30080}], type="NodePort"),
                                              service("a", [{"port": 80, "nodePort": 30080}], type="NodePort", namespace="o")),
     "Service o/a", "spec.ports[0].nodePort 30080/TCP is also used by Service default/a"),
    ("nodeport-twice-in-one-service", text(cluster(), _svc_ports({"name": "a", "port": 80, "nodePort": 30080},
                                                                 {"name": "b", "port": 81, "nodePort": 30080}, type="NodePort")),
     "Service default/web", "spec.ports[1].nodePort 30080/TCP is also used by another port of this Service"),
    ("nodeport-range-full", text(cluster(serviceNodePortRange="30000-30000"), service("a", type="NodePort"), service("b", type="NodePort")),
     "Service default/b", "the node port range is full"),
    ("clusterip-outside", text(cluster(), _svc_ports({"port": 80}, clusterIP="10.0.0.5")),
     "Service default/web", "spec.clusterIP 10.0.0.5 is outside the service subnet 10.96.0.0/16"),
    ("clusterip-junk", text(cluster(), _svc_ports({"port": 80}, clusterIP="ten")), "Service default/web", "spec.clusterIP 'ten' is not an IPv4 address"),
    ("clusterip-network", text(cluster(), _svc_ports({"port": 80}, clusterIP="10.96.0.0")),
     "Service default/web", "spec.clusterIP 10.96.0.0 is the subnet's network or broadcast address"),
    ("clusterip-twice", text(cluster(), service("a", clusterIP="10.96.0.5"), service("b", clusterIP="10.96.0.5")),
     "Service default/b", "spec.clusterIP 10.96.0.5 is taken by Service default/a"),
    ("clusterip-dns", text(cluster(), _svc_ports({"port": 80}, clusterIP="10.96.0.10")),
     "Service default/web", "spec.clusterIP 10.96.0.10 is reserved for cluster DNS"),
    ("clusterip-kubernetes", text(cluster(), _svc_ports({"port": 80}, clusterIP="10.96.0.1")),
     "Service default/web", "spec.clusterIP 10.96.0.1 is reserved for the kubernetes Service"),
    ("service-subnet-full", text(cluster(serviceSubnet="10.96.0.0/28"), *[service(f"s{i}") for i in range(13)]),
     "Service default/s12", "the service subnet 10.96.0.0/28 is full"),
    ("external-ip", text(cluster(), _svc_ports({"port": 80}, externalIPs=["1.2.3"])), "Service default/web", "spec.externalIPs[0] '1.2.3'"),
    ("external-name-missing", text(cluster(), _svc_ports(type="ExternalName")), "Service default/web", "spec.externalName is required"),
    ("affinity", text(cluster(), _svc_ports({"port": 80}, sessionAffinity="Cookie")), "Service default/web", "spec.sessionAffinity 'Cookie'"),
    ("affinity-timeout", text(cluster(), _svc_ports({"port": 80}, sessionAffinityConfig={"clientIP": {"timeoutSeconds": 0}})),
     "Service default/web", "spec.sessionAffinityConfig.clientIP.timeoutSeconds 0 is out of range"),
    ("traffic-policy", text(cluster(), _svc_ports({"port": 80}, externalTrafficPolicy="Nearest")),
     "Service default/web", "spec.externalTrafficPolicy 'Nearest'"),
    ("affinity-config-without-affinity", text(cluster(), _svc_ports({"port": 80}, sessionAffinityConfig={
        "clientIP": {"timeoutSeconds": 60}})), "Service default/web", "spec.sessionAffinityConfig must not be set when "
     "sessionAffinity is None"),
    ("headless-nodeport", text(cluster(), _svc_ports({"port": 80}, type="NodePort", clusterIP="None")),
     "Service default/web", "spec.clusterIP may not be set to 'None' for NodePort services"),
    ("headless-loadbalancer", text(cluster(), _svc_ports({"port": 80}, type="LoadBalancer", clusterIP="None")),
     "Service default/web", "spec.clusterIP may not be set to 'None' for LoadBalancer services"),
    ("externalname-clusterip", text(cluster(), _svc_ports(type="ExternalName", externalName="db.example.com",
                                                          clusterIP="10.96.0.50")),
     "Service default/web", "spec.clusterIP may not be set for ExternalName services"),
    # the API server refuses a policy for external traffic on a Service that has none to apply it to
    ("traffic-policy-clusterip", text(cluster(), _svc_ports({"port": 80}, externalTrafficPolicy="Local")),
     "Service default/web", "spec.externalTrafficPolicy may only be set for externally-accessible services"),
    ("traffic-policy-externalname", text(cluster(), _svc_ports(type="ExternalName", externalName="db.example.com",
                                                               externalTrafficPolicy="Cluster")),
     "Service default/web", "spec.externalTrafficPolicy may only be set for externally-accessible services"),
    ("service-spec-list", text(cluster(), {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": [1]}),
     "Service default/s", "spec must be a mapping, not a list"),
]


def _generated_name_taken() -> str:
    """A bare Pod that has the very name the Deployment's first replica gets."""
    from netlab.model.build import expand
    first = expand(load(cluster(), deployment("web", 1)))[0].name
    return text(cluster(), pod(first), deployment("web", 1))


BAD = [(i, t if t is not None else _generated_name_taken(), w, f) for i, t, w, f in BAD]


def _error(scenario_text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        build(load_text(scenario_text))
    return info.value


@pytest.mark.parametrize("scenario_text, where, field", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_scenario(scenario_text, where, field):
    e = _error(scenario_text)
    msg = str(e)
    assert e.exit_code == 2
    assert "\n" not in msg, "the message must be one line"
    assert msg.startswith(where), f"{msg!r} should start with the document {where!r}"
    assert field in msg, f"{msg!r} should mention {field!r}"
    assert e.fix, f"{msg!r} gives no fix"
    assert msg.endswith("; " + e.fix)
    assert len(msg) < 400


def test_bad_table_ids_are_unique():
    ids = [b[0] for b in BAD]
    assert len(ids) == len(set(ids))


def test_host_bits_fix_suggests_the_network():
    e = _error(text(cluster(podSubnet="10.244.0.1/16")))
    assert e.fix == "use 10.244.0.0/16"


def test_nodename_fix_lists_the_nodes():
    e = _error(text(cluster(), pod(nodeName="nope")))
    assert e.fix == "use one of: t-control-plane, t-worker"


def test_wrong_apiversion_fix_names_the_right_one():
    e = _error(text(cluster(), deployment() | {"apiVersion": "v1"}))
    assert e.fix == "use apiVersion: apps/v1"


def test_unknown_namespace_fix():
    assert _error(text(cluster(), pod(namespace="foo"))).fix == "add a Namespace document named foo"


def test_boolean_label_fix_says_quote_it():
    assert _error(text(cluster(), pod(labels={"enabled": True}))).fix == 'quote it, e.g. "true"'


def test_alias_bomb_fails_fast():
    t0 = time.process_time()  # CPU time: a guard against runaway work, not a benchmark
    with pytest.raises(SpecError):
        load_text(BILLION_LAUGHS)
    assert time.process_time() - t0 < 1.0


def test_deep_nesting_of_the_whole_size_limit_fails_fast():
    t0 = time.process_time()  # CPU time: a guard against runaway work, not a benchmark
    with pytest.raises(SpecError, match="levels deep"):
        load_text("[" * (8 * 1024 * 1024 - 1))
    assert time.process_time() - t0 < 1.0


def test_oversized_text():
    with pytest.raises(SpecError, match="more than"):
        load_text("#" * (8 * 1024 * 1024 + 1))


def test_load_file_errors(tmp_path):
    with pytest.raises(SpecError, match="cannot read scenario"):
        load_file(tmp_path / "missing.yaml")
    with pytest.raises(SpecError, match="is not a file"):
        load_file(tmp_path)
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"kind: Cluster\nname: caf\xe9\n")
    with pytest.raises(SpecError, match="is not UTF-8"):
        load_file(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [1,")
    with pytest.raises(SpecError) as info:
        load_file(broken)
    assert str(info.value).startswith(str(broken) + ": is not valid YAML")


def test_errors_do_not_echo_control_characters():
    e = _error(text(cluster(), pod(labels={"app": "a\x1b[31mred"})))
    assert "\x1b" not in str(e)


# ------------------------------------------------------------------ fuzz

JUNK = ["", "-1", "0", "65536", "99999999999999999999999999999999", "1e400", ".nan", "-.inf", "0x1F", "0o17",
        "~", "null", "true", "no", "2024-01-01", "[", "]", "{", "}", "[]", "{}", "&a", "*a", "*nope", "!!binary AAAA",
        "!!python/object:os.system", "|", ">", "'", '"', "'unterminated", "# comment", "%", "@", "`", "a: b", "- x",
        "é", "ß", "²", "١٢", "日本", "\U0001f600", "\u200b", "\ufeff", "\t", "\x7f", "\x85", "\u2028", "$(touch pwned)",
        "../../etc/passwd", "a" * 300, "10.244.0.1/16", "fd00::/8", "0.0.0.0/0", "255.255.255.255", "None",
        "30000", "32767", "ClusterIP", "NodePort", "netexec", "--http-port=0"]


def _junk(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.6:
        return rng.choice(JUNK)
    if pick < 0.8:
        return "".join(chr(rng.choice([rng.randrange(0, 0x20), rng.randrange(0x20, 0x7f), rng.randrange(0x80, 0x3000)]))
                       for _ in range(rng.randrange(1, 12)))
    return str(rng.choice([-1, 1]) * rng.randrange(0, 10 ** rng.randrange(1, 40)))


def _mutate(lines: list[str], rng: random.Random) -> list[str]:
    lines = list(lines)
    i = rng.randrange(len(lines))
    op = rng.choice(["delete", "replace", "replace", "duplicate"])
    if op == "delete":
        del lines[i]
    elif op == "duplicate":
        lines.insert(rng.randrange(len(lines) + 1), lines[i])
    else:  # replace the scalar at the end of a "key: value" or "- value" line (or the whole line)
        line = lines[i]
        for sep in (": ", "- "):
            if sep in line:
                head = line[: line.rindex(sep) + len(sep)]
                lines[i] = head + _junk(rng)
                break
        else:
            lines[i] = _junk(rng)
    return lines


RICH_SCENARIO = KIND_CONFIG + """\
expectations:
- {from: pod/team/a, to: svc/team/web:80, expect: refused, backends: 2, protocol: TCP}
""" + "---\n" + text(
    namespace("team"),
    deployment("web", 4, namespace="team", nodeSelector={"disk": "ssd"}, tolerations=[{"key": CP_TAINT}]),
    pod("a", labels={"app": "web"}, namespace="team", nodeName="kindy-worker2",
        containers=[container("x", [(9090, "http"), (53, "dns", "UDP")], command=["sleep", "1"])]),
    service("web", [{"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080},
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns"}],
            namespace="team", type="NodePort", sessionAffinity="ClientIP",
            sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}, externalTrafficPolicy="Local",
            externalIPs=["192.0.2.4"], clusterIP="10.97.0.50"),
    service("hl", [], clusterIP="None", namespace="team"),
    service("ext", [], type="ExternalName", externalName="example.com", selector=OMIT),
    {"apiVersion": "v1", "kind": "List", "items": [pod("b", containers=[container(args=["netexec", "--http-port=8000"])])]},
)


def test_external_traffic_policy_is_taken_where_there_is_external_traffic():
    """NodePort and LoadBalancer Services, and a ClusterIP one with externalIPs, are externally accessible
    (the API server's ExternallyAccessible): their policy is kept as written."""
    for extra in ({"type": "NodePort"}, {"type": "LoadBalancer"}, {"externalIPs": ["192.0.2.9"]}):
        c = build(load_text(text(cluster(), _svc_ports({"port": 80}, externalTrafficPolicy="Local", **extra))))
        assert [s.spec.external_traffic_policy for s in c.services if s.name == "web"] == ["Local"], extra


def test_rich_scenario_is_valid():
    c = build(load_text(RICH_SCENARIO))
    assert len(c.pods) == 6 and len(c.services) == 3 + 2   # and the add-ons' kubernetes and kube-dns


@pytest.mark.parametrize("base, seed", [(DEFAULT_SCENARIO.read_text(), 20240521), (RICH_SCENARIO, 7)],
                         ids=["default", "rich"])
def test_fuzz_mutations_raise_only_spec_errors(base, seed):
    """300 seeded mutations (a line deleted or duplicated, a scalar replaced by junk): load_text + build
    either succeed or raise a one-line SpecError with a fix, never any other exception."""
    base = base.splitlines()
    rng = random.Random(seed)
    outcomes = {"ok": 0, "SpecError": 0}
    for n in range(300):
        lines = base
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            lines = _mutate(lines, rng)
        mutated = "\n".join(lines) + "\n"
        try:
            build(load_text(mutated, "<fuzz>"))
            outcomes["ok"] += 1
        except SpecError as e:
            outcomes["SpecError"] += 1
            for problem in getattr(e, "problems", [e]):  # several problems: one line each
                assert "\n" not in str(problem) and problem.exit_code == 2 and problem.fix, \
                    f"case {n}: {e!r}\n{mutated}"
            assert e.exit_code == 2
        except Exception as e:  # noqa: BLE001 - this is what the test looks for
            pytest.fail(f"case {n}: {type(e).__name__}: {e}\n--- scenario ---\n{mutated}")
    # the mutations must exercise both paths
    assert outcomes["ok"] > 10 and outcomes["SpecError"] > 10, outcomes


def test_node_subnet_exactly_full_is_accepted():
    """A /29 has .1 (gateway) .2-.4 (three nodes) and .5, .6 (the external host's two addresses)."""
    s = load(cluster(nodes=["worker"] * 3, nodeSubnet="172.18.0.0/29"))
    assert len(s.nodes) == 3


def test_agnhost_spellings():
    for argv in (["netexec", "--http-port=9000", "--udp-port=-1"], ["/agnhost", "netexec", "--http-port=9000",
                                                                      "--udp-port=-1"],
                 ["agnhost", "netexec", "--http-port=9000", "--udp-port=-1"]):
        c = container("a", args=argv)
        s = load(cluster(), pod("p", containers=[c]))
        ports = s.pods[0].template.containers[0].ports
        assert [(p.port, p.protocol) for p in ports] == [(9000, "TCP")], argv
        assert s.pods[0].template.containers[0].args == []
