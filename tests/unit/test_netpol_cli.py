"""`netlab label`, `get netpol|ns` and `describe netpol` without root: the CLI against a simulated
cluster's store (tests/unit/test_kubectl_cli.py's World), and kubectl's NetworkPolicy output as pure
functions (netlab/controllers/printnetpol.py) on policies built by hand (netlab/netpol/policy.py).
What is checked: kubectl's lines and exit codes, that refused input writes nothing, that every write
asks for the lab's control loop, and that a pod's new labels reach the model's pod without a new pod."""
from __future__ import annotations

import ipaddress
import json

import pytest

from netlab.controllers import labeling
from netlab.controllers.printers import render
from netlab.controllers.printnetpol import describe_networkpolicy, selector_text, table
from netlab.netpol.policy import IPBlock, LabelSelector, NetworkPolicy, Peer, PolicyPort, Requirement, Rule
from netlab.store.meta import fmt_time, parse_time

from .test_kubectl_cli import World, lines

POD = """apiVersion: v1
kind: Pod
metadata: {name: %s, labels: {pod: %s}}
spec:
  containers:
  - name: c
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: [netexec, --http-port=80]
"""


@pytest.fixture
def world(monkeypatch, tmp_path):
    w = World(monkeypatch, tmp_path)
    r = w.run("apply", "-f", w.file(POD % ("a", "a") + "---\n" + POD % ("b", "b")))
    assert r.exit_code == 0, r.output
    return w


def labels(world, kind, name, ns="default"):
    return world.store.get(kind, ns, name)["metadata"].get("labels") or {}


# ------------------------------------------------------------------ label

def test_label_sets_refuses_overwrite_then_overwrites_and_removes(world):
    uid = world.store.get("Pod", "default", "a")["metadata"]["uid"]
    world.ensured.clear()
    r = world.run("label", "pod", "a", "team=blue")
    assert r.exit_code == 0 and lines(r) == ["pod/a labeled"]
    assert labels(world, "Pod", "a") == {"pod": "a", "team": "blue"} and world.ensured == ["sim"]
    # an existing value: kubectl's error, exit 1, nothing written (not even to the other pod named)
    before = world.store.revision()
    r = world.run("label", "pods", "b", "a", "x=1", "pod=z", settle=False)
    assert r.exit_code == 1 and lines(r) == ["error: 'pod' already has a value (b), and --overwrite is false"]
    assert world.store.revision() == before and labels(world, "Pod", "b") == {"pod": "b"}
    # the same value again: nothing to do
    r = world.run("label", "pod/a", "pod=a", settle=False)
    assert r.exit_code == 0 and lines(r) == ["pod/a not labeled"] and world.store.revision() == before
    r = world.run("label", "pod", "a", "pod=z", "--overwrite")
    assert r.exit_code == 0 and lines(r) == ["pod/a labeled"] and labels(world, "Pod", "a")["pod"] == "z"
    r = world.run("label", "pod", "a", "team-")
    assert r.exit_code == 0 and lines(r) == ["pod/a unlabeled"] and labels(world, "Pod", "a") == {"pod": "z"}
    r = world.run("label", "pod", "a", "team-")
    assert r.exit_code == 0 and r.stdout.splitlines() == ["pod/a not labeled"]
    assert 'label "team" not found.' in r.stderr
    # the same pod all along: a label change does not make a pod again
    assert world.store.get("Pod", "default", "a")["metadata"]["uid"] == uid


@pytest.mark.parametrize("arg,expected", [
    ("bad key=1", "invalid key 'bad key'"),
    ("x.=1", "invalid key 'x.'"),
    ("a/b/c=1", "invalid key 'a/b/c'"),
    ("Example.com/x=1", "invalid key 'Example.com/x'"),
    ("k=" + "v" * 64, "invalid value"),
    ("k=a b", "invalid value 'a b'"),
    ("k=-a", "invalid value '-a'"),
    ("k=a=b", "more than one '='"),
    ("/x-", "invalid key '/x'"),
])
def test_label_bad_key_or_value_is_one_line_exit_2_and_changes_nothing(world, arg, expected):
    before, ensured = world.store.revision(), list(world.ensured)
    r = world.run("label", "pod", "a", "ok=1", arg, settle=False)
    assert r.exit_code == 2, r.output
    assert len(lines(r)) == 1 and lines(r)[0].startswith("error: label ") and expected in lines(r)[0], r.output
    assert world.store.revision() == before and world.ensured == ensured


