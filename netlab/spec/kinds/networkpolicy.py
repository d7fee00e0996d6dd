"""NetworkPolicy (networking.k8s.io/v1), checked as the API server's validation checks it
(k8s.io/kubernetes pkg/apis/networking/validation, read for facts), into `netpol.policy` objects:

- spec.podSelector is required (`{}` selects every pod of the namespace); label selectors as metav1's:
  matchLabels keys and values valid labels, matchExpressions operators In/NotIn (values required) and
  Exists/DoesNotExist (values forbidden);
- spec.policyTypes: Ingress and/or Egress, each once; absent: Ingress, plus Egress when spec.egress has a
  rule (Kubernetes' defaulting);
- a port: protocol TCP, UDP or SCTP (default TCP); port a number 1-65535 or a container port's name (an
  IANA service name: at most 15 lowercase letters, digits and '-', with a letter, no '--'); endPort only
  with a numeric port and not below it;
- a peer: ipBlock alone, or podSelector and/or namespaceSelector; ipBlock.cidr an IPv4 CIDR (netlab's
  clusters are IPv4; host bits are cleared as the API server's parser does), each `except` a CIDR strictly
  inside it.
Everything is refused before any change, one line per problem naming the document and the field.
"""
from __future__ import annotations

import ipaddress
import re

from ...netpol.policy import (OPERATORS, POLICY_TYPES, PROTOCOLS, IPBlock, LabelSelector, NetworkPolicy, Peer,
                              PolicyPort, Requirement, Rule, default_types)
from ..fields import LABEL_KEY, LABEL_VALUE, Fields, shown
from ..known import KNOWN, _fields
from . import Context, ObjectDoc, object_meta, register

KNOWN.update({
    "NetworkPolicy": _fields("apiVersion kind status", metadata="ObjectMeta", spec="NetworkPolicySpec"),
    "NetworkPolicySpec": _fields("policyTypes", podSelector="PolicyLabelSelector",
                                 ingress="NetworkPolicyIngressRule", egress="NetworkPolicyEgressRule"),
    "NetworkPolicyIngressRule": _fields("", ports="NetworkPolicyPort", **{"from": "NetworkPolicyPeer"}),
    "NetworkPolicyEgressRule": _fields("", ports="NetworkPolicyPort", to="NetworkPolicyPeer"),
    "NetworkPolicyPort": _fields("protocol port endPort"),
    "NetworkPolicyPeer": _fields("", podSelector="PolicyLabelSelector", namespaceSelector="PolicyLabelSelector",
                                 ipBlock="IPBlock"),
    "IPBlock": _fields("cidr except"),
    "PolicyLabelSelector": _fields("", matchLabels=None, matchExpressions="PolicySelectorRequirement"),
    "PolicySelectorRequirement": _fields("key operator values"),
})

_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def selector(f: Fields) -> LabelSelector:
    """A metav1.LabelSelector, validated as the API server does."""
    labels = f.strmap("matchLabels")
    exprs = []
    for e in f.maps("matchExpressions"):
        key = e.str("key", required=True)
        if not LABEL_KEY.match(key):
            raise e.error("key", f"{shown(key)} is not a valid label key",
                          "use an optional DNS prefix and '/', then at most 63 letters, digits, '-', '_', '.'")
        op = e.choice("operator", OPERATORS)
        if op is None:
            raise e.missing("operator", "is required", f"use one of: {', '.join(OPERATORS)}")
        values = e.strlist("values")
        e.done()
        if op in ("In", "NotIn") and not values:
            raise e.error("values", f"must be non-empty when operator is {op}", "list at least one value")
        if op in ("Exists", "DoesNotExist") and values:
            raise e.error("values", f"must be empty when operator is {op}", "remove values")
        for i, v in enumerate(values):
            if not LABEL_VALUE.match(v):
                raise e.error(f"values[{i}]", f"{shown(v)} is not a valid label value",
                              "use at most 63 characters: letters, digits, '-', '_', '.'")
        exprs.append(Requirement(key, op, tuple(values)))
    f.done()
    return LabelSelector(tuple(labels.items()), tuple(exprs))


def _cidr(f: Fields, key: str, value) -> ipaddress.IPv4Network:
    if not isinstance(value, str):
        raise f.error(key, f"must be a string, not {shown(value)}", "write a CIDR like 10.0.0.0/24")
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise f.error(key, f"{shown(value)} is not a valid CIDR", "write a CIDR like 10.0.0.0/24 (address/prefix)") \
            from None
    if net.version != 4:
        raise f.error(key, f"{value} is IPv6", "netlab emulates IPv4 clusters only; use an IPv4 CIDR")
    return net


