"""The NetworkPolicy truth-table cases, as data: each case is one or more steps, each step the manifests
in force then (the NetworkPolicies, and Pod / Namespace documents whose labels differ from the model's
defaults: {pod: <name>} and {ns: <name>}), and the ports/protocols whose 9x9 table is checked after it.

The cases follow the upstream e2e suite's coverage (default deny, allow from a namespace, from pods,
both selectors in one peer, matchExpressions, ipBlock with except, named ports, endPort, egress to DNS
only, stacking, policyTypes defaults, label changes after the fact, a policy deleted), written here for
netlab. Addresses in ipBlocks are placeholders filled from the lab's pod addresses (netpol_truth.fill).
"""
from __future__ import annotations

from dataclasses import dataclass

ALL = ((80, "TCP"), (81, "TCP"), (80, "UDP"), (81, "UDP"))
TCP80 = ((80, "TCP"),)
LABEL = {"netlab-truth": "case"}      # on every policy of a case (so `apply --prune -l` can find them)


@dataclass(frozen=True)
class Step:
    manifests: tuple
    note: str = ""


@dataclass(frozen=True)
class Case:
    name: str
    steps: tuple
    checks: tuple = ALL
    dns: bool = False          # also check UDP and TCP 53 from every pod to the cluster DNS pods


def np(ns, name, selector=None, ingress=None, egress=None, types=None):
    spec = {"podSelector": selector or {}}
    if types is not None:
        spec["policyTypes"] = list(types)
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"namespace": ns, "name": name, "labels": dict(LABEL)}, "spec": spec}


def pod_doc(ns, name, **labels):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": ns, "name": name, "labels": labels}}


def ns_doc(name, **labels):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def ml(**kv):
    return {"matchLabels": kv}


def expr(key, op, *values):
    e = {"key": key, "operator": op}
    if values:
        e["values"] = list(values)
    return {"matchExpressions": [e]}


def one(name, *manifests, checks=ALL, dns=False):
    return Case(name, (Step(tuple(manifests)),), checks, dns)


