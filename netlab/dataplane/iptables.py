"""Apply rendered iptables state to a node: one `iptables-restore --noflush` per node per sync.

Why not python-iptables: it drives libiptc, which writes the *legacy* tables one rule at a time. The
`iptables` command of an nft-based distribution (Debian 12, Ubuntu 22.04) does not show those tables,
and per-rule calls cannot give kube-proxy's atomic whole-payload sync. So netlab does what kube-proxy
does: render text, apply it with `iptables-restore --noflush`, read back with `iptables-save`.

The flavour (legacy or nft) is a setting: `auto` follows the host's `iptables` command.
"""
from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess

from ..errors import KernelError, UsageError
from ..render.tables import Desired, TableState

# netlab's chains: kube-proxy's and the kubelet's, flannel's, CNI portmap's (render/hostport.py)
OWNED_CHAIN = re.compile(r"^(KUBE-|FLANNEL-|CNI-HOSTPORT-|CNI-DN-)")
JUMP = re.compile(r"(?:^|\s)-[jg]\s+(\S+)")


def flavour_commands(flavour: str) -> tuple[str, str, str]:
    """(resolved flavour, restore command, save command)."""
    if flavour == "auto":
        exe = shutil.which("iptables")
        if exe is None:
            raise UsageError("iptables is not installed: run scripts/setup (or apt-get install iptables)")
        flavour = _auto_flavour(os.path.realpath(exe))
    restore, save = f"iptables-{flavour}-restore", f"iptables-{flavour}-save"
    for cmd in (restore, save):
        if shutil.which(cmd) is None:
            raise UsageError(f"{cmd} is not installed: run scripts/setup (or apt-get install iptables)")
    return flavour, restore, save


@functools.lru_cache(maxsize=None)
def _auto_flavour(exe: str) -> str:
    """The flavour of the iptables at `exe` (its resolved path): Debian's and Ubuntu's alternatives point it at
    xtables-nft-multi or xtables-legacy-multi, which say it by name; another is asked (`--version`), once a
    process. A control loop resolves the flavour every pass: it ran `iptables --version` in the host's
    namespace each time."""
    name = os.path.basename(exe)
    if name.startswith("xtables-nft"):
        return "nft"
    if name.startswith("xtables-legacy"):
        return "legacy"
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout
    except OSError as e:
        raise UsageError(f"cannot run iptables: {e.strerror}") from None
    return "nft" if "nf_tables" in out else "legacy"


def parse_save(text: str) -> dict[str, dict[str, list[str]]]:
    """iptables-save text -> table -> chain -> rule lines ('-A CHAIN ...'); built-in chains included."""
    tables: dict[str, dict[str, list[str]]] = {}
    cur = None
    for line in text.splitlines():
        if line.startswith("*"):
            cur = tables.setdefault(line[1:].strip(), {})
        elif line.startswith(":") and cur is not None:
            cur.setdefault(line[1:].split()[0], [])
        elif line.startswith("-A ") and cur is not None:
            end = line.find(" ", 3)
            chain = line[3:end] if end > 0 else line[3:]     # not line.split()[1]: 110,000 rules at 10,000 Services
            rules = cur.get(chain)
            if rules is None:
                rules = cur[chain] = []
            rules.append(line)
    return tables


def _norm(rule: str) -> str:
    return " ".join(rule.split())


def _misplaced(jumps: list[tuple[str, str]], have: dict[str, list[str]]) -> set[str]:
    """The built-in chains whose wanted jumps would not end up in the wanted order if only the missing
    ones were inserted at the top (a present jump out of order, or a missing one wanted after a present
    one: e.g. the NetworkPolicy jump, wanted first in FORWARD, before kube-proxy's jumps added by a later
    switch of proxy mode). Their wanted jumps are all deleted and inserted again, in the same restore."""
    out = set()
    for chain in dict.fromkeys(c for c, _ in jumps):
        normed = [_norm(r) for r in have.get(chain, [])]
        seen: list[int] = []
        for c, spec in jumps:
            if c != chain:
                continue
            line = _norm(f"-A {c} {spec}")
            if line in normed:
                seen.append(normed.index(line))
            elif seen:
                out.add(chain)
        if seen != sorted(seen):
            out.add(chain)
    return out


