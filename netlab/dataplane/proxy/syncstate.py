"""What a process keeps between proxy syncs of the same nodes, so that a sync renders and diffs only the
Services that changed (kube-proxy's change tracking and partial sync).

A `SyncState` is an object the caller keeps: `netlab up` is one sync and may make a fresh one (or pass
none: the backends then make a throwaway one), a long-running control loop keeps one for its lifetime.
Per node it holds:
  - the per-Service memo of the iptables-mode renderer (render.service_memo / kubeproxy_iptables'
    ServicePiece): a Service whose content is unchanged is not rendered again;
  - the tables as the last sync left them (iptables) or the table it applied (nftables mode), with the
    node's identity (namespace cookie, nf_tables generation) read right after that commit. While the
    identity is still the one recorded, nothing else committed to the node since, and the next sync diffs
    only the changed Services' chains and elements against this in-memory record (no iptables-save, no
    `nft list`, no whole-node diff, no record file read).
Anything else falls back to today's full sync, which is the tamper repair: the first sync, a moved
identity (somebody else's commit, a new namespace), iptables-legacy (its tables have no generation: always
read back and diffed whole, only the render is incremental), `force`, a failed commit, changed node or
cluster settings, and every `full_sync_period` seconds (kube-proxy's periodic full sync), for the control
loop.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

from ...render.service_memo import ServiceMemo


@dataclass
class NodeSyncState:
    """One node's part of a SyncState (see the module docstring)."""
    ipt_memo: ServiceMemo[Any] = field(default_factory=ServiceMemo)
    ipt_tables: dict[str, dict[str, list[str]]] | None = None    # parse_save shape, as the last sync left it
    ipt_ident: tuple | None = None                                 # (cookie, generation or legacy shapes)
    ipt_basis: Hashable = None                                     # what else ipt_tables was rendered from
    ipt_nservices: int = -1                                        # len(cluster.services) at the last render
    nft_memo: ServiceMemo[None] = field(default_factory=ServiceMemo)
    nft_table: Any = None                                          # the rendered NftTable last applied
    nft_ident: tuple[int, int] | None = None
    nft_context: Hashable = None
    nft_stale: dict[str, float] = field(default_factory=dict)      # chains flushed by a partial sync -> when
    last_full: dict[str, float] = field(default_factory=dict)      # "iptables"/"nftables" -> clock() at its
                                                                    # last full sync
    full_syncs: dict[str, int] = field(default_factory=dict)        # counters, for tests and benchmarks
    partial_syncs: dict[str, int] = field(default_factory=dict)

    def forget_iptables(self) -> None:
        self.ipt_tables, self.ipt_ident, self.ipt_basis = None, None, None

    def forget_nftables(self) -> None:
        self.nft_table, self.nft_ident, self.nft_context = None, None, None
        self.nft_memo = ServiceMemo()
        self.nft_stale = {}           # a full sync deletes every chain it does not want


class SyncState:
    """Per-node sync state kept by the caller across syncs (see the module docstring).

    `full_sync_period`: seconds after which a node's next sync is a full one even if its record is still
    trusted (None: never on a timer). `write_records`: also keep the on-disk records (run/iptables-NODE.json,
    run/nft-NODE.json) that let the next *process* skip reading the node back; writing them costs about as
    much as a full diff at 10,000 Services, so a long-running loop that keeps this object may turn it off
    (the on-disk record then stops matching the node's generation and is simply not trusted)."""

    def __init__(self, full_sync_period: float | None = None, write_records: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.full_sync_period = full_sync_period
        self.write_records = write_records
        self.clock = clock
        self.nodes: dict[str, NodeSyncState] = {}
        # nodes whose other modes' leftovers (an nftables table, userspace proxies) this process has looked
        # for: kube-proxy cleans up other modes when it starts, not on every sync (at 100 nodes, one `nft`
        # process a node was a second of every pass); a full sync, `force` or a mode switch looks again
        self.leftovers_checked: set[str] = set()

    def node(self, name: str) -> NodeSyncState:
        ns = self.nodes.get(name)
        if ns is None:
            ns = self.nodes[name] = NodeSyncState()
        return ns

    def full_due(self, ns: NodeSyncState, what: str) -> bool:
        """Whether the periodic full sync of `what` ("iptables", "nftables") is due for this node."""
        return self.full_sync_period is not None and \
            self.clock() - ns.last_full.get(what, float("-inf")) >= self.full_sync_period

    def counted(self, ns: NodeSyncState, what: str, full: bool) -> None:
        """Count a sync of `what` on the node; a full one restarts the node's period."""
        if full:
            ns.last_full[what] = self.clock()
            ns.full_syncs[what] = ns.full_syncs.get(what, 0) + 1
        else:
            ns.partial_syncs[what] = ns.partial_syncs.get(what, 0) + 1