def test_label_argument_errors(world):
    before = world.store.revision()
    r = world.run("label", "pod", "a", settle=False)
    assert r.exit_code == 1 and "at least one label update is required" in r.output
    r = world.run("label", "pod", "a", "x=1", "x-", settle=False)
    assert r.exit_code == 2 and "can not both modify and remove a label in the same command" in r.output
    r = world.run("label", "pod", "nope", "x=1", settle=False)
    assert r.exit_code == 1 and lines(r) == ['Error from server (NotFound): pods "nope" not found']
    r = world.run("label", "pod", "x=1", settle=False)
    assert r.exit_code == 1 and "no name was specified" in r.output
    r = world.run("label", "pod", "a", "--all", "x=1", settle=False)
    assert r.exit_code == 1 and "name cannot be provided when a selector or --all is specified" in r.output
    r = world.run("label", "pox", "a", "x=1", settle=False)
    assert r.exit_code == 1 and lines(r) == ['error: the server doesn\'t have a resource type "pox"']
    assert world.store.revision() == before


def test_label_all_and_selector(world):
    r = world.run("label", "pods", "--all", "tier=web")
    assert lines(r) == ["pod/a labeled", "pod/b labeled"]
    r = world.run("label", "pods", "-l", "pod=b", "tier=db", "--overwrite")
    assert lines(r) == ["pod/b labeled"]
    assert labels(world, "Pod", "a")["tier"] == "web" and labels(world, "Pod", "b")["tier"] == "db"
    r = world.run("label", "pods", "-l", "pod=nope", "x=1", settle=False)
    assert r.exit_code == 0 and r.stdout == "" and "No resources found" in r.stderr


def test_label_namespaces_and_the_api_servers_own(world):
    world.store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
    r = world.run("label", "ns", "x", "ns=x")
    assert r.exit_code == 0 and lines(r) == ["namespace/x labeled"]
    assert world.store.get("Namespace", None, "x")["metadata"]["labels"] == {"ns": "x"}
    # default is always there; the store gets its object the first time it is labeled
    assert world.store.try_get("Namespace", None, "default") is None
    r = world.run("label", "namespace", "default", "team=core")
    assert r.exit_code == 0 and lines(r) == ["namespace/default labeled"]
    assert world.store.get("Namespace", None, "default")["metadata"]["labels"] == {"team": "core"}
    r = world.run("label", "ns", "x", "kubernetes.io/metadata.name=y", settle=False)
    assert r.exit_code == 2 and "kubernetes.io/metadata.name is set by the API server" in r.output
    r = world.run("get", "ns", "--show-labels")
    assert r.exit_code == 0, r.output
    rows = {x.split()[0]: x.split() for x in lines(r)[1:]}
    assert lines(r)[0].split() == ["NAME", "STATUS", "AGE", "LABELS"]
    assert set(rows) >= {"default", "kube-system", "kube-public", "kube-node-lease", "x"}
    assert rows["x"][1] == "Active" and rows["x"][3] == "kubernetes.io/metadata.name=x,ns=x"
    assert rows["default"][3] == "kubernetes.io/metadata.name=default,team=core"
    r = world.run("get", "ns", "-l", "ns=x", "-o", "name")
    assert lines(r) == ["namespace/x"]


