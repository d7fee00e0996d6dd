"""What the kernel tells about the *legacy* iptables tables of a namespace without reading them: the
shape of each table (IPT_SO_GET_INFO), the foreign-change detector of incremental iptables-legacy syncs.

nf_tables counts its commits (the generation `rtnl.nft_generation` reads), so an iptables-nft sync knows
that nothing else changed a node since its own commit. x_tables (iptables-legacy) has no such counter:
every change, by anyone, replaces a whole table (IPT_SO_SET_REPLACE), and the only things the kernel
reports about a table short of copying it out are in `struct ipt_getinfo`: which hooks it has, where
each hook's first rule and policy are (byte offsets), how many entries it holds and its size in bytes.
Reading that is one getsockopt per table (microseconds), where copying a table out (IPT_SO_GET_ENTRIES,
what iptables-save does) costs ~0.3 s at 10,000 Services and parsing its text as much again.

What the shape detects: any rule or chain added or removed (the entry count moves: one entry per rule,
one per chain for its policy or RETURN, one more per user chain for its head, one to end the table),
and any rule replaced by one of another size (the size and the offsets move), in any table, and a table
that appears or goes (/proc/net/ip_tables_names, per namespace). What it cannot see: a rule replaced in
place by one of exactly the same size (`iptables -R` with another address of the same length). That is
left to the periodic full sync (SyncState.full_sync_period, or `full=True` from the caller: what
kube-proxy's periodic full sync does, and more than kube-proxy does for legacy tables between its full
syncs). A content digest (IPT_SO_GET_ENTRIES hashed without the counters) would see that too, but it
costs ~0.4 s at 10,000 Services on every sync, against the target of a no-op sync near zero.

`entries_of` gives the entry count a table must have for given chains (iptables-save's shape), so a
sync checks, right after its own restore, that the kernel's tables hold exactly what it recorded: a
foreign change that slipped in between the restore and that check shows as a wrong count (unless it
kept the count, which the periodic full sync catches).

Everything here runs in the caller's network namespace (run it through nsfs.in_netns).
"""
from __future__ import annotations

import ctypes
import socket
import struct

IPT_SO_GET_INFO = 64            # linux/netfilter_ipv4/ip_tables.h (IPT_BASE_CTL)
_INFO = struct.Struct("=32sI5I5III")   # struct ipt_getinfo: name, valid_hooks, hook_entry[5], underflow[5],
                                       # num_entries, size
_libc = ctypes.CDLL(None, use_errno=True)
_libc.getsockopt.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint)]

Shape = tuple  # (valid_hooks, hook_entry..., underflow..., num_entries, size)


def table_names() -> list[str]:
    """The legacy tables that exist in the caller's namespace (created on first use, never removed)."""
    try:
        with open("/proc/thread-self/net/ip_tables_names") as f:
            return sorted(line.strip() for line in f if line.strip())
    except FileNotFoundError:
        return []          # ip_tables not loaded: no legacy table anywhere


def table_shape(sock: socket.socket, table: str) -> Shape | None:
    """IPT_SO_GET_INFO of one table, without its name; None if there is no such table."""
    buf = ctypes.create_string_buffer(table.encode().ljust(_INFO.size, b"\0"), _INFO.size)
    size = ctypes.c_uint(_INFO.size)
    if _libc.getsockopt(sock.fileno(), socket.IPPROTO_IP, IPT_SO_GET_INFO, buf, ctypes.byref(size)) != 0:
        err = ctypes.get_errno()
        if err == 2:       # ENOENT: gone between the listing and the call
            return None
        raise OSError(err, f"getsockopt IPT_SO_GET_INFO {table}")
    return _INFO.unpack(buf.raw)[1:]


def shapes() -> tuple[tuple[str, Shape], ...]:
    """(table, shape) of every legacy table of the caller's namespace, by name (needs CAP_NET_ADMIN)."""
    names = table_names()
    if not names:
        return ()
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as s:
        got = ((t, table_shape(s, t)) for t in names)
        return tuple((t, sh) for t, sh in got if sh is not None)


def entries_of(chains: dict[str, list[str]], valid_hooks: int) -> int:
    """The number of kernel entries of a table holding `chains` (chain -> its '-A' rule lines, as
    iptables.parse_save gives them; built-in chains may be missing) whose built-in chains are the bits of
    `valid_hooks`: one per rule, one per built-in chain (its policy), two per user chain (its head and
    closing RETURN), and one that ends the table."""
    user = sum(1 for c in chains if c not in BUILTIN)
    return sum(len(r) for r in chains.values()) + bin(valid_hooks).count("1") + 2 * user + 1


def holds(shapes_: tuple[tuple[str, Shape], ...], tables: dict[str, dict[str, list[str]]]) -> bool:
    """Whether tables of these shapes can be `tables` (parse_save's shape): the same tables, each with
    the entry count those chains and rules make. What a sync checks before keeping `tables` as its
    record of the kernel."""
    if {t for t, _ in shapes_} != set(tables):
        return False
    return all(shape[-2] == entries_of(tables[t], shape[0]) for t, shape in shapes_)


# built-in chains of every legacy table (a user chain may not take these names)
BUILTIN = frozenset(("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"))
