"""kube-proxy's iptables mode, and the iptables sync that every mode runs.

flannel's chains are iptables chains in every mode, so `sync_iptables` applies each node's
`render.iptables.node_rules` whatever the mode; in iptables mode those rules are all the proxy has.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Collection

from ...errors import KernelError
from ...gcpause import gc_paused
from ...model.objects import Cluster
from ...netpol import renderers as policy_renderers
from ...render.hostport import basis as hostport_basis
from ...render.iptables import node_rules
from ...render.kubeproxy_iptables import changed_chains, kube_proxy_tables, service_pieces
from .. import iptables, layout, nsfs, xtables_info
from ..changes import Changes
from .base import ProxyBackend
from .record import legacy_identity, node_identity, read_record, unlink, write_record
from .syncstate import SyncState


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
                  fresh: Collection[str] = (), record: Callable[[Any], str | None] | None = None,
                  state: SyncState | None = None, changed: Collection[str] | None = None, full: bool = False) -> int:
    """One iptables-save and (if anything differs) one iptables-restore --noflush per node, nodes in parallel.
    Returns the number of lines sent to iptables-restore, all nodes together (0: nothing differed).

    Nodes in `fresh` (namespaces created by this run) are known to be empty: not read back. With the nft
    flavour, a node's tables as of netlab's last sync are kept in a record (`record(node)` is its path;
    default: the lab's run directory) with the node's identity (`node_identity`); while that identity
    has not moved, nothing has changed the node's tables since, and the record stands in for
    iptables-save. iptables-legacy has no such counter: its tables are read back (no record file).

    `state` (a SyncState the caller keeps across syncs, see syncstate.py): iptables mode renders only the
    Services whose content changed, and while the node's identity is the one recorded in `state` after
    its last sync, only those Services' chains and the shared ones are compared, against the tables kept
    in `state` (no iptables-save, no record file). The identity is the nf_tables generation with the nft
    flavour; with iptables-legacy, the shape of every legacy table (`record.legacy_identity`, see
    dataplane/xtables_info.py: a rule added or removed by hand moves it; a same-size rewrite in place
    waits for the periodic full sync). `changed`: the keys of the Services that may have changed (the
    others are not compared; see ServiceMemo.pieces). `full`: this sync reads every node's tables back
    and compares everything (kube-proxy's periodic full sync; what SyncState.full_sync_period does on a
    timer), without `force`'s rewriting of every chain."""
    if record is None:
        record = lambda node: iptables_record_path(cluster.name, node.name)  # noqa: E731
    keep = state is not None             # else nothing is kept: no memo (its content keys would be wasted)
    if state is None:
        state = SyncState()
    hint = None if changed is None else set(changed)
    iptables_mode = cluster.networking.proxy_mode == "iptables"
    counted = _generation_counted(save_cmd)      # else iptables-legacy: the tables' shapes stand for it

    def ident_of(node) -> tuple | None:
        return node_identity(node.netns) if counted else legacy_identity(node.netns)

    def file_ident(ident: tuple | None) -> tuple | None:
        return ident if counted else None        # iptables-legacy keeps no record file

    for node in cluster.nodes:
        state.node(node.name)       # made here, not in the reading threads

    def read(node) -> tuple[tuple[int, int] | None, dict, bool, bool]:
        """(identity, tables, trusted, whether they are the in-memory record of `state`)"""
        ns = state.node(node.name)
        if not force and not full and ns.ipt_tables is not None and ns.ipt_ident is not None \
                and not state.full_due(ns, "iptables") and ident_of(node) == ns.ipt_ident:
            return ns.ipt_ident, ns.ipt_tables, True, True
        ns.forget_iptables()
        if counted:
            # force: neither the record nor the knowledge that a new namespace is empty is used
            return (*_iptables_current(node, save_cmd, None if force or full else record(node),
                                       fresh=node.name in fresh and not force), False)
        # iptables-legacy: the shapes read before the tables, kept only if they are those tables' shapes
        # (else something changed in between, and the next sync reads back again)
        shapes = legacy_identity(node.netns)
        _, current, _ = _iptables_current(node, save_cmd, None, fresh=node.name in fresh and not force)
        if shapes is not None and not xtables_info.holds(shapes[1], current):
            shapes = None
        return shapes, current, False, False

    def commits(payload: str) -> int:
        return sum(1 for line in payload.splitlines() if line == "COMMIT")

    def basis(node) -> tuple:
        """What node_rules reads in iptables mode apart from the Services (flannel's chains, the memo's
        context, the NetworkPolicy chains' inputs): while it and every Service's memo entry are unchanged, so
        is the whole render."""
        policy = policy_renderers.of(cluster)
        return (cluster.networking.proxy_mode, str(cluster.networking.pod_subnet), str(node.pod_cidr), node.name,
                hostport_basis(cluster, node), policy.name, policy.basis(cluster, node))

    def render(node, before: dict):
        """The node's rules, or None when they are the ones of the node's last sync (iptables mode, no
        Service rendered again, added or removed, the same basis): the caller renders them only if it
        cannot use its record."""
        ns = state.node(node.name)
        if not iptables_mode:
            return node_rules(cluster, node, None)
        if not keep:
            return node_rules(cluster, node, kube_proxy_tables(cluster, node))
        # a full sync also checks the caller's hint: every Service's content is compared
        only = None if force or full or state.full_due(ns, "iptables") else hint
        same_basis = ns.ipt_tables is not None and ns.ipt_basis == basis(node)
        if same_basis and only is not None and not only and ns.ipt_nservices == len(cluster.services):
            return None    # told that no Service changed (nor came or went: the count is the same)
        ns.ipt_nservices = len(cluster.services)
        pieces = service_pieces(cluster, node, ns.ipt_memo, only)
        after = ns.ipt_memo.entries
        if same_basis and len(after) == len(before) \
                and all(after.get(k) is v for k, v in before.items()):
            return None
        return node_rules(cluster, node, kube_proxy_tables(cluster, node, pieces=pieces))

    # the memo as it was, for the chains of the Services rendered again
    befores = [dict(state.node(node.name).ipt_memo.entries) if keep else {} for node in cluster.nodes]
    with ThreadPoolExecutor(max_workers=min(8, len(cluster.nodes) or 1)) as pool:
        reading = [pool.submit(read, node) for node in cluster.nodes]
        desireds = [render(node, before) for node, before in zip(cluster.nodes, befores)]  # while iptables-save runs
        reads = [f.result() for f in reading]
    pending, sent = [], 0
    for node, before, desired, (ident, current, trusted, memory) in zip(cluster.nodes, befores, desireds, reads):
        ns = state.node(node.name)
        if desired is None and memory:
            state.counted(ns, "iptables", full=False)
            continue               # nothing changed in the model, nobody else changed the tables: nothing to do
        if desired is None:
            desired = node_rules(cluster, node, kube_proxy_tables(cluster, node, memo=ns.ipt_memo, changed=set()))
        if memory:
            # only the chains of the Services rendered again, and every chain that is not a Service's
            scope = changed_chains(before, ns.ipt_memo.entries) if iptables_mode else None
            want = desired if scope is None else iptables.scoped(desired, scope)
            have = current if scope is None else iptables.scoped(current, scope)
            payload, what = iptables.plan_restore(want, have)
        else:
            want, have = desired, current
            payload, what = iptables.plan_restore(desired, current, force=force)
        state.counted(ns, "iptables", full=not memory)
        if payload:
            proc = iptables.restore_async(nsfs.netns_path(node.netns), restore_cmd, payload)
            pending.append((node, proc, payload, what, ident, current, want, have, trusted, memory))
        elif not trusted:
            write_record(record(node), file_ident(ident), IPTABLES_RECORD_VERSION, lambda current=current: current)
            if ident is not None:
                ns.ipt_tables, ns.ipt_ident, ns.ipt_basis = current, ident, basis(node)
        elif not memory and ident is not None:
            ns.ipt_tables, ns.ipt_ident, ns.ipt_basis = current, ident, basis(node)  # the record file stands
        elif memory:
            ns.ipt_basis = basis(node)
    for node, proc, payload, what, ident, current, want, have, trusted, memory in pending:
        ns = state.node(node.name)
        ns.forget_iptables()
        # the tables as the restore leaves them (only kept if the restore succeeds)
        tables = iptables.tables_after(want, have, current if memory else None) if ident is not None else None
        try:
            iptables.finish_restore(proc, node.netns)
        except KernelError:
            unlink(record(node))
            if not trusted:
                raise
            # the record did not match the kernel after all: read the tables back and try once more
            ident, current, _ = _iptables_current(node, save_cmd, None)
            desired = node_rules(cluster, node, kube_proxy_tables(cluster, node, memo=ns.ipt_memo if keep else None)
                                 if iptables_mode else None)
            payload, what = iptables.plan_restore(desired, current, force=force)
            if payload:
                iptables.finish_restore(iptables.restore_async(nsfs.netns_path(node.netns), restore_cmd, payload),
                                        node.netns)
            tables = iptables.after_restore(desired, current) if ident is not None else None
        sent += payload.count("\n")
        after = ident_of(node) if ident is not None else None
        if counted:
            # trust the record next time only if our own commits (one per table) were the only ones in between
            expected = None if ident is None else (ident[0], ident[1] + commits(payload))
            good = after is not None and after == expected
        else:
            # iptables-legacy: the same namespace, and tables of exactly the entry counts of the record
            good = after is not None and after[0] == ident[0] and xtables_info.holds(after[1], tables)
        if good:
            ns.ipt_tables, ns.ipt_ident, ns.ipt_basis = tables, after, basis(node)
        if counted and (state.write_records or not good) or not counted:
            write_record(record(node), after if good and counted else None, IPTABLES_RECORD_VERSION,
                         json.dumps(tables) if good and counted else "")
        for w in what:
            changes.add(f"{node.netns}: iptables {w}")
    return sent
