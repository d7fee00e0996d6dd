"""kube-proxy's iptables mode, and the iptables sync that every mode runs.

flannel's chains are iptables chains in every mode, so `sync_iptables` applies each node's
`render.iptables.node_rules` whatever the mode; in iptables mode those rules are all the proxy has.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Collection

from ...errors import KernelError
from ...model.objects import Cluster
from ...render.iptables import node_rules
from .. import iptables, layout, nsfs
from ..changes import Changes
from .base import ProxyBackend, gc_paused, per_node
from .record import node_identity, read_record, unlink, write_record


class IptablesProxy(ProxyBackend):
    """kube-proxy's iptables mode: everything is in the iptables chains that `node_rules` renders."""

    name = "iptables"


def _tables_shaped(data: Any) -> bool:
    """Whether a record's data has parse_save's shape (table -> chain -> rule lines)."""
    return isinstance(data, dict) and all(
        isinstance(chains, dict) and all(isinstance(rules, list) and all(isinstance(r, str) for r in rules)
                                         for rules in chains.values())
        for chains in data.values())


def iptables_record_path(lab: str, node: str) -> str:
    return layout.iptables_record(lab, node)


IPTABLES_RECORD_VERSION = 1


def _generation_counted(iptables_cmd: str) -> bool:
    """Whether this iptables flavour commits through nf_tables (so its commits move node_identity)."""
    return "-nft-" in iptables_cmd


def _iptables_current(node, save_cmd: str, record: str | None,
                      fresh: bool = False) -> tuple[tuple[int, int] | None, dict, bool]:
    """(identity, the node's tables in parse_save's shape, whether they came from the record): the record
    while it can be trusted (nft flavour, nothing committed since), else iptables-save. The identity is
    read before the tables, so a commit in between shows as a moved identity. `fresh`: a namespace this
    run created, known to hold no rules."""
    ident = node_identity(node.netns) if _generation_counted(save_cmd) else None
    if fresh:
        return ident, {}, False
    data = read_record(record, ident, IPTABLES_RECORD_VERSION)
    if _tables_shaped(data):
        return ident, data, True
    return ident, iptables.parse_save(iptables.save(nsfs.netns_path(node.netns), save_cmd)), False


def iptables_drift(cluster: Cluster, node, save_cmd: str) -> list[str]:
    """What a sync would change in `node`'s iptables rules, read only. The tables come from the sync record
    where a sync would trust it (see sync_iptables), else the kernel."""
    _, current, _ = _iptables_current(node, save_cmd, iptables_record_path(cluster.name, node.name))
    _, what = iptables.plan_restore(node_rules(cluster, node), current)
    return [f"iptables {w}" for w in what]


@gc_paused
def sync_iptables(cluster: Cluster, restore_cmd: str, save_cmd: str, changes: Changes, force: bool = False,
                  fresh: Collection[str] = (), record: Callable[[Any], str | None] | None = None) -> int:
    """One iptables-save and (if anything differs) one iptables-restore --noflush per node, nodes in parallel.
    Returns the number of lines sent to iptables-restore, all nodes together (0: nothing differed).

    Nodes in `fresh` (namespaces created by this run) are known to be empty: not read back. With the nft
    flavour, a node's tables as of netlab's last sync are kept in a record (`record(node)` is its path;
    default: the lab's run directory) with the node's identity (`node_identity`); while that identity
    has not moved, nothing has changed the node's tables since, and the record stands in for
    iptables-save. iptables-legacy has no such counter: its tables are always read back."""
    if record is None:
        record = lambda node: iptables_record_path(cluster.name, node.name)  # noqa: E731

    def read(node) -> tuple[tuple[int, int] | None, dict, bool]:
        # force: neither the record nor the knowledge that a new namespace is empty is used
        return _iptables_current(node, save_cmd, None if force else record(node),
                                 fresh=node.name in fresh and not force)

    def commits(payload: str) -> int:
        return sum(1 for line in payload.splitlines() if line == "COMMIT")

    pending, sent = [], 0
    for node, (ident, current, trusted) in zip(cluster.nodes, per_node(read, cluster.nodes)):
        desired = node_rules(cluster, node)
        payload, what = iptables.plan_restore(desired, current, force=force)
        if payload:
            proc = iptables.restore_async(nsfs.netns_path(node.netns), restore_cmd, payload)
            pending.append((node, proc, payload, what, ident, current, desired, trusted))
        elif not trusted:
            write_record(record(node), ident, IPTABLES_RECORD_VERSION, lambda current=current: current)
    for node, proc, payload, what, ident, current, desired, trusted in pending:
        # the next record, made while the restore runs (only kept if the restore succeeds)
        encoded = json.dumps(iptables.after_restore(desired, current)) if ident is not None else ""
        try:
            iptables.finish_restore(proc, payload, node.netns)
        except KernelError:
            unlink(record(node))
            if not trusted:
                raise
            # the record did not match the kernel after all: read the tables back and try once more
            ident, current, _ = _iptables_current(node, save_cmd, None)
            payload, what = iptables.plan_restore(desired, current, force=force)
            if payload:
                iptables.finish_restore(iptables.restore_async(nsfs.netns_path(node.netns), restore_cmd, payload),
                                        payload, node.netns)
            encoded = json.dumps(iptables.after_restore(desired, current)) if ident is not None else ""
        sent += payload.count("\n")
        after = node_identity(node.netns) if ident is not None else None
        # trust the record next time only if our own commits (one per table) were the only ones in between
        expected = None if ident is None else (ident[0], ident[1] + commits(payload))
        write_record(record(node), after if after is not None and after == expected else None,
                     IPTABLES_RECORD_VERSION, encoded)
        for w in what:
            changes.add(f"{node.netns}: iptables {w}")
    return sent