def test_label_nodes_services_deployments(world):
    world.deploy()
    r = world.run("label", "node", "n1", "zone=a")
    assert lines(r) == ["node/n1 labeled"] and labels(world, "Node", "n1", None)["zone"] == "a"
    r = world.run("label", "svc", "web", "tier=front")
    assert lines(r) == ["service/web labeled"]
    r = world.run("label", "deploy/web", "tier=front")
    assert lines(r) == ["deployment.apps/web labeled"] and labels(world, "Deployment", "web")["tier"] == "front"


def test_a_label_change_reaches_the_models_pod_and_does_not_make_it_again(world):
    """The live pass reads pods from the store (live/objects.pod_specs, cached by uid and
    resourceVersion): the new labels reach the model's pod; its fingerprint (what would make it again)
    does not change."""
    from netlab.live.objects import pod_specs
    for _ in range(3):
        world.sim.tick(1)
    cache: dict = {}
    pods = world.store.list("Pod")
    before = {ps.name: ps for ps, _ in pod_specs(pods, cache=cache)}
    assert before["a"].template.labels == {"pod": "a"}
    world.run("label", "pod", "a", "role=db")
    after = {ps.name: ps for ps, _ in pod_specs(world.store.list("Pod"), cache=cache)}
    assert after["a"].template.labels == {"pod": "a", "role": "db"}
    from netlab.model.build import build
    from netlab.spec.parse import load_text
    from .test_kubectl_cli import CLUSTER
    sc = load_text(CLUSTER, "<t>")
    c1 = build(sc, {}, pods=[before["a"]])
    c2 = build(sc, {}, pods=[after["a"]])
    assert c2.pods[0].labels["role"] == "db"
    assert c1.pods[0].fingerprint() == c2.pods[0].fingerprint()


def test_relabel_messages_are_kubectls():
    obj = {"kind": "Pod", "metadata": {"name": "a", "labels": {"a": "1", "b": "2"}}}
    assert labeling.relabel(obj, {"c": "3"}, [], False) == ({"a": "1", "b": "2", "c": "3"}, "labeled")
    assert labeling.relabel(obj, {}, ["a"], False) == ({"b": "2"}, "unlabeled")
    assert labeling.relabel(obj, {}, ["a"], True) == ({"b": "2"}, "labeled")   # kubectl's --overwrite wording
    assert labeling.relabel(obj, {"a": "1"}, ["z"], False) == (None, "not labeled")
    with pytest.raises(labeling.ControllerError, match=r"^'b' already has a value \(2\), and --overwrite is false$"):
        labeling.relabel(obj, {"b": "3"}, [], False)
    assert labeling.parse(["a=1", "b-", "example.com/x=", "b-"]) == ({"a": "1", "example.com/x": ""}, ["b"])


# ------------------------------------------------------------------ get / delete netpol

NOW = parse_time("2026-12-01T06:00:00Z")


def netpol(name, ns="default", spec=None, created="2026-12-01T05:58:00Z", labels=None):
    md = {"name": name, "namespace": ns, "creationTimestamp": created}
    if labels:
        md["labels"] = labels
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": md,
            "spec": spec if spec is not None else {"podSelector": {}}}


def test_get_netpol_table_is_kubectls():
    objs = [netpol("deny-all"),
            netpol("web", spec={"podSelector": {"matchLabels": {"tier": "b", "app": "web"},
                                                "matchExpressions": [{"key": "env", "operator": "In",
                                                                      "values": ["prod", "dev"]},
                                                                     {"key": "canary", "operator": "DoesNotExist"}]}},
                   created="2026-11-30T06:00:00Z")]
    assert render(table(objs, NOW)).splitlines() == [
        "NAME       POD-SELECTOR                               AGE",
        "deny-all   <none>                                     2m",
        "web        app=web,!canary,env in (dev,prod),tier=b   24h"]


def test_selector_text_of_policy_selectors_sorts_as_kubectl():
    sel = LabelSelector((("pod", "a"),), (Requirement("ns", "NotIn", ("z", "y")), Requirement("app", "Exists")))
    assert selector_text(sel) == "app,ns notin (y,z),pod=a"
    assert selector_text(LabelSelector()) == "<none>"
    assert selector_text({"matchLabels": {}}) == "<none>"


