"""The pure part of `netlab trace`: the kernel's trace events of each node -> the packet's fate there, the
model's prediction for the same packet (render.trace over the node's rendered rules) and the differences
between the two. No root, no kernel.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from .monitor import Event

# tables whose rules netlab renders and the model (render.trace) walks
MODEL_TABLES = ("nat", "filter")


@dataclass
class Fate:
    """What happened to (or what is predicted for) the packet in one node's netfilter."""
    verdict: str                         # ACCEPT | DROP | REJECT
    dnat: str | None = None
    masquerade: bool = False
    chains: list[str] = field(default_factory=list)    # table/CHAIN, in order
    by: str = ""                         # the rule that dropped / rejected it


def observed_fate(events: list[Event], trace_tables: tuple[str, ...] = ("raw",)) -> Fate:
    fate = Fate("ACCEPT")
    for e in events:
        if e.table in trace_tables:
            continue
        for where in (e.where, f"{e.table}/{e.target}" if e.target else ""):
            if where and where not in fate.chains:
                fate.chains.append(where)
        if e.dnat and fate.dnat is None:
            fate.dnat = e.dnat
        if e.masquerade and e.verdict == "accept":
            fate.masquerade = True
        if e.final in ("DROP", "REJECT"):
            fate.verdict, fate.by = e.final, f"{e.where}: {e.rule}" if e.rule else f"{e.where} policy"
            break
    return fate


def _norm(rule: str) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(rule))
    except ValueError:
        return tuple(rule.split())


def unknown_rules(events: list[Event], rendered: set[tuple[str, ...]]) -> list[str]:
    """The iptables rules the kernel applied to the packet that netlab did not render (in the model's
    tables; only owned chains and the built-in chains are compared)."""
    out = []
    for e in events:
        if e.table not in MODEL_TABLES or e.kind != "rule" or not e.rule.startswith("-A "):
            continue
        if _norm(e.rule) not in rendered and e.rule not in out:
            out.append(e.rule)
    return out


def rendered_rules(desired) -> set[tuple[str, ...]]:
    """The rule lines of a node's rendered tables (render.tables.Desired), normalised for comparing."""
    out = set()
    for table, ts in desired.items():
        if table not in MODEL_TABLES:
            continue
        for builtin, spec in ts.jumps:
            out.add(_norm(f"-A {builtin} {spec}"))
        for rules in ts.chains.values():
            out.update(_norm(r) for r in rules)
    return out


def differences(node: str, seen: Fate, predicted: list[Fate], compare_chains: bool,
                unknown: list[str] = ()) -> list[str]:
    """Each way the kernel's handling of the packet in `node` is not one the model predicts."""
    out = []
    if not predicted:
        return out
    same_dnat = [p for p in predicted if p.dnat == seen.dnat]
    if not same_dnat:
        choices = sorted({p.dnat or "no DNAT" for p in predicted})
        out.append(f"{node}: the kernel DNATed to {seen.dnat or 'nothing (no DNAT)'}, the model predicts "
                   f"{' or '.join(choices)}")
        same_dnat = predicted
    same = [p for p in same_dnat if p.verdict == seen.verdict]
    if not same:
        out.append(f"{node}: the kernel's verdict is {seen.verdict}"
                   f"{f' ({seen.by})' if seen.by else ''}, the model predicts "
                   f"{' or '.join(sorted({p.verdict for p in same_dnat}))}")
        same = same_dnat
    if seen.verdict == "ACCEPT" and not any(p.masquerade == seen.masquerade for p in same):
        out.append(f"{node}: the kernel {'masqueraded' if seen.masquerade else 'did not masquerade'} the packet, "
                   f"the model predicts it {'does not' if seen.masquerade else 'does'}")
    if compare_chains:
        modelled = {c for p in same for c in p.chains}
        for c in seen.chains:
            if c.split("/")[0] in MODEL_TABLES and c not in modelled:
                out.append(f"{node}: the kernel traversed {c}, which the model does not predict")
    for rule in unknown:
        out.append(f"{node}: the kernel applied a rule netlab did not render: {rule}")
    return out


def model_fates(paths) -> list[Fate]:
    """render.trace Paths -> Fates."""
    return [Fate(p.verdict, p.dnat, p.masquerade, list(p.trail)) for p in paths]


def packet_in(events: list[Event]) -> dict:
    """The packet as it entered the node: the first packet line the kernel printed for it."""
    return next((e.packet for e in events if e.packet), {})


def packet_out(events: list[Event]) -> dict:
    """The packet as the node's last traced hook saw it (after DNAT; with its output interface)."""
    return next((e.packet for e in reversed(events) if e.packet), {})


def from_host(events: list[Event]) -> bool:
    """Whether the node itself sent the packet (its first packet line has no input interface: OUTPUT)."""
    return bool(events) and "iif" not in packet_in(events)
