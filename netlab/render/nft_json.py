"""The live table `ip kube-proxy`, read from `nft -j list table` output into an NftTable. Pure.

Rules are printed back in `nft list`'s text form, the form the renderer writes them in, so that a live
table compares equal to the desired one when the kernel holds what netlab applied.
"""
from __future__ import annotations

import json
from typing import Any

from .nft_table import FAMILY, TABLE, NftSet, NftTable, quote as _q


def parse_nft_json(text: str, table: str = TABLE, family: str = FAMILY) -> NftTable | None:
    """The table in `nft -j list table ip kube-proxy` (or `nft -j list ruleset`) output; None if absent.

    Rules are printed back in `nft list`'s text form, which is how `desired_objects` writes them; an
    expression this printer does not know comes out as `?{json}`, so it never equals a desired rule and
    its chain is rewritten on the next sync.
    """
    data = json.loads(text) if text.strip() else {"nftables": []}
    t = NftTable()
    found = False
    for obj in data.get("nftables", []):
        if not isinstance(obj, dict) or len(obj) != 1:
            continue
        (kind, body), = obj.items()
        if not isinstance(body, dict) or body.get("family") != family:
            continue
        if kind == "table":
            found = found or body.get("name") == table
            continue
        if body.get("table") != table:
            continue
        if kind == "chain":
            t.chains.setdefault(body["name"], [])
            if "hook" in body:
                t.hooks[body["name"]] = (body.get("type", "filter"), body["hook"], int(body.get("prio", 0)))
            if body.get("comment"):
                t.chain_comments[body["name"]] = body["comment"]
        elif kind in ("set", "map"):
            t.sets[body["name"]] = _parse_set(body, kind)
        elif kind == "rule":
            text_ = " ".join(_stmt(e) for e in body.get("expr", []))
            if body.get("comment"):
                text_ += f" comment {_q(body['comment'])}"
            t.chains.setdefault(body["chain"], []).append(text_)
    return t if found else None


def _parse_set(body: dict, kind: str) -> NftSet:
    typ = body.get("type")
    typ = " . ".join(typ) if isinstance(typ, list) else str(typ)
    flags = body.get("flags", [])
    flags = tuple(flags) if isinstance(flags, list) else (flags,)
    s = NftSet(typ, body.get("map") if kind == "map" else None, flags, body.get("timeout"), body.get("comment"))
    s.dynamic = "timeout" in flags or "dynamic" in flags
    for item in body.get("elem", []) or []:
        if kind == "map":
            key, value = item
            value = _expr(value)
        else:
            key, value = item, None
        comment = None
        if isinstance(key, dict) and "elem" in key:
            comment = key["elem"].get("comment")
            key = key["elem"]["val"]
        s.elements[_expr(key)] = (value, comment)
    return s


_VERDICTS = ("accept", "drop", "return", "continue", "queue")


def _stmt(e: Any) -> str:
    """One statement of a rule's `expr` list, as `nft list` prints it."""
    if not isinstance(e, dict) or len(e) != 1:
        return "?" + json.dumps(e, sort_keys=True)
    (k, v), = e.items()
    if k == "match":
        left, right, op = v["left"], v["right"], v.get("op", "==")
        ls = _expr(left, None)
        rs = _expr(right, _hint(left))
        if op == "==" and isinstance(left, dict) and any(b in left for b in ("&", "|", "^")):
            return f"{ls} == {rs}"       # nft spells the operator out after a binary operation
        if op in ("==", "in"):
            return f"{ls} {rs}"
        return f"{ls} {op} {rs}"
    if k in ("jump", "goto"):
        return f"{k} {v['target']}"
    if k in _VERDICTS:
        return k
    if k == "reject":
        if not v or (v.get("type") == "icmp" and v.get("expr") == "port-unreachable"):
            return "reject"
        return "reject with " + " ".join(str(x) for x in (v.get("type"), v.get("expr")) if x)
    if k == "mangle":
        return f"{_expr(v['key'])} set {_expr(v['value'], _hint(v['key']))}"
    if k == "masquerade":
        flags = (v or {}).get("flags")
        flags = ",".join(flags) if isinstance(flags, list) else flags
        return "masquerade" + (f" {flags}" if flags else "")
    if k in ("dnat", "snat"):
        addr, port = v.get("addr"), v.get("port")
        target = _expr(addr) if addr is not None else ""
        if port is not None:
            target += f":{_expr(port)}"
        return f"{k} to {target}"
    if k == "vmap":
        return f"{_expr(v['key'])} vmap {_expr(v['data'])}"
    if k == "set":
        return f"{v['op']} {v['set']} {{ {_expr(v['elem'])} }}"
    if k == "counter":
        return "counter" if not v else f"counter packets {v.get('packets', 0)} bytes {v.get('bytes', 0)}"
    return "?" + json.dumps(e, sort_keys=True)


def _hint(left: Any) -> str | None:
    """'mark' when values compared with / assigned to `left` are marks (printed in hex)."""
    if isinstance(left, dict):
        if left.get("meta", {}).get("key") == "mark" or left.get("ct", {}).get("key") == "mark":
            return "mark"
        for op in ("&", "|", "^"):
            if op in left:
                return _hint(left[op][0])
    return None


def _expr(x: Any, hint: str | None = None) -> str:
    """An expression or value, as `nft list` prints it."""
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return f"0x{x:08x}" if hint == "mark" else str(x)
    if isinstance(x, str):
        return x
    if isinstance(x, list):
        return ",".join(_expr(i, hint) for i in x)
    if not isinstance(x, dict) or len(x) != 1:
        return "?" + json.dumps(x, sort_keys=True)
    (k, v), = x.items()
    if k == "payload":
        return f"{v['protocol']} {v['field']}"
    if k == "meta":
        return f"meta {v['key']}"
    if k == "ct":
        return f"ct {v['key']}"
    if k == "fib":
        flags = v.get("flags", [])
        flags = " . ".join(flags) if isinstance(flags, list) else flags
        return f"fib {flags} {v['result']}"
    if k == "numgen":
        off = v.get("offset", 0)
        return f"numgen {v['mode']} mod {v['mod']}" + (f" offset {off}" if off else "")
    if k == "concat":
        return " . ".join(_expr(i) for i in v)
    if k in ("&", "|", "^"):
        a, b = v
        return f"{_expr(a)} {k} {_expr(b, _hint(a))}"
    if k == "prefix":
        return f"{v['addr']}/{v['len']}"
    if k == "range":
        return f"{_expr(v[0], hint)}-{_expr(v[1], hint)}"
    if k == "set":
        items = v if isinstance(v, list) else [v]
        return "{ " + ", ".join(_set_item(i, hint) for i in items) + " }"
    if k in ("jump", "goto"):
        return f"{k} {v['target']}"
    if k in _VERDICTS:
        return k
    if k == "elem":
        return _expr(v["val"], hint)
    return "?" + json.dumps(x, sort_keys=True)


def _set_item(i: Any, hint: str | None) -> str:
    if isinstance(i, list) and len(i) == 2:             # an anonymous map's key : value
        return f"{_expr(i[0], hint)} : {_expr(i[1])}"
    return _expr(i, hint)
