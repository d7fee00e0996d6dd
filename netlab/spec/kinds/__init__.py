"""Kind parsers: one module per kind, each registering the (apiVersion(s), kind) it parses.

A new kind is a new module in this package that calls `register`; `parse.py` finds it here and needs
no change. A parser gets the document (`ObjectDoc`) and the `Context` that collects the scenario's
objects; objects with metadata use `object_meta` for the checks every Kubernetes object shares.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable

from ...errors import SpecError
from ..fields import Fields
from ..types import DeploymentSpec, EndpointSliceSpec, ExpectSpec, Networking, NodeSpec, PodSpec, ServiceSpec


@dataclass
class ObjectDoc:
    """One object of the scenario: its mapping, how errors name it, its document's place in the file."""
    data: dict
    where: str
    index: int


@dataclass
class Context:
    """What the kind parsers have found so far. The Cluster document is parsed first (the others need
    its networking); `seen` finds an object defined twice."""
    ignored: list[str]
    name: str = "netlab"
    nodes: list[NodeSpec] = field(default_factory=list)
    networking: Networking | None = None
    expectations: list[ExpectSpec] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    pods: list[PodSpec] = field(default_factory=list)
    deployments: list[DeploymentSpec] = field(default_factory=list)
    services: list[ServiceSpec] = field(default_factory=list)
    replicasets: list[DeploymentSpec] = field(default_factory=list)   # standalone ones (no Deployment)
    inert: list[str] = field(default_factory=list)    # ConfigMap, Secret...: stored, not used (kinds/inert.py)
    addons: list[str] = field(default_factory=list)   # add-ons' custom resources: stored, not emulated
    slices: list[EndpointSliceSpec] = field(default_factory=list)
    statefulsets: list = field(default_factory=list)   # StatefulSetSpec (kinds/statefulset.py)
    # (where, path, PodTemplate) of workloads whose pods only a live lab's controllers make (DaemonSet,
    # Job, CronJob): `validate` and `up` check their containers' commands (model/preflight.py)
    templates: list = field(default_factory=list)
    seen: dict[tuple, str] = field(default_factory=dict)
    lb_pools: list = field(default_factory=list)    # MetalLB IPAddressPools read so far (kinds/metallb.py)
    # (where, document) of objects the Cluster document stands for (its `loadBalancer:` shorthand):
    # parsed as written ones are, after it, and appended to the scenario's documents
    generated: list = field(default_factory=list)
    problems: list[SpecError] = field(default_factory=list)   # reported together at the end
    policies: list = field(default_factory=list)      # netpol.policy.NetworkPolicy (kinds/networkpolicy.py)
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)   # Namespace docs' labels
    limits: Any = None   # capacity.MachineLimits: what this machine holds (None: only the kernel's constants)


@dataclass(frozen=True)
class KindParser:
    kind: str
    api_versions: tuple[str, ...]
    parse: Callable[[ObjectDoc, Context], None]
    order: int                 # where the kind is listed in messages (and Cluster, 0, is parsed first)
    cluster: bool = False      # the one document that describes the cluster itself
    listed: bool = True        # named in the "netlab understands ..." message (add-ons' kinds are not)


REGISTRY: dict[str, KindParser] = {}


def register(kind: str, *api_versions: str, order: int = 100, cluster: bool = False, listed: bool = True):
    """Decorator: `parse(doc, ctx)` parses documents of `kind` with one of `api_versions`."""
    def deco(fn: Callable[[ObjectDoc, Context], None]):
        REGISTRY[kind] = KindParser(kind, tuple(api_versions), fn, order, cluster, listed)
        return fn
    return deco


def registered() -> list[KindParser]:
    return sorted(REGISTRY.values(), key=lambda k: (k.order, k.kind))


def kinds_text() -> str:
    """The kinds netlab understands, as messages list them."""
    return ", ".join(k.kind for k in registered() if k.listed) + " (or a List of them)"


def object_meta(doc: ObjectDoc, ctx: Context, namespaced: bool = True) -> tuple[Fields, Fields, str, str | None]:
    """The checks every Kubernetes object shares: metadata.name (and namespace), each object once.
    Returns the document's and its metadata's Fields (still open: the kind parser reads on and calls
    done()), the name and the namespace (None for a cluster-scoped kind)."""
    top = Fields(doc.data, doc.where, "", ctx.ignored, doc.data.get("kind"), ctx.problems)
    top.skip("apiVersion", "kind", "status")
    meta = top.map("metadata")
    kind = doc.data.get("kind")
    name = meta.name("name", subdomain=kind != "Namespace")
    namespace = meta.name("namespace", required=False, default="default") if namespaced else None
    meta.skip("annotations", "uid", "resourceVersion", "creationTimestamp", "generation", "managedFields",
              "selfLink", "ownerReferences")
    key = (kind, namespace, name)
    if key in ctx.seen:
        raise SpecError(doc.where, f"is defined twice (also {ctx.seen[key]})", "give each object its own name")
    ctx.seen[key] = doc.where
    return top, meta, name, namespace


class Reported(SpecError):
    """Raised by a kind parser once the problems of a document are in `Context.problems` already: the
    document is not used, and nothing more is said about it."""

    def __init__(self) -> None:
        super().__init__("", "problems reported")


def attempt(problems: list[SpecError], fn: Callable, *args):
    """fn(*args), or None once its SpecError is added to `problems` (so the next part is still checked)."""
    try:
        return fn(*args)
    except Reported:
        return None
    except SpecError as e:
        problems.append(e)
        return None


def _load_all() -> None:
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")


_load_all()

__all__ = ["Reported", "attempt", "Context", "KindParser", "ObjectDoc", "REGISTRY", "kinds_text", "object_meta", "register",
           "registered"]
