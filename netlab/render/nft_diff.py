"""One `nft -f` transaction that takes table `ip kube-proxy` from one state to another (kube-proxy's sync). Pure."""
from __future__ import annotations

from typing import Iterable

from .nft_table import TABLE_COMMENT, TABLE_REF as _T, Elem, NftSet, NftTable, quote as _q


def _chain_decl(name: str, t: NftTable) -> str:
    parts = []
    if name in t.hooks:
        typ, hook, prio = t.hooks[name]
        parts.append(f"type {typ} hook {hook} priority {prio} ;")
    if name in t.chain_comments:
        parts.append(f"comment {_q(t.chain_comments[name])} ;")
    return f"add chain {_T} {name}" + (" { " + " ".join(parts) + " }" if parts else "")


def _set_decl(name: str, s: NftSet) -> str:
    parts = [f"type {s.type}" + (f" : {s.data}" if s.data else "") + " ;"]
    if s.flags:
        parts.append(f"flags {','.join(s.flags)} ;")
    if s.timeout is not None:
        parts.append(f"timeout {s.timeout}s ;")
    if s.comment:
        parts.append(f"comment {_q(s.comment)} ;")
    return f"add {s.kind} {_T} {name} {{ " + " ".join(parts) + " }"


def _elem_text(key: str, elem: Elem) -> str:
    value, comment = elem
    out = key
    if comment:
        out += f" comment {_q(comment)}"
    if value:
        out += f" : {value}"
    return out


def _elements(verb: str, name: str, items: Iterable[str]) -> list[str]:
    items = list(items)
    return [f"{verb} element {_T} {name} {{ " + ", ".join(items) + " }"] if items else []


def diff_script(desired: NftTable, live: NftTable | None, *, only: Iterable[str] | None = None,
                delete_stale: bool = True) -> str:
    """One `nft -f` transaction that turns `live` into `desired`; "" when they are equal.

    `live` is the table parsed from `nft -j list table ip kube-proxy` (`parse_nft_json`), or the
    `desired` of the last successful sync (what kube-proxy itself keeps in memory: listing a table of
    10,000 services takes seconds), or None when the table does not exist (then: create everything).

    Commands run in an order the kernel accepts inside one transaction: flush the chains to rewrite,
    delete stale map elements, delete what must go (no reference is left to it by then), create sets and
    chains, refill the chains, add the elements. A chain whose rules differ is flushed and refilled, as
    kube-proxy does; unchanged chains are not touched. Elements of the affinity sets are the kernel's
    (client IPs with their expiry) and are never compared.

    `only` (Service keys, "ns/name"): compare just the objects those Services own in `desired` and
    `live` - kube-proxy's partial sync. Both tables must be rendered ones (`desired_objects` /
    `update_objects`), e.g. `diff_script(update_objects(prev, cluster, node, keys), prev, only=keys)`;
    the cost is then independent of the number of Services.

    `delete_stale=False` only flushes stale chains, for kernels older than 6.2, which notice a chain is
    no longer referenced by a deleted map element only some time after the commit (kube-proxy deletes
    such chains a second later); call again later with the default to delete them.
    """
    if only is not None:
        if live is None or desired.owners is None or live.owners is None:
            raise ValueError("diff_script(only=...) needs two rendered tables")
        desired, live = _views(desired, live, set(only))
    out: list[str] = []
    if live is None:
        out.append(f"add table {_T} {{ comment {_q(TABLE_COMMENT)} ; }}")
        live = NftTable()

    # --- what differs
    set_recreate = {n for n, s in desired.sets.items() if n in live.sets and live.sets[n].spec() != s.spec()}
    set_new = [n for n in desired.sets if n not in live.sets]
    set_stale = sorted(n for n in live.sets if n not in desired.sets)
    gone_sets = set(set_stale) | set_recreate

    hook_changed = {n for n, h in desired.hooks.items() if n in live.chains and live.hooks.get(n) != h}
    hook_changed |= {n for n in live.hooks if n in desired.chains and n not in desired.hooks}
    chain_new = [n for n in desired.chains if n not in live.chains or n in hook_changed]
    chain_stale = sorted(n for n in live.chains if n not in desired.chains)
    refs_gone = tuple("@" + n for n in gone_sets)
    chain_refill = [n for n, rules in desired.chains.items()
                    if n in live.chains and n not in hook_changed
                    and (live.chains[n] != rules or (refs_gone and any(r in x for x in rules for r in refs_gone)))]

    # --- 1. flush the chains that will be rewritten, recreated or deleted (drops their references)
    for n in chain_refill:
        if live.chains[n]:
            out.append(f"flush chain {_T} {n}")
    for n in sorted(hook_changed):
        if live.chains.get(n):
            out.append(f"flush chain {_T} {n}")
    for n in chain_stale:
        if live.chains[n]:
            out.append(f"flush chain {_T} {n}")

    # --- 2. stale or changed elements out
    adds: dict[str, list[str]] = {}
    for n, s in desired.sets.items():
        if s.dynamic:
            continue
        if n in set_new or n in set_recreate:
            if s.elements:
                adds[n] = [_elem_text(k, e) for k, e in s.elements.items()]
            continue
        old = live.sets[n].elements
        dels = [k for k in old if k not in s.elements or old[k] != s.elements[k]]
        out += _elements("delete", n, sorted(dels))
        new = [_elem_text(k, e) for k, e in s.elements.items() if old.get(k) != e]
        if new:
            adds[n] = new

    # --- 3. delete what goes: sets, base chains whose hook changed, stale chains
    for n in sorted(gone_sets):
        out.append(f"delete {live.sets[n].kind} {_T} {n}")
    for n in sorted(hook_changed):
        out.append(f"delete chain {_T} {n}")
    if delete_stale:
        for n in chain_stale:
            out.append(f"delete chain {_T} {n}")

    # --- 4. create sets and chains
    for n in set_new + sorted(set_recreate):
        out.append(_set_decl(n, desired.sets[n]))
    for n in chain_new:
        out.append(_chain_decl(n, desired))

    # --- 5. rules
    for n in chain_new + chain_refill:
        head = f"add rule {_T} {n} "
        out += [head + r for r in desired.chains[n]]

    # --- 6. elements
    for n, items in adds.items():
        out += _elements("add", n, items)
    return "\n".join(out) + "\n" if out else ""


