"""The truth-table oracle (tests/netpol_truth.py): hand-checked tables for a few cases, its table and diff
formats, and a cross-check over every case against netlab's own model (the manifests through netlab's
parser, then netlab.netpol.evaluate): two models written apart that must agree cell for cell."""
from __future__ import annotations

import ipaddress
from types import SimpleNamespace

import pytest

import yaml

from netlab.netpol import evaluate
from netlab.spec.parse import load_text
from tests import netpol_truth as T
from tests.netpol_cases import ALL, CASES, VM_SUBSET, VM_SUBSET_LONG, by_name

# pods alternate over two nodes, as in the integration scenario: x/a w1, x/b w2, x/c w1, y/a w2 ...
IPS = {}
for i, key in enumerate(T.MATRIX):
    node = 1 + i % 2
    IPS[key] = f"10.244.{node}.{2 + i // 2}"
DNS = {"kube-system/coredns-1": "10.244.1.20", "kube-system/coredns-2": "10.244.2.20"}


def world(*manifests):
    w = T.base_world(IPS)
    for key, ip in DNS.items():
        ns, name = key.split("/")
        w.pods[key] = T.Pod(ns, name, {"k8s-app": "kube-dns"}, ip, {"dns": (53, "UDP"), "dns-tcp": (53, "TCP")})
    return T.with_manifests(w, [T.fill(m, IPS | DNS) for m in manifests])


def rows(table, pods=T.MATRIX):
    """The table as row strings (one char per destination), for hand-checked expectations."""
    c = T.cells(table)
    return [("".join(c[(f, t)] for t in pods)) for f in pods]


def case_world(name, step=-1):
    return world(*by_name(name).steps[step].manifests)


# ------------------------------------------------------------------ hand-checked tables

def test_no_policy_everything_allowed():
    assert rows(T.truth(case_world("no-policy-allows-all"), 80, "TCP")) == ["." * 9] * 9


def test_default_deny_ingress_in_x():
    # only x's own pods reach themselves; everything else into x is denied; y and z are open
    got = rows(T.truth(case_world("default-deny-ingress-x"), 81, "UDP"))
    assert got == [".XX......", "X.X......", "XX.......",
                   "XXX......", "XXX......", "XXX......",
                   "XXX......", "XXX......", "XXX......"]


def test_default_deny_egress_in_x():
    got = rows(T.truth(case_world("default-deny-egress-x"), 80, "TCP"))
    assert got[:3] == [".XXXXXXXX", "X.XXXXXXX", "XX.XXXXXX"] and got[3:] == ["." * 9] * 6


def test_peer_with_both_selectors_is_and_two_peers_are_or():
    both = rows(T.truth(case_world("ingress-peer-with-both-selectors"), 80, "TCP"))
    # column x/a: only y/b (and x/a itself)
    assert [r[0] for r in both] == list(".XXX.XXXX")
    either = rows(T.truth(case_world("ingress-two-peers-are-or"), 80, "TCP"))
    # y's pods, and pod=b of x (podSelector alone: the policy's own namespace), not z/b
    assert [r[0] for r in either] == list("..X...XXX")


def test_named_port_and_end_port():
    w = case_world("ingress-named-port-tcp")
    assert [r[0] for r in rows(T.truth(w, 80, "TCP"))] == list(".XX...XXX")
    assert [r[0] for r in rows(T.truth(w, 81, "TCP"))] == list(".XXXXXXXX")
    assert [r[0] for r in rows(T.truth(w, 80, "UDP"))] == list(".XXXXXXXX")
    w = case_world("ingress-endport-single")
    assert [r[0] for r in rows(T.truth(w, 81, "UDP"))] == list("." * 9)
    assert [r[0] for r in rows(T.truth(w, 80, "UDP"))] == list(".XXXXXXXX")


def test_ipblock_except_and_the_overlapping_second_peer():
    # w1 holds x/a x/c y/b z/a z/c (10.244.1.0/24): x/a may reach them but y/b, excepted
    assert rows(T.truth(case_world("egress-ipblock-except"), 80, "TCP"))[0] == ".X.XXX.X."
    # the same range except z/a, and a second peer z/a/32: the union allows all of w1's pods
    assert rows(T.truth(case_world("ipblock-except-overlap-union"), 80, "TCP"))[0] == ".X.X.X.X."
    # ingress from 0.0.0.0/0 except x/a and z/c, into y
    assert [r[3] for r in rows(T.truth(case_world("ingress-ipblock-except-everything"), 81, "UDP"))] == list("X.......X")


def test_egress_to_dns_only():
    w = case_world("egress-to-dns-only")
    for proto in ("UDP", "TCP"):
        assert all(T.allowed(w, f"x/{p}", d, 53, proto) for p in "abc" for d in DNS)
    assert not T.allowed(w, "x/a", "kube-system/coredns-1", 80, "TCP")
    assert rows(T.truth(w, 80, "UDP"))[0] == ".XXXXXXXX"
    assert T.allowed(w, "y/a", "kube-system/coredns-1", 80, "TCP")