def test_get_delete_netpol_cli(world):
    world.store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
    world.store.create(netpol("deny-all"))
    world.store.create(netpol("allow-a", ns="x", spec={"podSelector": {"matchLabels": {"pod": "a"}}},
                              labels={"team": "net"}))
    for word in ("netpol", "networkpolicy", "networkpolicies", "networkpolicies.networking.k8s.io"):
        r = world.run("get", word, settle=False)
        assert r.exit_code == 0 and lines(r)[0].split() == ["NAME", "POD-SELECTOR", "AGE"], r.output
        assert [x.split()[:2] for x in lines(r)[1:]] == [["deny-all", "<none>"]]
    r = world.run("get", "netpol", "-A", "--show-labels", settle=False)
    assert lines(r)[0].split() == ["NAMESPACE", "NAME", "POD-SELECTOR", "AGE", "LABELS"]
    assert [x.split()[:3] for x in lines(r)[1:]] == [["default", "deny-all", "<none>"], ["x", "allow-a", "pod=a"]]
    assert lines(r)[2].split()[-1] == "team=net"
    r = world.run("get", "netpol", "-n", "x", "-o", "wide", settle=False)
    assert lines(r)[0].split() == ["NAME", "POD-SELECTOR", "AGE"]
    r = world.run("get", "netpol", "-A", "-l", "team=net", "-o", "name", settle=False)
    assert lines(r) == ["networkpolicy.networking.k8s.io/allow-a"]
    r = world.run("get", "netpol", "allow-a", "-n", "x", "-o", "json", settle=False)
    assert json.loads(r.output)["spec"]["podSelector"] == {"matchLabels": {"pod": "a"}}
    r = world.run("get", "netpol", "nope", settle=False)
    assert r.exit_code == 1 and lines(r) == ['Error from server (NotFound): networkpolicies.networking.k8s.io "nope" '
                                             'not found']
    r = world.run("delete", "netpol", "allow-a", "-n", "x")
    assert r.exit_code == 0 and lines(r) == ['networkpolicy.networking.k8s.io "allow-a" deleted']
    assert world.store.try_get("NetworkPolicy", "x", "allow-a") is None
    r = world.run("get", "netpol", "-n", "x", settle=False)
    assert r.exit_code == 0 and "No resources found in x namespace." in r.output


def test_deleting_a_namespace_deletes_its_policies(world):
    world.store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
    world.store.create(netpol("p", ns="x"))
    r = world.run("delete", "ns", "x")
    assert r.exit_code == 0, r.output
    assert world.store.try_get("NetworkPolicy", "x", "p") is None


# ------------------------------------------------------------------ describe netpol

def _net(cidr):
    return ipaddress.ip_network(cidr)


