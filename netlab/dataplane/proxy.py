"""Proxy backends (kube-proxy's modes) behind a small registry.

Every backend syncs one thing per node: the netfilter state that mode needs. flannel's chains are
iptables chains in every mode, so the iptables sync always runs; what it contains depends on the mode
(`netlab.render.iptables.node_rules`). A backend also removes what the *other* modes left, so switching
mode on a running lab (`up --proxy-mode`) leaves no stale rules.
"""
from __future__ import annotations

from ..errors import UsageError
from ..model.objects import Cluster
from ..render.iptables import node_rules
from . import iptables, nsfs
from .fabric import Changes


class ProxyBackend:
    """One kube-proxy mode. Its iptables chains (if any) come from `node_rules`, which every sync applies;
    `sync` programs whatever else the mode needs (an nftables table, IPVS services...), and `remove`
    deletes those things when the lab switches to another mode."""

    name = ""

    def preflight(self, cluster: Cluster) -> None:
        """Fail before any change if this machine cannot run the mode (a missing tool or kernel feature)."""

    def sync(self, cluster: Cluster, changes: Changes, force: bool = False) -> None:
        """Program the mode's non-iptables state on every node."""

    def remove(self, cluster: Cluster, changes: Changes) -> None:
        """Remove the mode's non-iptables state from every node (idempotent)."""


class IptablesProxy(ProxyBackend):
    """kube-proxy's iptables mode: everything is in the iptables chains that `node_rules` renders."""

    name = "iptables"


PROXIES: dict[str, ProxyBackend] = {"iptables": IptablesProxy()}


def backend(mode: str) -> ProxyBackend:
    b = PROXIES.get(mode)
    if b is None:
        raise UsageError(f"kube-proxy mode {mode!r} is not available in this version of netlab; "
                         f"available: {', '.join(sorted(PROXIES))}")
    return b


def sync(cluster: Cluster, restore_cmd: str, save_cmd: str, changes: Changes, force: bool = False) -> None:
    """Program the cluster's proxy mode on every node and remove what other modes left behind."""
    mode = backend(cluster.networking.proxy_mode)
    sync_iptables(cluster, restore_cmd, save_cmd, changes, force)
    mode.sync(cluster, changes, force)
    for other in PROXIES.values():
        if other is not mode:
            other.remove(cluster, changes)


def sync_iptables(cluster: Cluster, restore_cmd: str, save_cmd: str, changes: Changes, force: bool = False) -> None:
    """One iptables-save and (if anything differs) one iptables-restore --noflush per node, nodes in parallel."""
    pending = []
    for node in cluster.nodes:
        path = nsfs.netns_path(node.netns)
        current = iptables.parse_save(iptables.save(path, save_cmd))
        payload, what = iptables.plan_restore(node_rules(cluster, node), current, force=force)
        if payload:
            pending.append((node, iptables.restore_async(path, restore_cmd, payload), payload, what))
    for node, proc, payload, what in pending:
        iptables.finish_restore(proc, payload, node.netns)
        for w in what:
            changes.add(f"{node.netns}: iptables {w}")
