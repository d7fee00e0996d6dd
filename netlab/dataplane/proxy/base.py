"""What every proxy backend shares: the backend interface, the per-node thread pool."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from ...model.objects import Cluster
from ..changes import Changes

T = TypeVar("T")


class ProxyBackend:
    """One kube-proxy mode. Its iptables chains (if any) come from `node_rules`, which every sync applies;
    `sync` programs whatever else the mode needs (an nftables table, IPVS services...), and `remove`
    deletes those things when the lab switches to another mode."""

    name = ""
    # whether a sync in another mode always looks for this mode's leftovers (else only right after a
    # switch from this mode, or when forced)
    always_remove = False

    def kernel_problem(self, cluster: Cluster) -> str | None:
        """Why the running kernel cannot run the mode, as the one line `up` refuses it with (None: it
        can). Reads what the kernel shows and changes nothing; needs no root, so `validate` asks it too."""
        return None

    def preflight(self, cluster: Cluster) -> None:
        """Fail before any change if this machine cannot run the mode (a missing tool or kernel feature)."""

    def prepare(self, cluster: Cluster, changes: Changes) -> None:
        """Before the iptables sync: what the mode's iptables rules refer to (IPVS mode's ipsets)."""

    def sync(self, cluster: Cluster, changes: Changes, force: bool = False, state: Any = None,
             changed: Any = None, full: bool = False) -> None:
        """Program the mode's non-iptables state on every node. `state`/`changed`: a SyncState the caller
        keeps across syncs and the Services known to have changed (see syncstate.py), for modes that use
        them; `full`: compare everything against the kernel this time (the periodic full sync)."""

    def drift(self, cluster: Cluster, node) -> list[str]:
        """What a sync would change on `node` beyond the iptables rules (read only; [] if nothing)."""
        return []

    def remove(self, cluster: Cluster, changes: Changes) -> None:
        """Remove the mode's non-iptables state from every node (idempotent)."""


def per_node(fn: Callable[[Any], T], nodes: list) -> list[T]:
    """fn(node) for every node, in parallel threads (for work that waits on a process per node)."""
    with ThreadPoolExecutor(max_workers=min(8, len(nodes) or 1)) as pool:
        return list(pool.map(fn, nodes))