def test_describe_default_deny_both_directions():
    obj = netpol("deny-all", ns="prod")
    obj["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "{}", "owner": "me"}
    p = NetworkPolicy("prod", "deny-all", LabelSelector(), ("Ingress", "Egress"))
    assert describe_networkpolicy(obj, p).splitlines() == [
        "Name:         deny-all",
        "Namespace:    prod",
        "Created on:   2026-12-01 05:58:00 +0000 UTC",
        "Labels:       <none>",
        "Annotations:  owner: me",
        "Spec:",
        "  PodSelector:     <none> (Allowing the specific traffic to all pods in this namespace)",
        "  Allowing ingress traffic:",
        "    <none> (Selected pods are isolated for ingress connectivity)",
        "  Allowing egress traffic:",
        "    <none> (Selected pods are isolated for egress connectivity)",
        "  Policy Types: Ingress, Egress",
    ]


def test_describe_rules_ports_and_peers():
    obj = netpol("web", ns="x", labels={"b": "2", "a": "1"})
    ingress = (
        Rule(ports=(PolicyPort("TCP", 80), PolicyPort("UDP", "serve-81-udp"), PolicyPort("TCP", 8000, 8100)),
             peers=(Peer(namespace_selector=LabelSelector((("ns", "y"),)), pod_selector=LabelSelector((("pod", "b"),))),
                    Peer(pod_selector=LabelSelector()),
                    Peer(namespace_selector=LabelSelector()),
                    Peer(ip_block=IPBlock(_net("10.0.0.0/8"), (_net("10.1.0.0/16"), _net("10.2.0.0/16")))),
                    Peer(ip_block=IPBlock(_net("192.168.0.0/24"))))),
        Rule(),
    )
    egress = (Rule(ports=(PolicyPort("UDP", 53), PolicyPort("SCTP", None))),)
    p = NetworkPolicy("x", "web", LabelSelector((("pod", "a"),)), ("Ingress", "Egress"), ingress, egress)
    assert describe_networkpolicy(obj, p).splitlines() == [
        "Name:         web",
        "Namespace:    x",
        "Created on:   2026-12-01 05:58:00 +0000 UTC",
        "Labels:       a=1",
        "              b=2",
        "Annotations:  <none>",
        "Spec:",
        "  PodSelector:     pod=a",
        "  Allowing ingress traffic:",
        "    To Port: 80/TCP",
        "    To Port: serve-81-udp/UDP",
        "    To Port Range: 8000-8100/TCP",
        "    From:",
        "      NamespaceSelector: ns=y",
        "      PodSelector: pod=b",
        "    From:",
        "      PodSelector: <none>",
        "    From:",
        "      NamespaceSelector: <none>",
        "    From:",
        "      IPBlock:",
        "        CIDR: 10.0.0.0/8",
        "        Except: 10.1.0.0/16, 10.2.0.0/16",
        "    From:",
        "      IPBlock:",
        "        CIDR: 192.168.0.0/24",
        "        Except:",
        "    ----------",
        "    To Port: <any> (traffic allowed to all ports)",
        "    From: <any> (traffic not restricted by source)",
        "  Allowing egress traffic:",
        "    To Port: 53/UDP",
        "    To Port: <nil>/SCTP",
        "    To: <any> (traffic not restricted by destination)",
        "  Policy Types: Ingress, Egress",
    ]


def test_describe_one_direction_only():
    obj = netpol("egress-only")
    p = NetworkPolicy("default", "egress-only", LabelSelector((("app", "web"),)), ("Egress",),
                      egress=(Rule(peers=(Peer(pod_selector=LabelSelector((("app", "db"),))),)),))
    text = describe_networkpolicy(obj, p).splitlines()
    assert text[7:] == ["  Not affecting ingress traffic",
                        "  Allowing egress traffic:",
                        "    To Port: <any> (traffic allowed to all ports)",
                        "    To:",
                        "      PodSelector: app=db",
                        "  Policy Types: Egress"]
    p = NetworkPolicy("default", "in", LabelSelector(), ("Ingress",))
    assert describe_networkpolicy(obj, p).splitlines()[-2:] == ["  Not affecting egress traffic",
                                                                "  Policy Types: Ingress"]


def test_created_on_is_utc():
    obj = netpol("p", created=fmt_time(0))
    p = NetworkPolicy("default", "p", LabelSelector(), ("Ingress",))
    assert "Created on:   1970-01-01 00:00:00 +0000 UTC" in describe_networkpolicy(obj, p)


NETPOL = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-b, namespace: x, labels: {team: net}}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress, Ingress]
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {ns: y}}
      podSelector: {matchLabels: {pod: b}}
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
    ports:
    - {port: 80}
    - {protocol: UDP, port: serve-81-udp}
    - {port: 8000, endPort: 8100}
  egress:
  - to:
    - podSelector: {}