def plan_restore(desired: Desired, current: dict[str, dict[str, list[str]]],
                 force: bool = False) -> tuple[str, list[str]]:
    """The restore payload that takes `current` to `desired` (empty if nothing differs) and what changes.

    Only owned chains are written; stale owned chains are flushed and deleted; missing jumps from
    built-in chains are inserted at the top, present ones are left alone (unless that would leave a
    chain's wanted jumps out of their order: then they are all deleted and inserted again, `_misplaced`),
    and jumps into owned chains that are no longer wanted are deleted.
    """
    out: list[str] = []
    changes: list[str] = []
    for table in sorted(set(desired) | {t for t in current if any(OWNED_CHAIN.match(c) for c in current[t])}):
        want = desired.get(table, TableState())
        have = current.get(table, {})
        body: list[str] = []
        decl: list[str] = []
        for chain, rules in want.chains.items():
            # iptables-save and the renderer both write single-spaced rules: compare as they are first
            if not force and chain in have and (have[chain] == rules or
                                                [_norm(r) for r in have[chain]] == [_norm(r) for r in rules]):
                continue
            decl.append(f":{chain} - [0:0]")
            body.extend(rules)
            changes.append(f"{table}/{chain} ({len(rules)} rules)")
        stale = [c for c in have if OWNED_CHAIN.match(c) and c not in want.chains]
        for chain in stale:
            decl.append(f":{chain} - [0:0]")
        misplaced = _misplaced(want.jumps, have)
        moves: list[str] = []
        for chain, spec in want.jumps:
            line = _norm(f"-A {chain} {spec}")
            present = any(_norm(r) == line for r in have.get(chain, []))
            if present and chain in misplaced:
                moves.append(f"-D {chain} {spec}")      # before the inserts: -D removes the first match
            if not present or chain in misplaced:
                body.insert(0, f"-I {chain} 1 {spec}")
                m = JUMP.search(spec)
                changes.append(f"{table}/{chain} jump to {m.group(1) if m else spec}"
                               + (" moved into place" if present else ""))
        body[:0] = moves
        # Jumps from built-in chains into netlab's chains that are not wanted (into a stale chain, or
        # another proxy mode's jump after a mode switch) are deleted, before any chain is. Owned chains
        # declared above are flushed by the declaration already and need no -D.
        wanted = {_norm(f"-A {c} {spec}") for c, spec in want.jumps}
        for other, rules in have.items():
            if OWNED_CHAIN.match(other):
                continue
            for r in rules:
                m = JUMP.search(r)
                if m and OWNED_CHAIN.match(m.group(1)) and _norm(r) not in wanted:
                    body.append("-D" + r[2:])
                    if m.group(1) not in stale:
                        changes.append(f"{table}/{other} stray jump to {m.group(1)} removed")
        for chain in stale:
            body.append(f"-X {chain}")
            changes.append(f"{table}/{chain} removed")
        if decl or body:
            out.append(f"*{table}")
            out.extend(decl)
            out.extend(body)
            out.append("COMMIT")
    return ("\n".join(out) + "\n") if out else "", changes


def after_restore(desired: Desired, current: dict[str, dict[str, list[str]]]) -> dict[str, dict[str, list[str]]]:
    """The tables as they are once `plan_restore(desired, current)`'s payload has been applied, in
    parse_save's shape, for what the next plan looks at: owned chains and every built-in chain's rules.

    (Inserted jumps end up at the top in `desired`'s order; unwanted jumps into owned chains are gone;
    stale owned chains are gone; owned chains hold exactly the desired rules.)"""
    out = {t: {c: list(r) for c, r in chains.items()} for t, chains in current.items()}
    for table in set(desired) | {t for t in current if any(OWNED_CHAIN.match(c) for c in current[t])}:
        want = desired.get(table, TableState())
        have = out.setdefault(table, {})
        for chain in [c for c in have if OWNED_CHAIN.match(c) and c not in want.chains]:
            del have[chain]
        wanted = {_norm(f"-A {c} {spec}") for c, spec in want.jumps}
        for chain in [c for c in have if not OWNED_CHAIN.match(c)]:
            have[chain] = [r for r in have[chain]
                           if not ((m := JUMP.search(r)) and OWNED_CHAIN.match(m.group(1)) and _norm(r) not in wanted)]
        tops: dict[str, list[str]] = {}
        misplaced = _misplaced(want.jumps, have)
        for chain, spec in want.jumps:
            line = f"-A {chain} {spec}"
            normed = [_norm(r) for r in have.get(chain, [])]
            if _norm(line) in normed and chain in misplaced:
                del have[chain][normed.index(_norm(line))]
            elif _norm(line) in normed:
                continue
            tops.setdefault(chain, []).append(line)
        for chain, lines in tops.items():
            have[chain] = lines + have.get(chain, [])
        for chain, rules in want.chains.items():
            have[chain] = list(rules)
    return out


