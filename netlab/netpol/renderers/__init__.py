"""NetworkPolicy renderers: how the policies of `Cluster.policies` become rules in a node's netfilter tables.

Every module of this package (but those whose name starts with "_") is one renderer and defines
`RENDERER = PolicyRenderer(...)`: its name (what the Cluster setting `networking.networkPolicyRenderer`
names), the tables it adds to a node (a pure function of the model, merged by `render.iptables.node_rules`
into the node's one iptables sync) and what those tables depend on (the incremental sync's cache key).
Adding a renderer is adding a file here; `names()` then lists it and the Cluster parser accepts it.

Like `netlab.proxymodes`, the registry is read when the spec types load, so a renderer module imports
nothing heavy at load time; modules are found by name (netlab/registry.py: pkgutil, importlib).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from ...errors import UsageError
from ...registry import discover

if TYPE_CHECKING:
    from ...model.objects import Cluster, Node
    from ...render.tables import Desired

DEFAULT = "iptables"


@dataclass(frozen=True)
class PolicyRenderer:
    name: str                       # as `networking.networkPolicyRenderer` spells it
    order: int                      # position in listings; the default comes first
    tables: Callable[["Cluster", "Node"], "Desired"]    # table -> chains and jumps of the policies on a node
    basis: Callable[["Cluster", "Node"], tuple]         # what `tables` reads (equal basis: equal tables)


_renderers: dict[str, PolicyRenderer] | None = None


def renderers() -> dict[str, PolicyRenderer]:
    """name -> renderer, in listing order (found once, on first use)."""
    global _renderers
    if _renderers is None:
        _renderers = discover(__name__, __path__, "RENDERER", PolicyRenderer, "NetworkPolicy renderers")
    return _renderers


def names() -> tuple[str, ...]:
    """The renderers' names, in listing order."""
    return tuple(renderers())


def get(name: str) -> PolicyRenderer:
    """The renderer called `name`; an unknown name is refused with the list of the valid ones."""
    r = renderers().get(name)
    if r is None:
        raise UsageError(f"NetworkPolicy renderer {name!r} is not available in this version of netlab; "
                         f"available: {', '.join(names())}")
    return r


def of(cluster: Cluster) -> PolicyRenderer:
    """The cluster's renderer (`networking.networkPolicyRenderer`, default iptables)."""
    return get(getattr(cluster.networking, "policy_renderer", None) or DEFAULT)
