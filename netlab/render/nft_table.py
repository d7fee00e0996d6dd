"""Table `ip kube-proxy` as data (chains, base-chain hooks, sets and maps), as nft lists it back. Pure.

The renderer (render.kubeproxy_nftables) fills it, render.nft_diff turns two of them into one `nft -f`
transaction, render.nft_json reads the live table into one, and the dataplane keeps the last one it
applied as a record (table_to_data / table_from_data).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FAMILY = "ip"
TABLE = "kube-proxy"
TABLE_COMMENT = "rules for kube-proxy"
TABLE_REF = f"{FAMILY} {TABLE}"          # as nft commands name the table

Elem = tuple  # (value or None, comment or None)


@dataclass
class NftSet:
    """A named set or map. `data` is the map's value type ("verdict"), None for a set."""
    type: str
    data: str | None = None
    flags: tuple[str, ...] = ()
    timeout: int | None = None               # seconds
    comment: str | None = None
    elements: dict[str, Elem] = field(default_factory=dict)
    dynamic: bool = False                    # elements are the kernel's (affinity): never diffed

    @property
    def kind(self) -> str:
        return "map" if self.data else "set"

    def spec(self) -> tuple:
        """What cannot change without recreating the set (comments are left out: never compared)."""
        return (self.type, self.data, tuple(sorted(f for f in self.flags if f != "dynamic")), self.timeout)


@dataclass
class Owned:
    """What one Service contributes to the table: its chains, its affinity sets, its set/map elements."""
    chains: list[str] = field(default_factory=list)
    sets: list[str] = field(default_factory=list)
    elements: list[tuple[str, str]] = field(default_factory=list)         # (set or map, key)


@dataclass
class NftTable:
    """The table as data: chains (name -> rules, as `nft list` prints them), base-chain hooks, sets/maps.

    A rendered table also records which Service ("ns/name") owns which objects (`owners`) and the
    options it was rendered with, for `update_objects` and `diff_script(..., only=...)`; a table parsed
    from nft has neither.
    """
    chains: dict[str, list[str]] = field(default_factory=dict)
    hooks: dict[str, tuple[str, str, int]] = field(default_factory=dict)   # base chain -> (type, hook, prio)
    sets: dict[str, NftSet] = field(default_factory=dict)
    chain_comments: dict[str, str] = field(default_factory=dict)           # written on creation only
    owners: dict[str, Owned] | None = None
    options: dict[str, str] = field(default_factory=dict)

    def rule_count(self) -> int:
        return sum(len(r) for r in self.chains.values())

    def content(self) -> tuple:
        """Everything that is compared with the kernel's state, independent of insertion order."""
        return ({n: list(r) for n, r in sorted(self.chains.items())}, dict(sorted(self.hooks.items())),
                {n: (s.spec(), None if s.dynamic else dict(sorted(s.elements.items())))
                 for n, s in sorted(self.sets.items())})


def quote(text: str) -> str:
    """A comment as nft writes it: in double quotes (a double quote inside becomes a single one)."""
    return '"' + text.replace('"', "'") + '"'


def table_to_data(t: NftTable) -> dict[str, Any]:
    """What diff_script compares, as JSON-able data (the record of the last table a sync applied)."""
    return {"chains": t.chains, "hooks": {n: list(h) for n, h in t.hooks.items()},
            "chain_comments": t.chain_comments, "options": t.options,
            "sets": {n: {"type": x.type, "data": x.data, "flags": list(x.flags), "timeout": x.timeout,
                         "comment": x.comment, "dynamic": x.dynamic,
                         "elements": {k: list(e) for k, e in x.elements.items()}} for n, x in t.sets.items()}}


def table_from_data(d: dict[str, Any]) -> NftTable:
    return NftTable(chains=d["chains"],
                    hooks={n: (h[0], h[1], int(h[2])) for n, h in d["hooks"].items()},
                    sets={n: NftSet(x["type"], x["data"], tuple(x["flags"]), x["timeout"], x["comment"],
                                    {k: tuple(e) for k, e in x["elements"].items()}, bool(x["dynamic"]))
                          for n, x in d["sets"].items()},
                    chain_comments=dict(d["chain_comments"]), options=dict(d["options"]))