"""


def test_apply_get_describe_delete_netpol_through_the_cli(world):
    world.store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
    r = world.run("apply", "-f", world.file(NETPOL))
    assert r.exit_code == 0 and lines(r) == ["networkpolicy.networking.k8s.io/allow-b created"], r.output
    r = world.run("apply", "-f", world.file(NETPOL))
    assert lines(r) == ["networkpolicy.networking.k8s.io/allow-b unchanged"]
    r = world.run("get", "netpol", "-n", "x", settle=False)
    assert [x.split()[:2] for x in lines(r)] == [["NAME", "POD-SELECTOR"], ["allow-b", "pod=a"]]
    r = world.run("describe", "netpol", "allow-b", "-n", "x", settle=False)
    assert r.exit_code == 0, r.output
    out = lines(r)
    assert out[0] == "Name:         allow-b" and out[1] == "Namespace:    x"
    assert out[2].startswith("Created on:   20") and out[2].endswith(" +0000 UTC")
    assert out[3:] == [
        "Labels:       team=net",
        "Annotations:  <none>",          # (not the last-applied configuration, as kubectl)
        "Spec:",
        "  PodSelector:     pod=a",
        "  Allowing ingress traffic:",
        "    To Port: 80/TCP",
        "    To Port: serve-81-udp/UDP",
        "    To Port Range: 8000-8100/TCP",
        "    From:",
        "      NamespaceSelector: ns=y",
        "      PodSelector: pod=b",
        "    From:",
        "      IPBlock:",
        "        CIDR: 10.0.0.0/8",
        "        Except: 10.1.0.0/16",
        "  Allowing egress traffic:",
        "    To Port: <any> (traffic allowed to all ports)",
        "    To:",
        "      PodSelector: <none>",
        "  Policy Types: Egress, Ingress",
    ]
    r = world.run("describe", "networkpolicy/allow-b", "-n", "x", settle=False)
    assert r.exit_code == 0 and lines(r)[0] == "Name:         allow-b"
    r = world.run("describe", "netpol", "nope", "-n", "x", settle=False)
    assert r.exit_code == 1 and lines(r) == ['Error from server (NotFound): networkpolicies.networking.k8s.io "nope" '
                                             'not found']
    r = world.run("label", "netpol", "allow-b", "-n", "x", "tier=a")
    assert lines(r) == ["networkpolicy.networking.k8s.io/allow-b labeled"]
    r = world.run("delete", "-f", world.file(NETPOL))
    assert r.exit_code == 0 and lines(r) == ['networkpolicy.networking.k8s.io "allow-b" deleted'], r.output


def test_apply_refuses_a_bad_policy_with_one_line_and_writes_nothing(world):
    world.store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
    before = world.store.revision()
    r = world.run("apply", "-f", world.file(NETPOL.replace("10.1.0.0/16", "11.0.0.0/16"), "bad.yaml"), settle=False)
    assert r.exit_code == 2 and len(lines(r)) == 1 and "except[0]" in r.output and "bad.yaml" in r.output
    assert world.store.revision() == before


def test_namespace_labels_reach_the_live_passes_scenario(world):
    """A live pass reads the Namespaces from the store (live/sync.lab_scenario): what `label ns` wrote
    is what NetworkPolicies' namespaceSelectors see, for the API server's own namespaces too."""
    from netlab.live.sync import lab_scenario

    from .test_kubectl_cli import CLUSTER
    world.store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "labels": {"ns": "x"}}})
    assert lab_scenario(CLUSTER, "<t>", world.store, "sim", None).namespace_labels.get("x") == {"ns": "x"}
    assert world.run("label", "ns", "x", "team=blue", "ns=y", "--overwrite").exit_code == 0
    assert world.run("label", "ns", "default", "team=core").exit_code == 0
    sc = lab_scenario(CLUSTER, "<t>", world.store, "sim", None)
    assert sc.namespace_labels["x"] == {"ns": "y", "team": "blue"}
    assert sc.namespace_labels["default"] == {"team": "core"}
    assert world.run("label", "ns", "x", "team-", "ns-").exit_code == 0
    assert not lab_scenario(CLUSTER, "<t>", world.store, "sim", None).namespace_labels.get("x")
