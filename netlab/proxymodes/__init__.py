"""kube-proxy's modes: the one registry that the CLI, the scenario parser, the renderer and the dataplane read.

Every module of this package (but those whose name starts with "_") is one mode and defines
`MODE = ProxyMode(...)`: its name, where it is listed, the iptables chains it adds to a node, what
`netlab render` prints for it after the iptables payload, and its dataplane backend. Adding a mode is
adding a file here (next to the renderer and the backend it points to); `names()` then lists it in
`--proxy-mode`, `networking.kubeProxyMode` accepts it, and `up` programs it.

The registry is read when the CLI starts (click's choices), so a mode module imports nothing at load
time: its functions import the renderer or the kernel layer when they are called. Modules are found by
name (netlab/registry.py: pkgutil, importlib), so this package imports none of them itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from ..errors import UsageError
from ..registry import discover

if TYPE_CHECKING:
    from ..dataplane.proxy.base import ProxyBackend
    from ..model.objects import Cluster, Node
    from ..render.tables import Desired


@dataclass(frozen=True)
class ProxyMode:
    name: str                       # as `kubeProxyMode` and `--proxy-mode` spell it
    order: int                      # position in listings (help, error messages); the default comes first
    backend: Callable[[], "ProxyBackend"]                         # a new dataplane backend for the mode
    iptables: Callable[["Cluster", "Node"], "Desired"] | None = None   # the mode's iptables chains on a node
    render: Callable[["Cluster", "Node"], str] | None = None      # `netlab render`: what follows the payload
    # what the mode cannot enforce ("NetworkPolicy", "loadBalancerSourceRanges"): a scenario that has it is
    # refused (model/preflight.check_proxy_mode), never run with the protection silently missing
    unenforced: tuple[str, ...] = ()


_modes: dict[str, ProxyMode] | None = None


def modes() -> dict[str, ProxyMode]:
    """name -> mode, in listing order (found once, on first use)."""
    global _modes
    if _modes is None:
        _modes = discover(__name__, __path__, "MODE", ProxyMode, "proxy modes")
    return _modes


def names() -> tuple[str, ...]:
    """The modes' names, in listing order."""
    return tuple(modes())


def get(name: str) -> ProxyMode:
    """The mode called `name`; an unknown name is refused with the list of the valid ones."""
    mode = modes().get(name)
    if mode is None:
        raise UsageError(f"kube-proxy mode {name!r} is not available in this version of netlab; "
                         f"available: {', '.join(names())}")
    return mode
