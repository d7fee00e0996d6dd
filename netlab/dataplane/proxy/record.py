"""Sync records: what netlab last applied to a node, trusted in place of reading the kernel back while
the node's identity (namespace cookie, nf_tables generation) has not moved since."""
from __future__ import annotations

import json
import os
from typing import Any, Callable

from .. import nsfs, rtnl, state, xtables_info


def node_identity(netns: str) -> tuple[int, int] | None:
    """(namespace cookie, nf_tables generation) of a node, or None if the kernel cannot tell. The kernel
    adds one to the generation on every nftables commit in the namespace (nft's, iptables-nft's, anyone's):
    a record of what netlab applied, kept with the identity read right after its own commit, is what the
    kernel holds as long as the identity has not moved."""
    def read() -> tuple[int, int] | None:
        cookie = rtnl.netns_cookie()
        return None if cookie is None else (cookie, rtnl.nft_generation())
    try:
        return nsfs.in_netns(netns, read)
    except OSError:
        return None


def legacy_identity(netns: str) -> tuple[int, tuple] | None:
    """(namespace cookie, the shape of every legacy iptables table) of a node, or None if the kernel
    cannot tell: what an iptables-legacy sync compares, in place of the nf_tables generation, to know
    that nobody changed the node's tables since its own restore (see xtables_info for what it sees and
    what it leaves to the periodic full sync)."""
    def read() -> tuple[int, tuple] | None:
        cookie = rtnl.netns_cookie()
        return None if cookie is None else (cookie, xtables_info.shapes())
    try:
        return nsfs.in_netns(netns, read)
    except OSError:
        return None


def read_record(path: str | None, ident: tuple[int, int] | None, version: int) -> Any:
    """The data of a sync record if it was written at exactly this identity, else None."""
    if path is None or ident is None:
        return None
    try:
        with open(path) as f:
            rec = json.load(f)
        if rec.get("version") != version or [rec.get("cookie"), rec.get("generation")] != list(ident):
            return None
        return rec["data"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # missing, torn or foreign: the caller reads the kernel instead


def write_record(path: str | None, ident: tuple[int, int] | None, version: int,
                 data: Callable[[], Any] | str) -> None:
    """Keep `data()` (or `data`, already JSON) as what the kernel holds at `ident`; with no identity, drop
    any older record."""
    if path is None:
        return
    if ident is None:
        unlink(path)
        return
    body = data if isinstance(data, str) else json.dumps(data())
    try:
        state.write_private(path, f'{{"version": {int(version)}, "cookie": {int(ident[0])}, '
                                  f'"generation": {int(ident[1])}, "data": {body}}}')
    except OSError:
        unlink(path)  # a record is only a shortcut: without one, the next sync reads the kernel


def unlink(path: str | None) -> None:
    """Remove a record (a missing one is fine)."""
    if path is None:
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
