"""Builders of scenario text, shared by the unit and the integration tests.

Each builder returns one Kubernetes-style object as a dict; `text(...)` dumps them as one multi-document
YAML stream (yaml.safe_dump, so names and values are quoted as YAML needs). Keyword arguments that are
not named parameters go into the object's `spec` (or the pod template's spec, or the Cluster's
`networking`), so a test states only what it is about.
"""
from __future__ import annotations

from typing import Any

import yaml


def cluster(name: str | None = "t", nodes: Any = ("control-plane", "worker"), expectations: list | None = None,
            **networking: Any) -> dict:
    """A Cluster document; `nodes` items are a role string or a full node mapping (see workers()).
    name=None leaves the name out (the lab's name then comes from --lab or the test's lab)."""
    doc: dict[str, Any] = {"apiVersion": "netlab.dev/v1alpha1", "kind": "Cluster"}
    if name is not None:
        doc["name"] = name
    if nodes is not None:
        doc["nodes"] = [{"role": n} if isinstance(n, str) else n for n in nodes]
    if networking:
        doc["networking"] = networking
    if expectations is not None:
        doc["expectations"] = expectations
    return doc


def workers(*names: str) -> list[dict]:
    """Worker nodes with these names, for cluster(nodes=...)."""
    return [{"role": "worker", "name": n} for n in names]


def container(name: str = "c", ports: Any = (), **extra: Any) -> dict:
    """A container; `ports` items are a number, (number, name), (number, name, protocol) or a mapping."""
    out: dict[str, Any] = {"name": name}
    plist = []
    for p in ports:
        if isinstance(p, dict):
            plist.append(p)
        elif isinstance(p, int):
            plist.append({"containerPort": p})
        else:
            d = {"containerPort": p[0], "name": p[1]}
            if len(p) > 2:
                d["protocol"] = p[2]
            plist.append(d)
    if plist:
        out["ports"] = plist
    out.update(extra)
    return out


def _meta(name: str, namespace: str | None, labels: dict | None) -> dict:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = labels
    return meta


def pod(name: str = "p", labels: dict | None = None, containers: list | None = None, namespace: str | None = None,
        **spec: Any) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": _meta(name, namespace, labels),
            "spec": dict(spec, containers=containers if containers is not None else [container()])}


def deployment(name: str = "web", replicas: int = 3, labels: dict | None = None, selector: dict | None = None,
               containers: list | None = None, namespace: str | None = None, **template_spec: Any) -> dict:
    labels = labels if labels is not None else {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(name, namespace, None),
            "spec": {"replicas": replicas,
                     "selector": {"matchLabels": selector if selector is not None else dict(labels)},
                     "template": {"metadata": {"labels": labels},
                                  "spec": dict(template_spec,
                                               containers=containers if containers is not None
                                               else [container("app", [(8080, "http")])])}}}


OMIT = object()  # a service() selector that leaves the key out


def service(name: str = "web", ports: Any = ({"port": 80},), selector: Any = "app",
            namespace: str | None = None, labels: dict | None = None, **spec: Any) -> dict:
    """A Service; the default selector is {app: <name>}, None writes `selector: null`, OMIT leaves it out."""
    out = dict(spec, ports=list(ports))
    if selector == "app":
        out["selector"] = {"app": name}
    elif selector is not OMIT:
        out["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, namespace, labels), "spec": out}


def namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def text(*docs: Any) -> str:
    """One YAML stream; str items are pasted as they are (one document each)."""
    parts = []
    for d in docs:
        parts.append(d if isinstance(d, str) else yaml.safe_dump(d, sort_keys=False))
    return "---\n".join(p if p.endswith("\n") else p + "\n" for p in parts)


def lb_granted(scenario):
    """The scenario with each LoadBalancer Service's spec.loadBalancerIP as its
    status.loadBalancer.ingress, as MetalLB's controller (netlab/controllers/lbipam.py) writes it when a
    pool holds the address: what kube-proxy's rules are rendered from (render.services.lb_ingress_ips)."""
    for s in scenario.services:
        if s.type == "LoadBalancer" and s.load_balancer_ip and not s.lb_ingress:
            s.lb_ingress = [{"ip": s.load_balancer_ip, "ipMode": "VIP"}]
    return scenario