# Chains that belong to one Service (render.kubeproxy_iptables' ServicePiece.chains); every other chain
# (KUBE-SERVICES, flannel's, the kubelet's ...) is in every scoped view.
SERVICE_CHAIN_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-SEP-", "KUBE-FW-")


def scoped(tables, scope: set[str]):
    """`tables` (a Desired, or parse_save's shape) without the Service chains that are not in `scope`.

    An incremental sync plans `plan_restore(scoped(desired, s), scoped(tables, s))` where `tables` is
    what the node holds (its last sync's result, trusted) and `s` the chains of the Services that
    changed: the other Services' chains are the same on both sides, so leaving them out changes nothing
    in the payload but the time it takes."""
    def keep(chains: dict[str, list[str]]) -> dict[str, list[str]]:
        return {c: r for c, r in chains.items() if c in scope or not c.startswith(SERVICE_CHAIN_PREFIXES)}
    return {t: (TableState(keep(ts.chains), ts.jumps) if isinstance(ts, TableState) else keep(ts))
            for t, ts in tables.items()}


def tables_after(want: Desired, have: dict[str, dict[str, list[str]]],
                 whole: dict[str, dict[str, list[str]]] | None = None) -> dict[str, dict[str, list[str]]]:
    """after_restore(want, have); when (want, have) are scoped views of `whole` (see `scoped`), the whole
    node's tables after the restore: `whole` with the compared part replaced."""
    part = after_restore(want, have)
    if whole is None:
        return part
    out = {}
    for table in whole.keys() | part.keys():
        chains = dict(whole.get(table, {}))
        for c in have.get(table, {}):
            chains.pop(c, None)
        chains.update(part.get(table, {}))
        out[table] = chains
    return out


def nsenter(netns_path: str, argv: list[str]) -> list[str]:
    from .nsenter import command  # the one builder of nsenter command lines
    return command(netns_path, argv)


def save(netns_path: str, save_cmd: str) -> str:
    try:
        p = subprocess.run(nsenter(netns_path, [save_cmd]), capture_output=True, text=True, timeout=120)
    except OSError as e:
        raise KernelError(f"{save_cmd} in {netns_path}: {e.strerror}") from None
    if p.returncode != 0:
        raise KernelError(f"{save_cmd} in network namespace {netns_path}: {p.stderr.strip()}")
    return p.stdout


def restore_async(netns_path: str, restore_cmd: str, payload: str) -> subprocess.Popen:
    """Start `restore_cmd --noflush` in the namespace with `payload` as its input, and return at once: the
    payload is handed over in a memory file, so every node's restore works at the same time (written
    through a pipe by finish_restore, one node's restore waited for the one before it: 100 nodes'
    small restores took 5 s, most of it each commit's wait in the kernel, not work)."""
    fd = -1
    try:
        fd = os.memfd_create("netlab-iptables-restore", os.MFD_CLOEXEC)
        data = payload.encode()
        done = 0
        while done < len(data):   # a write may take less than all of it
            done += os.write(fd, data[done:])
        os.lseek(fd, 0, os.SEEK_SET)
        p = subprocess.Popen(nsenter(netns_path, [restore_cmd, "--noflush", "-w", "5"]), stdin=fd,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except OSError as e:
        raise KernelError(f"{restore_cmd} in {netns_path}: {e.strerror}") from None
    finally:
        if fd >= 0:
            os.close(fd)
    return p


def finish_restore(p: subprocess.Popen, where: str, timeout: float = 600) -> None:
    """Wait for a restore that restore_async started; its failure is a KernelError naming the namespace."""
    _, err = p.communicate(timeout=timeout)
    if p.returncode != 0:
        raise KernelError(f"iptables-restore in network namespace {where} failed: {err.strip()[:500]}")
