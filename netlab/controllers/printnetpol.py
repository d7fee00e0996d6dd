"""kubectl's output for NetworkPolicy, as pure functions: `get netpol` (NAME, POD-SELECTOR, AGE), `get ns`
(NAME, STATUS, AGE: the namespaces whose labels policies select by) and `describe netpol` (identity, then the spec as kubectl words it: which pods, whether ingress and egress
are affected, each rule's ports and peers, the policy types).

Facts from kubectl's NetworkPolicy printer and describer (read, not copied): selectors are printed as
metav1.FormatLabelSelector prints them (requirements sorted by key, set values sorted, `<none>` for the
empty selector); `Created on:` is the creation time as Go prints a time (`2026-12-01 05:31:00 +0000
UTC`); the last-applied-configuration annotation is not shown; a port without a number is printed as
Go prints a nil port (`<nil>/UDP`); a port with endPort is a `To Port Range`.

`describe` reads the policy as the spec parser produced it (netlab/netpol/policy.py: a NetworkPolicy
with its effective policyTypes) and the store object for the metadata.
"""
from __future__ import annotations

import datetime as dt

from netlab.controllers.printers import _field, _labels, _map, age
from netlab.store.meta import parse_time
from netlab.netpol.policy import LabelSelector

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
HEADER = ["NAME", "POD-SELECTOR", "AGE"]


# ------------------------------------------------------------------ selectors

def selector_text(sel) -> str:
    """A label selector as kubectl prints it (netpol.policy.LabelSelector.text): a metav1.LabelSelector as a
    dict (a manifest's) or a LabelSelector; `<none>` when it is empty (or absent)."""
    if sel is None:
        return "<none>"
    if isinstance(sel, dict):
        sel = LabelSelector.from_manifest(sel)
    return sel.text()


# ------------------------------------------------------------------ get

def netpol_row(obj: dict, now: float) -> list[str]:
    """`kubectl get netpol`: NAME, POD-SELECTOR (`<none>` for the empty selector: every pod), AGE."""
    return [obj["metadata"]["name"], selector_text((obj.get("spec") or {}).get("podSelector")), age(obj, now)]


