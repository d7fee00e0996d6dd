"""IPVS mode's objects as the kernel tools write and read them, and the diffs between two states. Pure.

`ipvsadm -Sn` / `ipvsadm-restore` text both ways and the IPVS ops that take live virtual servers to the
desired ones; `ipset save` / `ipset restore` text both ways and the payload that takes live sets to the
desired ones; the address diff of kube-ipvs0. kube-proxy programs the same kernel objects through
netlink; netlab uses the standard tools (render.ipvs_objects holds the objects).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Union

from .ipvs_objects import (FWD_SWITCH, IPSET_NAMES, SWITCH_FWD, SWITCH_PROTO, IpSet, IpvsState, RealServer,
                           VirtualServer, ip_key, natural)


# ---------------------------------------------------------------- ipvsadm text

def _vs_line(cmd: str, vs: VirtualServer) -> str:
    line = f"{cmd} {vs.target} -s {vs.scheduler}"
    if vs.persistent is not None:
        line += f" -p {vs.persistent}"
    if vs.flags:
        line += f" -b {','.join(vs.flags)}"
    return line


def _rs_line(cmd: str, vs: VirtualServer, rs: RealServer) -> str:
    return f"{cmd} {vs.target} -r {rs.address}:{rs.port} {FWD_SWITCH[rs.forwarding]} -w {rs.weight}"


def ipvsadm_save_text(virtual_servers: Iterable[VirtualServer]) -> str:
    """The virtual servers as `ipvsadm -Sn` prints them (and `ipvsadm-restore` reads them)."""
    lines = []
    for vs in virtual_servers:
        lines.append(_vs_line("-A", vs))
        lines.extend(_rs_line("-a", vs, rs) for rs in vs.real_servers)
    return "".join(line + "\n" for line in lines)


def _split_addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def parse_ipvsadm_save(text: str) -> list[VirtualServer]:
    """`ipvsadm -Sn` output -> virtual servers, sorted like the renderer sorts them.

    Firewall-mark services (`-f`) are skipped (kube-proxy makes none); options netlab does not use
    (`-M`, `--pe`, `-x`, `-y`, tunnel options) are read and ignored.
    """
    vss: dict[tuple, VirtualServer] = {}
    for raw in text.splitlines():
        tok = raw.split()
        if not tok or tok[0] not in ("-A", "-a"):
            continue
        proto = addr = None
        opts: dict[str, str | None] = {}
        i = 1
        while i < len(tok):
            t = tok[i]
            if t in SWITCH_PROTO:
                proto, addr = SWITCH_PROTO[t], tok[i + 1]
                i += 2
                continue
            if t in ("-f", "--fwmark-service"):
                proto = None
                break
            if t in SWITCH_FWD:
                opts["fwd"] = SWITCH_FWD[t]
            elif t == "-p" or t == "--persistent":
                # the timeout is optional for ipvsadm; -Sn always prints it
                if i + 1 < len(tok) and tok[i + 1].isdigit():
                    opts["p"] = tok[i + 1]
                    i += 1
                else:
                    opts["p"] = "300"
            elif i + 1 < len(tok):
                opts[t] = tok[i + 1]
                i += 1
            i += 1
        if proto is None or addr is None:
            continue
        vaddr, vport = _split_addr(addr)
        key = (proto, vaddr, vport)
        if tok[0] == "-A":
            flags = tuple(opts["-b"].split(",")) if opts.get("-b") else ()
            vss[key] = VirtualServer(proto, vaddr, vport, opts.get("-s") or opts.get("--scheduler") or "wlc",
                                     int(opts["p"]) if "p" in opts else None, flags)
        else:
            rip, rport = _split_addr(opts.get("-r") or opts["--real-server"])
            vs = vss.setdefault(key, VirtualServer(proto, vaddr, vport))
            vs.real_servers.append(RealServer(rip, rport, int(opts.get("-w") or opts.get("--weight") or 1),
                                              opts.get("fwd") or "route"))
    out = sorted(vss.values(), key=lambda v: v.sort_key)
    for vs in out:
        vs.real_servers.sort(key=lambda r: r.key)
    return out


# ---------------------------------------------------------------- IPVS diff

@dataclass(frozen=True)
class AddService:
    vs: VirtualServer

    def restore_line(self) -> str:
        return _vs_line("-A", self.vs)


@dataclass(frozen=True)
class EditService:
    vs: VirtualServer

    def restore_line(self) -> str:
        return _vs_line("-E", self.vs)


@dataclass(frozen=True)
class DelService:
    vs: VirtualServer

    def restore_line(self) -> str:
        return f"-D {self.vs.target}"


@dataclass(frozen=True)
class AddReal:
    vs: VirtualServer
    rs: RealServer

    def restore_line(self) -> str:
        return _rs_line("-a", self.vs, self.rs)


@dataclass(frozen=True)
class EditReal:
    vs: VirtualServer
    rs: RealServer

    def restore_line(self) -> str:
        return _rs_line("-e", self.vs, self.rs)


@dataclass(frozen=True)
class DelReal:
    vs: VirtualServer
    rs: RealServer

    def restore_line(self) -> str:
        return f"-d {self.vs.target} -r {self.rs.address}:{self.rs.port}"


IpvsOp = Union[AddService, EditService, DelService, AddReal, EditReal, DelReal]


def ipvs_diff(desired: Iterable[VirtualServer], live: Iterable[VirtualServer]) -> list[IpvsOp]:
    """Operations that take `live` (parse_ipvsadm_save, or a previous desired list) to `desired`.

    Order, as kube-proxy's sync goes: new and changed services with their real servers first (added
    before stale ones are deleted, so a service never runs empty during a change), then stale real
    servers, then stale services (deleting a service deletes its real servers, so they get no op).
    Ops carry header-only VirtualServers (no real servers), so they compare and print small.
    """
    want = {vs.key: vs for vs in desired}
    have = {vs.key: vs for vs in live}
    adds: list[IpvsOp] = []
    dels: list[IpvsOp] = []
    for key in sorted(want, key=lambda k: want[k].sort_key):
        vs = want[key]
        head = vs.header()
        cur = have.get(key)
        if cur is None:
            adds.append(AddService(head))
            adds.extend(AddReal(head, rs) for rs in vs.real_servers)
            continue
        if not vs.same_header(cur):
            adds.append(EditService(head))
        cur_rs = {rs.key: rs for rs in cur.real_servers}
        want_rs = {rs.key: rs for rs in vs.real_servers}
        for rs in vs.real_servers:
            old = cur_rs.get(rs.key)
            if old is None:
                adds.append(AddReal(head, rs))
            elif old != rs:
                adds.append(EditReal(head, rs))
        dels.extend(DelReal(head, rs) for k, rs in sorted(cur_rs.items()) if k not in want_rs)
    stale = sorted((vs for key, vs in have.items() if key not in want), key=lambda v: v.sort_key)
    dels.extend(DelService(vs.header()) for vs in stale)
    return adds + dels


def ipvsadm_restore_text(ops: Iterable[IpvsOp]) -> str:
    """The ops as an `ipvsadm-restore` (`ipvsadm -R`) payload; "" for no ops."""
    return "".join(op.restore_line() + "\n" for op in ops)


# ---------------------------------------------------------------- ipset text

def ipset_restore_text(state: IpvsState) -> str:
    """A full `ipset restore` payload: create every set (-exist), flush it, add its entries.

    Idempotent and exact whatever the sets held before; the flush leaves a set briefly empty, so a
    running node should get `ipset_diff` instead.
    """
    lines = []
    for s in state.ipsets.values():
        lines.append(s.create_line())
        lines.append(f"flush {s.name}")
        lines.extend(f"add {s.name} {e}" for e in s.entries)
    return "".join(line + "\n" for line in lines)


def parse_ipset_save(text: str) -> dict[str, IpSet]:
    """`ipset save` output -> name -> IpSet (type and entries; entries sorted like the renderer's)."""
    sets: dict[str, IpSet] = {}
    for raw in text.splitlines():
        tok = raw.split()
        if len(tok) >= 3 and tok[0] == "create":
            sets[tok[1]] = IpSet(tok[1], tok[2])
        elif len(tok) >= 3 and tok[0] == "add":
            sets.setdefault(tok[1], IpSet(tok[1], "")).entries.append(tok[2])
    for s in sets.values():
        s.entries.sort(key=natural)
    return sets


def ipset_diff(desired: IpvsState, live_save_text: str) -> str:
    """An `ipset restore` payload taking the live sets to `desired`: "" when nothing differs.

    Missing sets are created and filled; entries are added before stale ones are deleted; sets that are
    not kube-proxy's are left alone. A set of the wrong type is destroyed and created again (which the
    kernel refuses while an iptables rule still references it).
    """
    live = parse_ipset_save(live_save_text)
    lines: list[str] = []
    for s in desired.ipsets.values():
        cur = live.get(s.name)
        if cur is not None and cur.type != s.type:
            lines += [f"flush {s.name}", f"destroy {s.name}"]
            cur = None
        if cur is None:
            lines.append(s.create_line())
            lines.extend(f"add {s.name} {e}" for e in s.entries)
            continue
        have, want = set(cur.entries), set(s.entries)
        lines.extend(f"add {s.name} {e} -exist" for e in s.entries if e not in have)
        lines.extend(f"del {s.name} {e} -exist" for e in cur.entries if e not in want)
    return "".join(line + "\n" for line in lines)


def ipset_destroy_text(live_save_text: str) -> str:
    """`ipset restore` payload destroying kube-proxy's sets that exist (after their iptables rules are gone)."""
    live = parse_ipset_save(live_save_text)
    return "".join(f"flush {n}\ndestroy {n}\n" for n in IPSET_NAMES if n in live)


# ---------------------------------------------------------------- addresses

def address_diff(desired: IpvsState, live: Iterable[str]) -> tuple[list[str], list[str]]:
    """(to add, to remove) on the dummy device; `live` as "ip/prefix" or bare ip strings."""
    have = {a if "/" in a else f"{a}/32" for a in live}
    want = set(desired.addresses)
    key = lambda a: ip_key(a.split("/")[0])      # noqa: E731
    return sorted(want - have, key=key), sorted(have - want, key=key)
