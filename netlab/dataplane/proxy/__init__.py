"""Proxy backends (kube-proxy's modes), one per mode of the registry in netlab.proxymodes.

Every backend syncs one thing per node: the netfilter state that mode needs. flannel's chains are
iptables chains in every mode, so the iptables sync always runs; what it contains depends on the mode
(`netlab.render.iptables.node_rules`). A backend also removes what the *other* modes left, so switching
mode on a running lab (`up --proxy-mode`) leaves no stale rules.

  base.py      ProxyBackend (the interface), per_node
  iptables.py  iptables mode, and sync_iptables: the iptables sync of every mode (with its record)
  nftables.py  nftables mode: table ip kube-proxy, synced by diff (with its record)
  ipvs.py      IPVS mode: kube-ipvs0, ipsets, IPVS virtual servers
  syncstate.py SyncState: what a process keeps between syncs for incremental ones
  record.py    sync records: what netlab last applied, trusted while the node's identity has not moved

A mode's backend module is imported when the mode is first used (netlab.proxymodes makes it).
"""
from __future__ import annotations

import dataclasses
from typing import Collection

from ... import proxymodes
from ...model.objects import Cluster
from ..changes import Changes
from .base import ProxyBackend, per_node
from .iptables import IPTABLES_RECORD_VERSION, iptables_drift, iptables_record_path, sync_iptables
from .syncstate import SyncState

__all__ = ["IPTABLES_RECORD_VERSION", "ProxyBackend", "SyncState", "backend", "iptables_record_path", "per_node",
           "rules_drift", "sync", "sync_iptables"]


_backends: dict[str, ProxyBackend] = {}


def backend(mode: str) -> ProxyBackend:
    """The backend of a mode of netlab.proxymodes (one per mode; an unknown mode lists the valid ones)."""
    b = _backends.get(mode)
    if b is None:
        b = _backends[mode] = proxymodes.get(mode).backend()
    return b


def rules_drift(cluster: Cluster, node, save_cmd: str) -> list[str]:
    """What a sync would change in `node`'s rules (iptables, and the proxy mode's own objects), read only."""
    return iptables_drift(cluster, node, save_cmd) + backend(cluster.networking.proxy_mode).drift(cluster, node)


def sync(cluster: Cluster, restore_cmd: str, save_cmd: str, changes: Changes, force: bool = False,
         previous_mode: str | None = None, fresh: Collection[str] = (), state: SyncState | None = None,
         changed: Collection[str] | None = None, full: bool = False) -> None:
    """Program the cluster's proxy mode on every node and remove what the previous mode left behind.

    The iptables sync comes between `prepare` and `sync`: it needs the ipsets IPVS mode refers to, and
    it drops the old mode's rules before that mode's ipsets are destroyed. `fresh`: the nodes whose
    namespaces this run created, so they hold no rules yet: nothing is read back from them, and no other
    mode's leftovers are looked for in them.
    `state`/`changed`: a SyncState the caller keeps across syncs and the Services known to have changed,
    for incremental syncs (see syncstate.py); without a state, every sync is a full one. `full`: this
    sync reads every node's tables back and compares everything (kube-proxy's periodic full sync, which
    repairs what the fast path's foreign-change detectors cannot see; SyncState.full_sync_period does it
    on a timer instead).
    """
    mode = backend(cluster.networking.proxy_mode)
    mode.prepare(cluster, changes)
    sync_iptables(cluster, restore_cmd, save_cmd, changes, force, fresh, state=state, changed=changed, full=full)
    mode.sync(cluster, changes, force, state=state, changed=changed, full=full)
    older = [n for n in cluster.nodes if n.name not in fresh]
    if state is not None:
        state.leftovers_checked |= {n.name for n in cluster.nodes if n.name in fresh}
    if not older:
        return
    view = dataclasses.replace(cluster, nodes=older)
    # nodes this process has not looked at yet (state: see SyncState.leftovers_checked)
    unseen = older if state is None or full or force else \
        [n for n in older if n.name not in state.leftovers_checked]
    for other in map(backend, proxymodes.names()):
        # nftables' table is cheap to look for, so it is checked once a process; IPVS state only after IPVS mode
        if other is not mode and (other.name == previous_mode or force):
            other.remove(view, changes)
        elif other is not mode and other.always_remove and unseen:
            other.remove(dataclasses.replace(cluster, nodes=unseen), changes)
    if state is not None:
        state.leftovers_checked |= {n.name for n in unseen}