A = ml(pod="a")
DENY_IN = dict(types=["Ingress"])
DENY_OUT = dict(types=["Egress"])
TO_DNS = [{"to": [{"namespaceSelector": ml(**{"kubernetes.io/metadata.name": "kube-system"})}],
           "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]

CASES = [
    one("no-policy-allows-all"),
    # default deny / allow all idioms
    one("default-deny-ingress-x", np("x", "deny", **DENY_IN)),
    one("default-deny-ingress-everywhere", *(np(ns, "deny", **DENY_IN) for ns in "xyz")),
    one("default-deny-egress-x", np("x", "deny", **DENY_OUT)),
    one("default-deny-both-x", np("x", "deny", types=["Ingress", "Egress"])),
    one("deny-ingress-one-pod", np("x", "deny-a", A, **DENY_IN)),
    one("allow-all-ingress-x", np("x", "allow", ingress=[{}])),
    one("allow-all-egress-x", np("x", "allow", egress=[{}], types=["Egress"])),
    one("deny-all-plus-allow-all-is-allow", np("x", "deny", types=["Ingress", "Egress"]),
        np("x", "allow", ingress=[{}], egress=[{}])),
    one("egress-deny-everywhere-ingress-allow", *(np(ns, "deny-out", **DENY_OUT) for ns in "xyz"),
        np("x", "allow-in", ingress=[{}])),
    # peers
    one("ingress-from-same-namespace", np("x", "same-ns", A, ingress=[{"from": [{"podSelector": {}}]}])),
    one("ingress-from-pod-b-same-namespace", np("x", "from-b", A, ingress=[{"from": [{"podSelector": ml(pod="b")}]}])),
    one("ingress-from-namespace-y", np("x", "from-y", A, ingress=[{"from": [{"namespaceSelector": ml(ns="y")}]}])),
    one("ingress-from-all-namespaces", np("x", "from-all", A, ingress=[{"from": [{"namespaceSelector": {}}]}])),
    one("ingress-peer-with-both-selectors", np("x", "y-b", A, ingress=[{"from": [
        {"namespaceSelector": ml(ns="y"), "podSelector": ml(pod="b")}]}])),
    one("ingress-two-peers-are-or", np("x", "y-or-b", A, ingress=[{"from": [
        {"namespaceSelector": ml(ns="y")}, {"podSelector": ml(pod="b")}]}])),
    one("ingress-namespace-match-expressions-in", np("x", "ns-in", A, ingress=[{"from": [
        {"namespaceSelector": expr("ns", "In", "y", "z")}]}])),
    one("ingress-namespace-match-expressions-notin", np("x", "ns-notin", ingress=[{"from": [
        {"namespaceSelector": expr("ns", "NotIn", "x")}]}])),
    one("ingress-namespace-metadata-name", np("y", "from-z", ingress=[{"from": [
        {"namespaceSelector": ml(**{"kubernetes.io/metadata.name": "z"})}]}])),
    one("ingress-pod-match-expressions", np("x", "pod-in", A, ingress=[{"from": [
        {"namespaceSelector": {}, "podSelector": expr("pod", "In", "b", "c")}]}])),
    one("policy-selector-match-expressions", np("x", "not-a", expr("pod", "NotIn", "a"), **DENY_IN)),
    one("policy-selector-exists-doesnotexist", np("y", "exists", expr("pod", "Exists"), **DENY_IN),
        np("z", "nothing", expr("pod", "DoesNotExist"), **DENY_IN)),
    # ports
    one("ingress-port-80-only", np("x", "p80", A, ingress=[{"ports": [{"port": 80}]}])),
    one("ingress-protocol-defaults-to-tcp", np("x", "p81", ingress=[{"ports": [{"port": 81}]}])),
    one("ingress-named-port-tcp", np("x", "named", A, ingress=[{"ports": [{"port": "serve-80-tcp"}],
                                                           "from": [{"namespaceSelector": ml(ns="y")}]}])),
    one("ingress-named-port-udp", np("x", "named-udp", ingress=[{"ports": [{"protocol": "UDP", "port": "serve-81-udp"}]}])),
    one("ingress-endport-range", np("x", "range", A, ingress=[{"ports": [{"port": 80, "endPort": 81}]}])),
    one("ingress-endport-single", np("x", "range1", A, ingress=[{"ports": [{"port": 81, "endPort": 81,
                                                                          "protocol": "UDP"}]}])),
    one("ingress-udp-only", np("x", "udp", ingress=[{"ports": [{"protocol": "UDP"}]}])),
    one("ingress-ports-union-in-one-rule", np("x", "ports", A, ingress=[{"ports": [
        {"port": 80, "protocol": "UDP"}, {"port": "serve-81-tcp"}]}])),
    # egress
    one("egress-to-namespace-y", np("x", "to-y", A, egress=[{"to": [{"namespaceSelector": ml(ns="y")}]}],
                                     types=["Egress"])),
    one("egress-to-pod-b-same-namespace", np("x", "to-b", egress=[{"to": [{"podSelector": ml(pod="b")}]}],
                                              types=["Egress"])),
    one("egress-port-81", np("x", "e81", A, egress=[{"ports": [{"port": 81}]}], types=["Egress"])),
    one("egress-named-port", np("y", "e-named", egress=[{"ports": [{"protocol": "UDP", "port": "serve-80-udp"}]}],
                                types=["Egress"])),
    one("egress-endport-range-udp", np("z", "e-range", egress=[{"ports": [{"protocol": "UDP", "port": 80,
                                                                          "endPort": 81}]}], types=["Egress"])),
    one("egress-to-dns-only", np("x", "dns-only", egress=TO_DNS, types=["Egress"]), dns=True),
    one("egress-dns-plus-namespace-z", np("y", "dns", egress=TO_DNS, types=["Egress"]),
        np("y", "to-z", egress=[{"to": [{"namespaceSelector": ml(ns="z")}]}], types=["Egress"]), dns=True),
    # both directions, policyTypes
    one("ingress-and-egress-in-one-policy", np("x", "both", A, ingress=[{"from": [{"namespaceSelector": ml(ns="y")}]}],
                                               egress=[{"to": [{"namespaceSelector": ml(ns="z")}]}],
                                               types=["Ingress", "Egress"])),
    one("policy-types-absent-with-egress-rules", np("x", "derived", A,
                                                    egress=[{"to": [{"namespaceSelector": ml(ns="y")}]}])),
    one("policy-types-absent-ingress-only", np("x", "derived-in", A, ingress=[{"from": [{"podSelector": {}}]}])),
    one("policy-types-egress-ignores-ingress-rules", np("x", "eg-only", A, ingress=[{"from": [{"podSelector": {}}]}],
                                                        egress=[{"ports": [{"port": 80}]}], types=["Egress"])),
    one("policy-types-ingress-ignores-egress-rules", np("x", "in-only", A, ingress=[{"ports": [{"port": 81}]}],
                                                        egress=[{"to": [{"podSelector": {}}]}], types=["Ingress"])),
    # stacking
    one("two-policies-union-of-peers", np("x", "from-y", A, ingress=[{"from": [{"namespaceSelector": ml(ns="y")}]}]),
        np("x", "from-z-b", A, ingress=[{"from": [{"namespaceSelector": ml(ns="z"), "podSelector": ml(pod="b")}]}])),
    one("two-policies-union-of-ports", np("x", "p80-y", ingress=[{"ports": [{"port": 80}],
                                                                  "from": [{"namespaceSelector": ml(ns="y")}]}]),
        np("x", "p81-z", ingress=[{"ports": [{"port": 81, "protocol": "UDP"}],
                                   "from": [{"namespaceSelector": ml(ns="z")}]}])),
    one("policies-in-three-namespaces", np("x", "deny", **DENY_IN),
        np("y", "from-x", ingress=[{"from": [{"namespaceSelector": ml(ns="x")}]}]),
        np("z", "to-x", egress=[{"to": [{"namespaceSelector": ml(ns="x")}]}], types=["Egress"])),
    # ipBlock (addresses from the lab)
    one("ingress-ipblock-one-pod", np("x", "cidr", A, ingress=[{"from": [{"ipBlock": {"cidr": "{ip:y/b}/32"}}]}])),
    one("egress-ipblock-node-range", np("x", "cidr-out", A, egress=[{"to": [{"ipBlock": {"cidr": "{net24:y/b}"}}]}],
                                        types=["Egress"])),
    one("egress-ipblock-except", np("x", "except", A, egress=[{"to": [{"ipBlock": {
        "cidr": "{net24:y/b}", "except": ["{ip:y/b}/32"]}}]}], types=["Egress"])),
    one("ingress-ipblock-except-everything", np("y", "all-but", ingress=[{"from": [{"ipBlock": {
        "cidr": "0.0.0.0/0", "except": ["{ip:x/a}/32", "{ip:z/c}/32"]}}]}])),
    one("ipblock-except-overlap-union", np("x", "overlap", A, egress=[{"to": [
        {"ipBlock": {"cidr": "{net24:z/a}", "except": ["{ip:z/a}/32"]}},
        {"ipBlock": {"cidr": "{ip:z/a}/32"}}]}], types=["Egress"])),
    # after the fact: labels change, a policy is updated or deleted
    Case("pod-label-change-grants-access", (
        Step((np("x", "team", A, ingress=[{"from": [{"namespaceSelector": {}, "podSelector": ml(team="blue")}]}]),)),
        Step((np("x", "team", A, ingress=[{"from": [{"namespaceSelector": {}, "podSelector": ml(team="blue")}]}]),
              pod_doc("y", "b", pod="b", team="blue")), "y/b labelled team=blue"))),
    Case("pod-label-change-selects-pod", (
        Step((np("x", "deny-new", ml(pod="new"), **DENY_IN),)),
        Step((np("x", "deny-new", ml(pod="new"), **DENY_IN), pod_doc("x", "b", pod="new")), "x/b relabelled pod=new")),
         TCP80),
    Case("namespace-label-change", (
        Step((np("x", "team-ns", ingress=[{"from": [{"namespaceSelector": ml(team="blue")}]}]),)),
        Step((np("x", "team-ns", ingress=[{"from": [{"namespaceSelector": ml(team="blue")}]}]),
              ns_doc("z", ns="z", team="blue")), "namespace z labelled team=blue"))),
    Case("policy-deleted", (
        Step((np("x", "deny", types=["Ingress", "Egress"]),)),
        Step((), "the policy deleted")), TCP80),
    Case("policy-updated", (
        Step((np("x", "moving", A, ingress=[{"ports": [{"port": 80}], "from": [{"namespaceSelector": ml(ns="y")}]}]),)),
        Step((np("x", "moving", A, ingress=[{"ports": [{"port": 81}], "from": [{"namespaceSelector": ml(ns="z")}]}]),),
             "now 81 from z"))),
]

# the VM lane's cases (IPVS mode, Python ~15x slower there: 7 to 10 min a case with one emulated vCPU on
# 2026-12-05): VM_SUBSET by default, default deny both ways, the policy chains IPVS mode's rules must pass
# through (the other features' rules are the same in every proxy mode, and tested on this kernel in
# iptables and nftables modes); VM_SUBSET_LONG (NETLAB_VM_NETPOL=long) one case per feature
VM_SUBSET = ("default-deny-both-x",)
VM_SUBSET_LONG = ("default-deny-ingress-x", "default-deny-egress-x", "ingress-from-namespace-y",
                  "ingress-peer-with-both-selectors", "ingress-namespace-match-expressions-in",
                  "ingress-named-port-tcp", "ingress-endport-range", "egress-ipblock-except",
                  "two-policies-union-of-ports", "pod-label-change-grants-access", "policy-deleted")


def by_name(name: str) -> Case:
    return next(c for c in CASES if c.name == name)
