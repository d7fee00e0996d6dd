"""Scenarios for the spec and model unit tests: the builders of tests/builders.py (re-exported here),
`load(...)` to parse their text and `cluster_of(...)` to parse and build it, `state_of(...)` for the
previous allocations `build` takes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from netlab.model.build import build
from netlab.model.objects import Cluster
from netlab.spec.parse import load_text
from netlab.spec.types import Scenario

from ..builders import (OMIT, cluster, container, deployment, namespace, pod, service, text,  # noqa: F401
                        workers)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SCENARIO = REPO / "netlab" / "data" / "default.yaml"


def load(*docs: Any) -> Scenario:
    return load_text(text(*docs))


def cluster_of(*docs: Any, prev: dict | None = None) -> Cluster:
    return build(load(*docs), prev)


def state_of(c: Cluster) -> dict:
    """The previous-allocation dict `build` takes, as the lab's state file records it."""
    return {
        "nodes": {n.name: {"ip": str(n.ip), "podCIDR": str(n.pod_cidr)} for n in c.nodes},
        "pods": {p.key: {"node": p.node, "ip": str(p.ip), "uid": p.uid} for p in c.pods},
        "ipam": dict(c.ipam_last),
        "services": {s.key: {"clusterIP": str(s.cluster_ip) if s.cluster_ip else None,
                             "nodePorts": {f"{p.name or ''}/{p.protocol}": p.node_port
                                           for p in s.ports if p.node_port},
                             "healthCheckNodePort": s.health_check_node_port}
                     for s in c.services},
    }