def _views(a: NftTable, b: NftTable, keys: set[str]) -> tuple[NftTable, NftTable]:
    """The parts of two rendered tables that Services `keys` own; shared maps/sets appear in both views."""
    def view(t: NftTable) -> tuple[NftTable, set[str]]:
        v, containers = NftTable(), set()
        assert t.owners is not None
        for k in keys:
            o = t.owners.get(k)
            if o is None:
                continue
            for c in o.chains:
                v.chains[c] = t.chains[c]
            for n in o.sets:
                v.sets[n] = t.sets[n]
            for n, key in o.elements:
                src = t.sets[n]
                if n not in v.sets:
                    v.sets[n] = NftSet(src.type, src.data, src.flags, src.timeout, src.comment, {}, src.dynamic)
                    containers.add(n)
                v.sets[n].elements[key] = src.elements[key]
        return v, containers

    (va, ca), (vb, cb) = view(a), view(b)
    for n in ca | cb:
        for v, t in ((va, a), (vb, b)):
            if n not in v.sets and n in t.sets:
                src = t.sets[n]
                v.sets[n] = NftSet(src.type, src.data, src.flags, src.timeout, src.comment, {}, src.dynamic)
    return va, vb


def without_cache(script: str, desired: NftTable) -> str:
    """The same transaction written so that `nft -f` needs no cache of the table's chains and sets.

    nft 1.0.x fetches every chain and set of the table before it evaluates an `add rule` or an
    `add element` (at 10,000 Services, ~40,000 chains: ~80-100 ms of netlink dumps, more than the rest of
    a small partial sync). `add chain T C { r1 ; r2 ; }` and `add map T M { <declaration> ; elements = {
    ... } }` add the same rules and elements (to an existing chain or map too: the declaration is the one
    the chain or map has) and need only the table. Rules that name a set (`@affinity-...`) stay `add rule`: their
    evaluation needs the set cache. Other commands are kept as they are (a `delete element` or `delete
    chain` still makes nft fetch the cache)."""
    out: list[str] = []
    rule_head = f"add rule {_T} "
    elem_head = f"add element {_T} "
    block: tuple[str, list[str]] | None = None

    def close() -> None:
        nonlocal block
        if block is not None:
            decl = _chain_decl(block[0], desired)     # with its hook and comment, as the chain has them
            head = decl[:-1] if decl.endswith("}") else decl + " { "
            out.append(head + " ; ".join(block[1]) + " ; }")
            block = None

    for line in script.splitlines():
        if line.startswith(rule_head) and "@" not in line and ";" not in line:
            chain, rule = line[len(rule_head):].split(" ", 1)
            if block is not None and block[0] != chain:
                close()
            if block is None:
                block = (chain, [])
            block[1].append(rule)
            continue
        close()
        if line.startswith(elem_head):
            name, items = line[len(elem_head):].split(" ", 1)
            decl = _set_decl(name, desired.sets[name])            # 'add map T N { ... }'
            out.append(decl[:-1] + f"elements = {items} }}")
            continue
        out.append(line)
    close()
    return "\n".join(out) + "\n" if out else ""
