"""NetworkPolicy objects as plain data, and label selectors with Kubernetes' matching rules. Pure.

Parsing and validation (what kubectl and the API server refuse) is `spec/kinds/networkpolicy.py`'s; the
objects here are what it produces, what the model carries (`Cluster.policies`) and what `evaluate` and the
renderers read.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
POLICY_TYPES = ("Ingress", "Egress")
PROTOCOLS = ("TCP", "UDP", "SCTP")
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"   # set on every namespace by the API server


@dataclass(frozen=True)
class Requirement:
    """One matchExpressions entry."""
    key: str
    operator: str            # one of OPERATORS
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        if self.operator == "In":
            return self.key in labels and labels[self.key] in self.values
        if self.operator == "NotIn":
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        raise ValueError(f"unknown selector operator {self.operator!r}")


@dataclass(frozen=True)
class LabelSelector:
    """metav1.LabelSelector: every matchLabels pair and every requirement must hold; the empty selector
    matches everything."""
    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[Requirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.match_labels and not self.match_expressions

    def matches(self, labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels) and \
            all(r.matches(labels) for r in self.match_expressions)

    def text(self) -> str:
        """As kubectl prints a selector (metav1.FormatLabelSelector): its requirements sorted by key (a
        matchLabels pair before an expression of the same key), set values sorted, '<none>' when empty:
        'app=web,tier in (a,b)', '!canary'."""
        reqs = [(k, f"{k}={v}") for k, v in sorted(self.match_labels)]
        for r in self.match_expressions:
            vals = ",".join(sorted(set(r.values)))
            reqs.append((r.key, {"In": f"{r.key} in ({vals})", "NotIn": f"{r.key} notin ({vals})",
                                 "Exists": r.key, "DoesNotExist": f"!{r.key}"}[r.operator]))
        reqs.sort(key=lambda kr: kr[0])
        return ",".join(text for _, text in reqs) or "<none>"

    @classmethod
    def from_manifest(cls, sel: dict) -> "LabelSelector":
        """A manifest's metav1.LabelSelector (already validated, or as stored) as data."""
        exprs = tuple(Requirement(str(e.get("key", "")), str(e.get("operator", "")), tuple(e.get("values") or ()))
                      for e in sel.get("matchExpressions") or [] if isinstance(e, dict))
        return cls(tuple((str(k), str(v)) for k, v in (sel.get("matchLabels") or {}).items()), exprs)


@dataclass(frozen=True)
class IPBlock:
    cidr: ipaddress.IPv4Network
    except_: tuple[ipaddress.IPv4Network, ...] = ()

    def contains(self, ip: ipaddress.IPv4Address) -> bool:
        return ip in self.cidr and not any(ip in e for e in self.except_)


@dataclass(frozen=True)
class Peer:
    """One `from`/`to` entry. Exactly one of the three forms, as the API requires:
    - ip_block alone;
    - pod_selector and/or namespace_selector (both set: pods matching pod_selector in namespaces matching
      namespace_selector; pod_selector alone: pods of the policy's own namespace; namespace_selector alone:
      every pod of the matching namespaces)."""
    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: IPBlock | None = None


@dataclass(frozen=True)
class PolicyPort:
    """One `ports` entry: protocol (default TCP), port (a number, a container port's name, or None for
    every port of the protocol), end_port (with a numeric port: the range port..end_port)."""
    protocol: str = "TCP"
    port: int | str | None = None
    end_port: int | None = None


@dataclass(frozen=True)
class Rule:
    """One ingress or egress rule. `ports` empty: every port and protocol. `peers` empty (the field absent
    or []): every source (ingress) or destination (egress)."""
    ports: tuple[PolicyPort, ...] = ()
    peers: tuple[Peer, ...] = ()


@dataclass(frozen=True)
class NetworkPolicy:
    namespace: str
    name: str
    pod_selector: LabelSelector
    policy_types: tuple[str, ...]          # as effective: the field, or Kubernetes' default (see default_types)
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()
    uid: str = ""
    labels: tuple[tuple[str, str], ...] = field(default=())

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def default_types(has_egress_rules: bool) -> tuple[str, ...]:
    """policyTypes when the field is absent: Ingress always, Egress when the policy has egress rules."""
    return ("Ingress", "Egress") if has_egress_rules else ("Ingress",)