def table(objects: list[dict], now: float, show_labels: bool = False) -> list[list[str]]:
    """Header and rows of `kubectl get netpol` (by namespace, then name; -o wide adds no column)."""
    objects = sorted(objects, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
    rows = [list(HEADER) + (["LABELS"] if show_labels else [])]
    rows += [netpol_row(o, now) + ([_labels(o)] if show_labels else []) for o in objects]
    return rows


def namespace_table(objects: list[dict], now: float, show_labels: bool = False) -> list[list[str]]:
    """`kubectl get namespaces`: NAME, STATUS (Active, Terminating while deleted), AGE; --show-labels
    shows the labels NetworkPolicies' namespaceSelectors match."""
    rows = [["NAME", "STATUS", "AGE"] + (["LABELS"] if show_labels else [])]
    for o in sorted(objects, key=lambda o: o["metadata"]["name"]):
        status = "Terminating" if o["metadata"].get("deletionTimestamp") else \
            (o.get("status") or {}).get("phase") or "Active"
        rows.append([o["metadata"]["name"], status, age(o, now)] + ([_labels(o)] if show_labels else []))
    return rows


# ------------------------------------------------------------------ describe

def _created_on(ts: str | None) -> str:
    t = parse_time(ts)
    if t is None:
        return "<unknown>"
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def _port_text(p) -> str:
    port = "<nil>" if p.port is None else str(p.port)
    if p.end_port is not None:
        return f"To Port Range: {port}-{p.end_port}/{p.protocol}"
    return f"To Port: {port}/{p.protocol}"


def _rules(lines: list[str], rules, peer_word: str, isolated: str, unrestricted: str) -> None:
    ind = "    "
    if not rules:
        lines.append(f"{ind}<none> (Selected pods are isolated for {isolated} connectivity)")
        return
    for i, rule in enumerate(rules):
        if not rule.ports:
            lines.append(f"{ind}To Port: <any> (traffic allowed to all ports)")
        lines += [ind + _port_text(p) for p in rule.ports]
        if not rule.peers:
            lines.append(f"{ind}{peer_word}: <any> (traffic not restricted by {unrestricted})")
        for peer in rule.peers:
            lines.append(f"{ind}{peer_word}:")
            if peer.namespace_selector is not None:
                lines.append(f"{ind}  NamespaceSelector: {selector_text(peer.namespace_selector)}")
            if peer.pod_selector is not None:
                lines.append(f"{ind}  PodSelector: {selector_text(peer.pod_selector)}")
            if peer.ip_block is not None and peer.pod_selector is None and peer.namespace_selector is None:
                lines.append(f"{ind}  IPBlock:")
                lines.append(f"{ind}    CIDR: {peer.ip_block.cidr}")
                lines.append(f"{ind}    Except: {', '.join(str(e) for e in peer.ip_block.except_)}".rstrip())
        if i != len(rules) - 1:
            lines.append(f"{ind}----------")


def policy_of(obj: dict):
    """The netpol.policy.NetworkPolicy of a stored NetworkPolicy, read by the same parser as a scenario's
    (spec/kinds/networkpolicy.py; the store holds only what it accepted)."""
    from netlab.spec.kinds import REGISTRY, Context, ObjectDoc
    md = obj["metadata"]
    doc = {k: v for k, v in obj.items() if k != "status"}
    doc["metadata"] = {k: md[k] for k in ("name", "namespace", "labels", "annotations") if k in md}
    ctx = Context(ignored=[])
    REGISTRY["NetworkPolicy"].parse(ObjectDoc(doc, f"NetworkPolicy {md.get('namespace', 'default')}/{md['name']}",
                                              0), ctx)
    if ctx.problems:
        raise ctx.problems[0]
    return ctx.policies[-1]


def describe_networkpolicy(obj: dict, policy) -> str:
    """`kubectl describe networkpolicy NAME`: `obj` is the stored object (its metadata), `policy` the
    netpol.policy.NetworkPolicy parsed from it (its spec, with the effective policyTypes)."""
    md = obj["metadata"]
    lines: list[str] = []
    w = 14
    _field(lines, "Name", md["name"], w)
    _field(lines, "Namespace", md.get("namespace", "default"), w)
    _field(lines, "Created on", _created_on(md.get("creationTimestamp")), w)
    _field(lines, "Labels", _map(md.get("labels")), w)
    _field(lines, "Annotations", _map({k: v for k, v in (md.get("annotations") or {}).items() if k != LAST_APPLIED},
                                      ": "), w)
    lines.append("Spec:")
    if policy.pod_selector.empty:
        lines.append("  PodSelector:     <none> (Allowing the specific traffic to all pods in this namespace)")
    else:
        lines.append(f"  PodSelector:     {selector_text(policy.pod_selector)}")
    if "Ingress" in policy.policy_types:
        lines.append("  Allowing ingress traffic:")
        _rules(lines, policy.ingress, "From", "ingress", "source")
    else:
        lines.append("  Not affecting ingress traffic")
    if "Egress" in policy.policy_types:
        lines.append("  Allowing egress traffic:")
        _rules(lines, policy.egress, "To", "egress", "destination")
    else:
        lines.append("  Not affecting egress traffic")
    # as the stored spec lists them (the API server keeps the order written; absent: its defaults)
    written = (obj.get("spec") or {}).get("policyTypes")
    types = written if isinstance(written, list) and set(written) == set(policy.policy_types) else policy.policy_types
    lines.append(f"  Policy Types: {', '.join(types)}")
    return "\n".join(lines)


__all__ = ["HEADER", "selector_text", "netpol_row", "table", "namespace_table", "policy_of", "describe_networkpolicy"]
