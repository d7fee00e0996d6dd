"""Socket-level pieces the probe engine shares: Linux constants missing from Python's socket module,
the source ports of crafted probes, reading the IP_RECVERR error queue and kernel receive timestamps,
and batches of non-blocking sockets made in the calling thread's namespace."""
from __future__ import annotations

import socket
import struct

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)
SO_EE_ORIGIN_ICMP = 2

# Source ports of crafted TCP/UDP probes: above the default ephemeral range (32768-60999), so the
# kernel never hands them to a local socket. (Not checked against sockets bound explicitly in the
# namespace: /proc/net/tcp walks the whole host's hash table, ~5 ms per namespace. Such a collision
# does not fool a probe, the raw socket still gets its copy; the local socket may see a stray reply.)
SPORT_LO, SPORT_HI = 61000, 65535


def read_errqueue(sock: socket.socket) -> tuple[int, int, int, int, str | None] | None:
    """(ee_errno, origin, icmp type, icmp code, offender) of the first queued IP_RECVERR entry."""
    try:
        _, anc, _, _ = sock.recvmsg(512, socket.CMSG_SPACE(512), MSG_ERRQUEUE)
    except OSError:
        return None
    for level, ctype, data in anc:
        if level == socket.IPPROTO_IP and ctype == IP_RECVERR and len(data) >= 16:
            ee_errno, origin, itype, code, _pad, _info, _data = struct.unpack_from("=IBBBBII", data)
            offender = None
            if len(data) >= 24 and struct.unpack_from("=H", data, 16)[0] == socket.AF_INET:
                offender = socket.inet_ntoa(data[20:24])
                if offender == "0.0.0.0":
                    offender = None
            return ee_errno, origin, itype, code, offender
    return None


def kernel_ts_ns(anc: list) -> int | None:
    for level, ctype, data in anc:
        if level == socket.SOL_SOCKET and ctype == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack_from("=qq", data)
            return sec * 1_000_000_000 + nsec
    return None


def make_sockets(n_stream: int, n_dgram: int) -> dict[int, list[socket.socket]]:
    """Non-blocking TCP/UDP sockets of the calling thread's namespace, for later use from any thread."""
    pool: dict[int, list[socket.socket]] = {socket.SOCK_STREAM: [], socket.SOCK_DGRAM: []}
    try:
        for kind, n in ((socket.SOCK_STREAM, n_stream), (socket.SOCK_DGRAM, n_dgram)):
            for _ in range(n):
                pool[kind].append(socket.socket(socket.AF_INET, kind | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC))
    except OSError:
        if not any(pool.values()):
            raise
    return pool