def ip_block(f: Fields) -> IPBlock:
    cidr = f.raw("cidr")
    if cidr is None:
        raise f.missing("cidr", "is required", "set ipBlock.cidr, e.g. 10.0.0.0/24")
    net = _cidr(f, "cidr", cidr)
    excepts = []
    for i, e in enumerate(f.list("except")):
        ex = _cidr(f, f"except[{i}]", e)
        if not (ex.subnet_of(net) and ex.prefixlen > net.prefixlen):
            raise f.error(f"except[{i}]", f"{e} is not a strict subset of cidr {cidr}",
                          f"use a CIDR inside {net} with a longer prefix, or remove it")
        excepts.append(ex)
    f.done()
    return IPBlock(net, tuple(excepts))


def peer(f: Fields) -> Peer:
    pod_sel = selector(f.map("podSelector")) if f.has("podSelector") else None
    ns_sel = selector(f.map("namespaceSelector")) if f.has("namespaceSelector") else None
    block = ip_block(f.map("ipBlock")) if f.has("ipBlock") else None
    if block is None and pod_sel is None and ns_sel is None:   # (a misspelt key is named as the problem)
        for key in ("podSelector", "namespaceSelector", "ipBlock"):
            if f._typo_of(key):
                raise f.missing(key)
        raise f.error(None, "must specify a peer", "set podSelector, namespaceSelector or ipBlock")
    f.done()
    if block is not None and (pod_sel is not None or ns_sel is not None):
        raise f.error("ipBlock", "may not be specified with podSelector or namespaceSelector",
                      "write the ipBlock as a peer of its own (another '- ipBlock:' entry)")
    return Peer(pod_sel, ns_sel, block)


def port(f: Fields) -> PolicyPort:
    proto = f.choice("protocol", PROTOCOLS, "TCP")
    value = f.raw("port")
    end = f.int("endPort", lo=1, hi=65535)
    f.done()
    if value is None:
        if end is not None:
            raise f.error("endPort", "may not be specified when port is not specified", "set port, or remove endPort")
        return PolicyPort(proto, None, None)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise f.error("port", f"must be a number or a port name, not {shown(value)}", "write e.g. 80 or http")
    if isinstance(value, int):
        if not 1 <= value <= 65535:
            raise f.error("port", f"{value} is out of range 1-65535", "use a number from 1 to 65535")
        if end is not None and end < value:
            raise f.error("endPort", f"{end} is below port {value}", f"use an endPort of at least {value}")
        return PolicyPort(proto, value, end)
    if len(value) > 15 or not _PORT_NAME.match(value) or "--" in value or not re.search(r"[a-z]", value):
        raise f.error("port", f"{shown(value)} is not a valid port name",
                      "use a number, or a container port's name: at most 15 lowercase letters, digits and '-', "
                      "with at least one letter" + (" (write the number without quotes)" if value.isdigit() else ""))
    if end is not None:
        raise f.error("endPort", "may not be specified when port is a name", "use a numeric port, or remove endPort")
    return PolicyPort(proto, value, None)


def rules(spec: Fields, key: str, peers_key: str) -> tuple[Rule, ...]:
    out = []
    for r in spec.maps(key):
        ports = tuple(port(p) for p in r.maps("ports"))
        peers = tuple(peer(p) for p in r.maps(peers_key))
        r.done()
        out.append(Rule(ports, peers))
    return tuple(out)


@register("NetworkPolicy", "networking.k8s.io/v1", order=25)
def parse_networkpolicy(doc: ObjectDoc, ctx: Context) -> None:
    top, meta, name, namespace = object_meta(doc, ctx)
    labels = meta.strmap("labels")
    meta.skip("finalizers", "generateName", "deletionTimestamp")
    meta.done()
    spec = top.map("spec")
    if not spec.has("podSelector"):
        raise spec.missing("podSelector", "is required", "set spec.podSelector ({} selects every pod of the namespace)")
    pod_selector = selector(spec.map("podSelector"))
    types = spec.strlist("policyTypes")
    for i, t in enumerate(types):
        if t not in POLICY_TYPES:
            raise spec.error(f"policyTypes[{i}]", f"{shown(t)} is not a policy type", "use Ingress or Egress")
        if t in types[:i]:
            raise spec.error(f"policyTypes[{i}]", f"repeats {t}", "list each policy type once")
    ingress = rules(spec, "ingress", "from")
    egress = rules(spec, "egress", "to")
    spec.done()
    top.done()
    effective = tuple(t for t in POLICY_TYPES if t in types) if types else default_types(bool(egress))
    uid = str((doc.data.get("metadata") or {}).get("uid") or "")
    ctx.policies.append(NetworkPolicy(namespace, name, pod_selector, effective, ingress, egress, uid,
                                      tuple(labels.items())))


__all__ = ["parse_networkpolicy", "selector"]