def test_policy_types_defaults():
    w = case_world("policy-types-absent-with-egress-rules")    # Ingress+Egress derived: x/a isolated both ways
    t = rows(T.truth(w, 80, "TCP"))
    assert t[0] == ".XX...XXX" and [r[0] for r in t] == list(".XXXXXXXX")
    w = case_world("policy-types-egress-ignores-ingress-rules")
    assert [r[0] for r in rows(T.truth(w, 81, "TCP"))] == list("." * 9)
    assert rows(T.truth(w, 81, "TCP"))[0] == ".XXXXXXXX"


def test_label_changes_after_the_fact():
    before, after = case_world("pod-label-change-grants-access", 0), case_world("pod-label-change-grants-access", 1)
    assert [r[0] for r in rows(T.truth(before, 80, "TCP"))] == list(".XXXXXXXX")
    assert [r[0] for r in rows(T.truth(after, 80, "TCP"))] == list(".XXX.XXXX")
    before, after = case_world("namespace-label-change", 0), case_world("namespace-label-change", 1)
    assert rows(T.truth(before, 80, "TCP"))[8] == "XXX......"
    assert rows(T.truth(after, 80, "TCP"))[8] == "........."
    assert rows(T.truth(after, 80, "TCP"))[3] == "XXX......"
    after = case_world("pod-label-change-selects-pod", 1)
    assert [r[1] for r in rows(T.truth(after, 80, "TCP"))] == list("X.XXXXXXX")


def test_table_and_diff_name_the_wrong_cells():
    exp = T.truth(case_world("default-deny-ingress-x"), 80, "TCP")
    obs = dict(T.cells(exp))
    obs[("y/b", "x/c")] = "."
    obs[("x/a", "z/c")] = "?"
    text = T.format_table(obs, "observed 80/TCP")
    assert text.splitlines()[0] == "observed 80/TCP"
    assert text.splitlines()[2].split() == ["x/a", ".", "X", "X", ".", ".", ".", ".", ".", "?"]
    assert T.diff(exp, obs) == ["x/a -> z/c: expected ., observed ?", "y/b -> x/c: expected X, observed ."]


def test_fill_addresses():
    m = T.fill({"cidr": "{net24:y/b}", "except": ["{ip:y/b}/32"]}, IPS)
    assert m == {"cidr": "10.244.1.0/24", "except": ["10.244.1.4/32"]}


def test_cases_cover_the_issue():
    assert len(CASES) >= 40 and len({c.name for c in CASES}) == len(CASES)
    assert set(VM_SUBSET) | set(VM_SUBSET_LONG) <= {c.name for c in CASES}
    text = repr(CASES)
    for feature in ("ipBlock", "except", "endPort", "serve-80-tcp", "matchExpressions", "namespaceSelector",
                    "kubernetes.io/metadata.name", "'UDP'", "policyTypes"):
        assert feature in text, feature
    assert any(len(c.steps) > 1 for c in CASES) and any(c.dns for c in CASES)


# ------------------------------------------------------------------ cross-check with netlab's model

def parsed(w: T.World):
    """The step's manifests through netlab's own parser (spec/kinds/networkpolicy.py): its policies and
    namespace labels, as a lab's model has them."""
    docs = [{"apiVersion": "netlab.dev/v1alpha1", "kind": "Cluster"}]
    docs += [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": dict(labels)}}
             for ns, labels in w.namespaces.items()]
    sc = load_text(yaml.safe_dump_all(docs + list(w.policies)), "<truth case>")
    return sc.policies, sc.namespace_labels


def netlab_cluster(w: T.World):
    def pod(p: T.Pod):
        node = "w1" if p.ip.startswith("10.244.1.") else "w2"
        return SimpleNamespace(namespace=p.namespace, name=p.name, ip=ipaddress.ip_address(p.ip), node=node,
                               labels=dict(p.labels), host_network=False, key=p.key,
                               port_named=lambda n, proto, p=p: (p.ports.get(n) or (None, None))[0]
                               if (p.ports.get(n) or (None, None))[1] == proto else None)
    nodes = [SimpleNamespace(name=f"w{i}", ip=ipaddress.ip_address(f"172.18.0.{10 + i}"),
                             pod_cidr=ipaddress.ip_network(f"10.244.{i}.0/24"),
                             gateway=ipaddress.ip_address(f"10.244.{i}.1")) for i in (1, 2)]
    policies, ns_labels = parsed(w)
    return SimpleNamespace(pods=[pod(p) for p in w.pods.values()], nodes=nodes, policies=policies,
                           namespace_labels=ns_labels)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_oracle_agrees_with_netlab_evaluate(case):
    for i, step in enumerate(case.steps):
        w = world(*step.manifests)
        cl = netlab_cluster(w)
        targets = list(T.MATRIX) + (list(DNS) if case.dns else [])
        checks = list(ALL) + ([(53, "UDP"), (53, "TCP")] if case.dns else [])
        wrong = []
        for port, proto in checks:
            for f in T.MATRIX:
                for t in targets:
                    mine = T.allowed(w, f, t, port, proto)
                    theirs = evaluate.verdict(cl, w.pods[f].ip, w.pods[t].ip, port, proto).allowed
                    if mine != theirs:
                        wrong.append(f"step {i} {port}/{proto} {f} -> {t}: oracle {mine}, evaluate {theirs}")
        assert not wrong, "\n".join(wrong)
