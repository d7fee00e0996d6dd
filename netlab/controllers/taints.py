"""kubectl taint's decisions, without a store: its arguments read (KEY=VALUE:EFFECT, KEY:EFFECT to add;
KEY:EFFECT-, KEY- to remove) and a node's taints changed as kubectl changes them.

What kubectl does, and so this: a taint is one per key and effect; an added one that the node already has with
the same key and effect is refused unless --overwrite (then its value is replaced); the added taints come
first, then the node's others; a removal that finds nothing is an error (`taint "K:E" not found`), and so is
an addition without an effect or with an effect that is not NoSchedule, PreferNoSchedule or NoExecute. The
line kubectl prints says `tainted` (something added), `untainted` (only removals) or `modified` (both, or
--overwrite). A NoExecute taint gets its timeAdded (the taint eviction controller counts tolerationSeconds from
it: netlab/controllers/nodelifecycle.py).
"""
from __future__ import annotations

from ..errors import SpecError
from .labeling import check_key, check_value
from .validation import ControllerError

EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
SPEC_FIX = "write KEY=VALUE:EFFECT or KEY:EFFECT to add a taint, KEY:EFFECT- or KEY- to remove (EFFECT: " \
           + ", ".join(EFFECTS) + ")"


def is_taint(arg: str) -> bool:
    """Whether a command-line argument is a taint change rather than a node, as kubectl separates them."""
    return "=" in arg or ":" in arg or (arg.endswith("-") and len(arg) > 1)


def _one(spec: str, arg: str) -> dict:
    """{key, value?, effect?} of KEY[=VALUE][:EFFECT]; SpecError (exit 2) when malformed."""
    parts = spec.split(":")
    if len(parts) > 2:
        raise SpecError(f"taint {arg!r}", "invalid taint spec: more than one ':'", SPEC_FIX)
    taint: dict = {}
    key = parts[0]
    if len(parts) == 2:
        if parts[1] not in EFFECTS:
            raise SpecError(f"taint {arg!r}", f"invalid taint effect: {parts[1]}, unsupported taint effect",
                            SPEC_FIX)
        taint["effect"] = parts[1]
        if "=" in key:
            key, value = key.split("=", 1)
            if "=" in value:
                raise SpecError(f"taint {arg!r}", "invalid taint spec: more than one '='", SPEC_FIX)
            check_value(value, arg)
            taint["value"] = value
    elif "=" in key:
        raise SpecError(f"taint {arg!r}", "invalid taint spec: a taint needs an effect", SPEC_FIX)
    check_key(key, arg)
    return {"key": key, **taint}


def parse(specs: list[str]) -> tuple[list[dict], list[dict]]:
    """(taints to add, taints to remove: key, and effect when given); SpecError (exit 2) for a malformed one, an
    addition without an effect, or the same key and effect added twice."""
    add: list[dict] = []
    remove: list[dict] = []
    for arg in specs:
        if arg.endswith("-"):
            t = _one(arg[:-1], arg)
            remove.append({k: v for k, v in t.items() if k != "value"})
            continue
        t = _one(arg, arg)
        if "effect" not in t:
            raise SpecError(f"taint {arg!r}", "invalid taint spec: a taint needs an effect", SPEC_FIX)
        if any((a["key"], a["effect"]) == (t["key"], t["effect"]) for a in add):
            raise SpecError(f"taint {arg!r}", "duplicated taints with the same key and effect",
                            "give each KEY:EFFECT once")
        add.append(t)
    return add, remove


def _name(t: dict) -> str:
    return t["key"] + (f"={t['value']}" if t.get("value") else "") + (f":{t['effect']}" if t.get("effect") else "")


def retaint(node: dict, add: list[dict], remove: list[dict], overwrite: bool, now: str) -> tuple[list[dict], str]:
    """(the node's new taints, kubectl's word: tainted, untainted or modified). ControllerError (kubectl's text,
    exit 1) when an added key and effect is there already without `overwrite`, or a removal finds nothing.
    `now`: the timeAdded of a new NoExecute taint."""
    name = node["metadata"]["name"]
    old = list((node.get("spec") or {}).get("taints") or [])
    if not overwrite:
        there = [a["key"] for a in add for o in old if (o.get("key"), o.get("effect")) == (a["key"], a["effect"])]
        if there:
            raise ControllerError(f"node {name} already has {','.join(there)} taint(s) with same effect(s) and "
                                  "--overwrite is false")
    new = [dict(a, timeAdded=now) if a["effect"] == "NoExecute" else dict(a) for a in add]
    new += [o for o in old if not any((o.get("key"), o.get("effect")) == (a["key"], a["effect"]) for a in add)]
    added = len(new) != len(old)
    removed = False
    for r in remove:
        kept = [t for t in new if not (t.get("key") == r["key"] and r.get("effect") in (None, t.get("effect")))]
        if len(kept) == len(new):
            raise ControllerError(f'taint "{_name(r)}" not found')
        new, removed = kept, True
    word = "modified" if (added and removed) or overwrite else "tainted" if added else "untainted"
    return new, word
