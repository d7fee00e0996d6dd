"""Low-level probe engine: ICMP/TCP/UDP probes crafted with scapy, and HTTP / UDP exchanges over real
sockets, all run *inside* a source network namespace.

A probe never reports "reachable" unless the answer was seen coming back:

* icmp / tcp / udp: the request is built with scapy and sent through a raw IPv4 socket (IP_HDRINCL)
  created in the source namespace; replies are read from raw ICMP/TCP/UDP sockets of that namespace
  (with a classic BPF filter attached in the kernel) and matched strictly: TCP replies by
  (src == dst, sport == port, dport == our port, ack == our ISN + 1), UDP replies by
  (src, sport, dport), echo replies by (src, id, seq, random payload token), ICMP errors by the quoted
  original packet (our source address, our source port / echo id, and for TCP our ISN).
  Packets go through netfilter like any local traffic, so a probe to a Service ClusterIP is DNATed in
  OUTPUT and its reply comes back un-DNATed from the ClusterIP.
* http / udp-app: a real TCP / connected UDP socket created in the source namespace exchanges the
  built-in server's requests (GET path + GET /clientip, or "hostname" + "clientip").

Threads: a socket belongs to the namespace in which it was *created*; connect/send/recv then work
from any thread. Probes are grouped by source namespace; a group's sockets are created by a
throwaway thread that enters the namespace and ends (nsfs.in_netns; sockets for HTTP/UDP exchanges
come from a pool refilled the same way), and a single event loop on the caller's thread, which never
changes namespace, drives every probe of every group with non-blocking sockets and epoll. So all
groups are in flight together and a run with timeouts lasts about one timeout, not one per wave of
groups. Limits: `concurrency` probes in flight per source namespace, `max_groups` namespaces with
open sockets at once, `max_in_flight` probes in flight overall.
"""
from __future__ import annotations

import ctypes
import errno
import heapq
import ipaddress
import itertools
import logging
import os
import random
import resource
import secrets
import selectors
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Iterable

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror

from netlab.dataplane import nsfs

log = logging.getLogger(__name__)

KINDS = ("icmp", "tcp", "udp", "http", "udp-app")
OUTCOMES = ("reachable", "refused", "timeout", "unreachable", "error")


@dataclass
class ProbeSpec:
    source_netns: str          # netns name under /run/netns (pod, node or external host namespace)
    kind: str                  # "icmp" | "tcp" | "udp" | "http" | "udp-app"
    dst: str                   # IPv4 address
    port: int | None = None
    timeout: float = 1.0
    payload: str = "hostname"  # for udp / udp-app
    path: str = "/hostname"    # for http
    label: str = ""            # free text for reports


@dataclass
class ProbeResult:
    spec: ProbeSpec
    outcome: str               # "reachable" | "refused" | "timeout" | "unreachable" | "error"
    rtt_ms: float | None
    detail: str
    answered_by: str | None = None   # pod name from the app-level exchange (/hostname or UDP hostname)
    client_ip: str | None = None     # source ip the server saw (/clientip or UDP clientip), ip only
    reply_src: str | None = None     # source address of the reply packet


# ----------------------------------------------------------------------------------------------
# Constants (Linux values; some are missing from Python's socket module)

SO_ATTACH_FILTER = 26
SO_GET_FILTER = SO_ATTACH_FILTER
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)
SO_EE_ORIGIN_ICMP = 2
DLT_RAW = 12            # libpcap link type whose packets start at the IP header (like AF_INET raw sockets)
BPF_ACCEPT = 0x40000    # snap length returned by an accepting filter

# Source ports of crafted TCP/UDP probes: above the default ephemeral range (32768-60999), so the
# kernel never hands them to a local socket. (Not checked against sockets bound explicitly in the
# namespace: /proc/net/tcp walks the whole host's hash table, ~5 ms per namespace. Such a collision
# does not fool a probe, the raw socket still gets its copy; the local socket may see a stray reply.)
SPORT_LO, SPORT_HI = 61000, 65535
MAX_FILTER_HOSTS = 256  # beyond this many destinations the BPF filter does not list source hosts
RAW_RCVBUF = 4 << 20
ICMP_TYPES = (0, 3, 11)  # echo-reply, destination-unreachable, time-exceeded
START_BATCH = 32        # probes started per event-loop turn before replies are read again
ADMIT_BATCH = 16        # source namespaces set up per event-loop turn
EPERM_GRACE = 0.1       # after a send refused by local netfilter, wait this long for its ICMP error

UNREACH_CODES = {
    0: "net-unreachable", 1: "host-unreachable", 2: "protocol-unreachable", 3: "port-unreachable",
    4: "fragmentation-needed", 5: "source-route-failed", 6: "net-unknown", 7: "host-unknown",
    8: "source-host-isolated", 9: "net-prohibited", 10: "host-prohibited",
    11: "net-unreachable-for-tos", 12: "host-unreachable-for-tos", 13: "admin-prohibited",
    14: "host-precedence-violation", 15: "precedence-cutoff",
}
# ICMP errors that mean "something actively rejected the connection" for TCP/UDP probes
# (iptables REJECT sends port-unreachable by default, or one of the *-prohibited codes).
REFUSED_CODES = {2, 3, 9, 10, 13}
UNREACHABLE_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN,
                      errno.EADDRNOTAVAIL}


def icmp_error_name(itype: int, code: int) -> str:
    if itype == 3:
        return UNREACH_CODES.get(code, f"unreachable-code-{code}")
    if itype == 11:
        return "time-exceeded" if code == 0 else "fragment-reassembly-time-exceeded"
    if itype == 12:
        return "parameter-problem"
    return f"type-{itype}-code-{code}"


def icmp_error_outcome(kind: str, itype: int, code: int) -> str:
    if itype == 3:
        if kind != "icmp" and code in REFUSED_CODES:
            return "refused"
        return "unreachable"
    if itype == 11:
        return "unreachable"
    return "error"


# ----------------------------------------------------------------------------------------------
# Classic BPF: compiled with libpcap through scapy (link type DLT_RAW), or written by hand

_compile_lock = threading.Lock()
_libc = ctypes.CDLL(None, use_errno=True)
_libc.getsockopt.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                             ctypes.POINTER(ctypes.c_uint32)]

# struct sock_filter { __u16 code; __u8 jt; __u8 jf; __u32 k; }
_INSN = struct.Struct("=HBBI")
BPF_LD_W_ABS, BPF_LD_H_IND, BPF_LD_B_IND, BPF_LDX_MSH = 0x20, 0x48, 0x50, 0xB1
BPF_JEQ_K, BPF_JGE_K, BPF_JGT_K, BPF_JSET_K, BPF_JA = 0x15, 0x35, 0x25, 0x45, 0x05
BPF_AND_K, BPF_RET_K = 0x54, 0x06


def bpf_expression(proto: int, srcs: Iterable[str], echo_srcs: Iterable[str] = ()) -> str:
    """The pcap filter for one raw receive socket of a probe group."""
    def hosts(addrs: Iterable[str]) -> str | None:
        addrs = sorted(set(addrs))
        if not addrs or len(addrs) > MAX_FILTER_HOSTS:
            return None
        return "(" + " or ".join(f"src host {a}" for a in addrs) + ")"
    if proto == socket.IPPROTO_TCP:
        parts = ["tcp", f"dst portrange {SPORT_LO}-{SPORT_HI}",
                 "(tcp[13] & 4 != 0 or tcp[13] & 18 == 18)"]  # RST, or SYN+ACK
        h = hosts(srcs)
        return " and ".join(parts + ([h] if h else []))
    if proto == socket.IPPROTO_UDP:
        parts = ["udp", f"dst portrange {SPORT_LO}-{SPORT_HI}"]
        h = hosts(srcs)
        return " and ".join(parts + ([h] if h else []))
    if proto == socket.IPPROTO_ICMP:
        # errors come from any router/node: only protocol + type for them
        echo = "icmp[0] == 0"
        h = hosts(echo_srcs)
        if h:
            echo = f"(icmp[0] == 0 and {h})"
        return f"icmp and ({echo} or icmp[0] == 3 or icmp[0] == 11)"
    raise ValueError(f"no filter for IP protocol {proto}")


def compile_bpf(expr: str) -> bytes:
    """Compile a pcap filter for packets that start at the IP header; returns struct sock_filter[]."""
    from scapy.arch.common import compile_filter, free_filter
    with _compile_lock:  # libpcap's compiler has had global state; compiling is rare and cheap
        bp = compile_filter(expr, linktype=DLT_RAW)
        try:
            return ctypes.string_at(bp.bf_insns, bp.bf_len * _INSN.size)
        finally:
            free_filter(bp)


def handwritten_bpf(proto: int, srcs: Iterable[str]) -> bytes:
    """The same filter without libpcap (fallback): protocol, source hosts, our port range, TCP flags;
    for ICMP only the types. Packets start at the IP header."""
    prog: list[tuple[int, int, int, int]] = []

    def op(code: int, k: int = 0, jt: int = 0, jf: int = 0) -> int:
        prog.append((code, jt, jf, k))
        return len(prog) - 1

    patches: list[tuple[int, str]] = []  # (insn index, label) for forward jumps fixed up at the end
    labels: dict[str, int] = {}
    addrs = sorted(set(srcs))
    op(0x30, 9)                                   # ldb [9]  (protocol)
    op(BPF_JEQ_K, proto, jt=1, jf=0)              # conditional jumps reach 255 insns at most:
    j = op(BPF_JA)                                # the long way to "reject" is an unconditional ja
    patches.append((j, "ja:reject"))
    if proto == socket.IPPROTO_ICMP:
        op(BPF_LDX_MSH, 0)                        # x = 4 * (ip[0] & 0xf)
        op(BPF_LD_B_IND, 0)                       # a = icmp type
        for t in ICMP_TYPES:
            j = op(BPF_JEQ_K, t)
            patches.append((j, "jt:accept"))
        j = op(BPF_JA)
        patches.append((j, "ja:reject"))
    else:
        if addrs and len(addrs) <= MAX_FILTER_HOSTS:
            op(BPF_LD_W_ABS, 12)                  # a = source address
            for a in addrs:
                k = struct.unpack("!I", socket.inet_aton(a))[0]
                op(BPF_JEQ_K, k, jt=0, jf=1)      # match -> next insn (ja hosts_ok), else skip it
                j = op(BPF_JA)
                patches.append((j, "ja:hosts_ok"))
            j = op(BPF_JA)
            patches.append((j, "ja:reject"))
        labels["hosts_ok"] = len(prog)
        op(BPF_LDX_MSH, 0)
        op(BPF_LD_H_IND, 2)                       # a = destination port
        j = op(BPF_JGE_K, SPORT_LO)
        patches.append((j, "jf:reject"))
        if proto == socket.IPPROTO_TCP:
            op(BPF_LD_B_IND, 13)                  # a = TCP flags
            j = op(BPF_JSET_K, 0x04)              # RST
            patches.append((j, "jt:accept"))
            op(BPF_AND_K, 0x12)
            j = op(BPF_JEQ_K, 0x12)               # SYN+ACK
            patches.append((j, "jt:accept"))
        j = op(BPF_JA)
        patches.append((j, "ja:accept" if proto != socket.IPPROTO_TCP else "ja:reject"))
    labels["reject"] = op(BPF_RET_K, 0)
    labels["accept"] = op(BPF_RET_K, BPF_ACCEPT)
    for idx, ref in patches:
        how, label = ref.split(":")
        code, jt, jf, k = prog[idx]
        off = labels[label] - idx - 1
        if how == "ja":
            k = off
        elif how == "jt":
            jt = off
        else:
            jf = off
        if how != "ja" and not 0 <= off <= 255:
            raise ValueError("BPF conditional jump out of range")
        prog[idx] = (code, jt, jf, k)
    return b"".join(_INSN.pack(*insn) for insn in prog)


def attach_bpf(sock: socket.socket, prog: bytes) -> int:
    """Attach a classic BPF program (SO_ATTACH_FILTER) and read it back (SO_GET_FILTER) to verify that
    the kernel holds exactly this program. Returns the number of instructions."""
    n = len(prog) // _INSN.size
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = struct.pack("@HP", n, ctypes.addressof(buf))  # struct sock_fprog
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    # SO_GET_FILTER counts in instructions, not bytes (optlen in and out); Python's getsockopt caps
    # its buffer at 1024 bytes, so call libc directly.
    out = ctypes.create_string_buffer(len(prog))
    optlen = ctypes.c_uint32(n)
    if _libc.getsockopt(sock.fileno(), socket.SOL_SOCKET, SO_GET_FILTER, out, ctypes.byref(optlen)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"SO_GET_FILTER: {os.strerror(e)}")
    if optlen.value != n or out.raw != prog:
        raise OSError(errno.EIO, "the kernel does not hold the BPF filter that was attached")
    return n


def attached_bpf(sock: socket.socket) -> bytes:
    """The classic BPF program the kernel holds for this socket (b"" if none)."""
    count = ctypes.c_uint32(0)
    if _libc.getsockopt(sock.fileno(), socket.SOL_SOCKET, SO_GET_FILTER, None, ctypes.byref(count)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"SO_GET_FILTER: {os.strerror(e)}")
    if not count.value:
        return b""
    out = ctypes.create_string_buffer(count.value * _INSN.size)
    optlen = ctypes.c_uint32(count.value)
    if _libc.getsockopt(sock.fileno(), socket.SOL_SOCKET, SO_GET_FILTER, out, ctypes.byref(optlen)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"SO_GET_FILTER: {os.strerror(e)}")
    return out.raw[:optlen.value * _INSN.size]


def open_raw_receiver(proto: int, srcs: Iterable[str] = (), echo_srcs: Iterable[str] = (),
                      mode: str = "auto") -> tuple[socket.socket, str]:
    """A non-blocking raw receive socket for `proto` in the calling thread's namespace, with its BPF
    filter attached. mode: "auto" (libpcap, else hand-written), "pcap", "handwritten" or "none".
    Returns (socket, how the filter was made)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, proto)
    try:
        how = "none"
        if mode != "none":
            prog = None
            if mode in ("auto", "pcap"):
                try:
                    prog = compile_bpf(bpf_expression(proto, srcs, echo_srcs))
                    how = "pcap"
                except Exception as e:  # noqa: BLE001 - no libpcap, or it refused the expression
                    if mode == "pcap":
                        raise
                    log.debug("libpcap could not compile the probe filter (%s); using the hand-written one", e)
            if prog is None:
                # (for ICMP it checks the types only)
                prog = handwritten_bpf(proto, [] if proto == socket.IPPROTO_ICMP else list(srcs))
                how = "handwritten"
            attach_bpf(s, prog)
        try:
            s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RAW_RCVBUF)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RAW_RCVBUF)
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        # Anything queued between socket() and the filter did not go through it: throw it away
        # (nothing has been sent yet, so nothing of ours can be in there).
        while True:
            try:
                s.recv(65535)
            except (BlockingIOError, InterruptedError):
                break
        return s, how
    except BaseException:
        s.close()
        raise


# ----------------------------------------------------------------------------------------------
# Small helpers

_port_counter = itertools.count(random.randrange(SPORT_HI - SPORT_LO + 1))
_icmp_counter = itertools.count(random.randrange(1 << 16))
_counter_lock = threading.Lock()
_heap_seq = itertools.count()


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def _errname(err: int) -> str:
    return f"{errno.errorcode.get(err, err)} ({os.strerror(err)})"


def _read_errqueue(sock: socket.socket) -> tuple[int, int, int, int, str | None] | None:
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


def _kernel_ts_ns(anc: list) -> int | None:
    for level, ctype, data in anc:
        if level == socket.SOL_SOCKET and ctype == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack_from("=qq", data)
            return sec * 1_000_000_000 + nsec
    return None


def _text(b: bytes, limit: int = 200) -> str:
    t = b.decode("utf-8", "replace").strip()
    return t if len(t) <= limit else t[:limit] + "..."


def _ip_only(s: str) -> str | None:
    host = s.strip().rsplit(":", 1)[0].strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return host


# ----------------------------------------------------------------------------------------------
# Probes

class _Probe:
    __slots__ = ("idx", "spec", "deadline", "done", "group")

    def __init__(self, idx: int, spec: ProbeSpec):
        self.idx, self.spec = idx, spec
        self.deadline = 0.0
        self.done = False
        self.group: _Group | None = None

    def start(self, g: "_Group") -> None:
        raise NotImplementedError

    def set_deadline(self, g: "_Group", seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        heapq.heappush(g.engine.heap, (self.deadline, next(_heap_seq), self, g))

    def on_deadline(self, g: "_Group") -> None:
        raise NotImplementedError

    def close(self, g: "_Group") -> None:
        pass

    def finish(self, g: "_Group", outcome: str, detail: str, rtt_ms: float | None = None, **kw) -> None:
        if self.done:
            return
        self.done = True
        g.results[self.idx] = ProbeResult(self.spec, outcome, rtt_ms, detail, **kw)
        self.close(g)
        g.active.discard(self)


class _RawProbe(_Probe):
    """icmp / tcp / udp: scapy-crafted request, reply read from the group's raw sockets."""
    __slots__ = ("src", "key", "isn", "token", "t_send_ns", "eperm")

    def __init__(self, idx: int, spec: ProbeSpec):
        super().__init__(idx, spec)
        self.src = ""
        self.key = 0          # source port (tcp/udp) or echo id (icmp)
        self.isn = 0
        self.token = b""
        self.t_send_ns = 0
        self.eperm = False

    def _table(self, g: "_Group") -> dict:
        return {"icmp": g.icmp_by_id, "tcp": g.tcp_by_sport, "udp": g.udp_by_sport}[self.spec.kind]

    def start(self, g: "_Group") -> None:
        spec = self.spec
        self.src = g.source_for(spec.dst, spec.port)
        ipid = random.randrange(1, 1 << 16)
        if spec.kind == "icmp":
            self.key = g.alloc_icmp_id()
            self.token = b"netlab-probe:" + secrets.token_bytes(8)
            self.isn = random.randrange(1 << 16)  # echo sequence number
            pkt = IP(src=self.src, dst=spec.dst, id=ipid, ttl=64) / \
                ICMP(type=8, id=self.key, seq=self.isn) / self.token
        elif spec.kind == "tcp":
            self.key = g.alloc_port()
            self.isn = random.randrange(1 << 32)
            pkt = IP(src=self.src, dst=spec.dst, id=ipid, ttl=64, flags="DF") / \
                TCP(sport=self.key, dport=spec.port, seq=self.isn, flags="S", window=64240,
                    options=[("MSS", 1460)])
        else:
            self.key = g.alloc_port()
            pkt = IP(src=self.src, dst=spec.dst, id=ipid, ttl=64, flags="DF") / \
                UDP(sport=self.key, dport=spec.port) / spec.payload.encode()
        data = bytes(pkt)
        self._table(g)[self.key] = self
        self.set_deadline(g, spec.timeout)
        self.t_send_ns = time.time_ns()
        try:
            g.send_sock.sendto(data, (spec.dst, 0))
        except (BlockingIOError, InterruptedError):
            raise _Retry() from None
        except OSError as e:
            if e.errno in (errno.EPERM, errno.EACCES):
                # refused by netfilter in this namespace: a REJECT rule has queued its ICMP error
                # already; give it a moment, else report the local drop
                self.eperm = True
                self.set_deadline(g, min(spec.timeout, EPERM_GRACE))
                return
            raise

    def close(self, g: "_Group") -> None:
        table = self._table(g)
        if table.get(self.key) is self:
            del table[self.key]

    def on_deadline(self, g: "_Group") -> None:
        if self.eperm:
            self.finish(g, "unreachable", "dropped by netfilter in the source namespace (send: EPERM)")
        else:
            self.finish(g, "timeout", f"no reply within {self.spec.timeout:g}s")

    def _rtt(self, ts_ns: int | None) -> float:
        now = ts_ns if ts_ns is not None else time.time_ns()
        if now < self.t_send_ns:  # realtime clock stepped
            now = time.time_ns()
        return round(max(0, now - self.t_send_ns) / 1e6, 3)

    # -- replies (already matched on the table key by the group)
    def on_echo_reply(self, g: "_Group", ip: IP, icmp: ICMP, ts_ns: int | None) -> None:
        if ip.src != self.spec.dst or icmp.seq != self.isn or bytes(icmp.payload) != self.token:
            return
        self.finish(g, "reachable", f"echo-reply from {ip.src}", self._rtt(ts_ns), reply_src=ip.src)

    def on_tcp(self, g: "_Group", ip: IP, tcp: TCP, ts_ns: int | None) -> None:
        spec = self.spec
        if ip.src != spec.dst or tcp.sport != spec.port:
            return
        flags = int(tcp.flags)
        want_ack = (self.isn + 1) & 0xFFFFFFFF
        if flags & 0x12 == 0x12 and tcp.ack == want_ack:
            self.finish(g, "reachable", f"SYN-ACK from {ip.src}:{tcp.sport}", self._rtt(ts_ns), reply_src=ip.src)
        elif flags & 0x04 and flags & 0x10 and tcp.ack == want_ack:
            self.finish(g, "refused", f"RST from {ip.src}:{tcp.sport}", self._rtt(ts_ns), reply_src=ip.src)

    def on_udp(self, g: "_Group", ip: IP, udp: UDP, ts_ns: int | None) -> None:
        spec = self.spec
        if ip.src != spec.dst or udp.sport != spec.port:
            return
        body = _text(bytes(udp.payload))
        kw = {}
        cmd = spec.payload.strip()
        if cmd == "hostname":
            kw["answered_by"] = body
        elif cmd == "clientip":
            kw["client_ip"] = _ip_only(body)
        self.finish(g, "reachable", f"UDP reply from {ip.src}:{udp.sport}: {body!r}", self._rtt(ts_ns),
                    reply_src=ip.src, **kw)

    def on_icmp_error(self, g: "_Group", itype: int, code: int, offender: str, inner_dst: str,
                      inner_dport: int, inner_seq: int | None, ts_ns: int | None) -> None:
        spec = self.spec
        if spec.kind == "tcp" and inner_seq is not None and inner_seq != self.isn:
            return
        if spec.kind == "icmp" and inner_seq is not None and inner_seq != self.isn:
            return
        detail = f"ICMP {icmp_error_name(itype, code)} from {offender}"
        if spec.kind == "icmp":
            if inner_dst != spec.dst:
                detail += f" (for {inner_dst})"
        elif (inner_dst, inner_dport) != (spec.dst, spec.port):
            detail += f" (for {inner_dst}:{inner_dport})"
        self.finish(g, icmp_error_outcome(spec.kind, itype, code), detail, self._rtt(ts_ns), reply_src=offender)


class _Retry(Exception):
    """The send socket is full: try this probe again on the next loop turn."""


class _SockProbe(_Probe):
    """Common part of the probes over real sockets (http, udp-app)."""
    __slots__ = ("sock", "phase", "t_phase", "rtt", "answered_by", "client_ip", "first_detail")

    def __init__(self, idx: int, spec: ProbeSpec):
        super().__init__(idx, spec)
        self.sock: socket.socket | None = None
        self.phase = 0
        self.t_phase = 0.0
        self.rtt: float | None = None
        self.answered_by: str | None = None
        self.client_ip: str | None = None
        self.first_detail = ""

    def close(self, g: "_Group") -> None:
        self._close_sock(g)

    def _close_sock(self, g: "_Group") -> None:
        if self.sock is not None:
            try:
                g.sel.unregister(self.sock)
            except (KeyError, ValueError):
                pass
            self.sock.close()
            self.sock = None

    def _finish_ok(self, g: "_Group", note: str = "") -> None:
        detail = self.first_detail + (f"; {note}" if note else "")
        self.finish(g, "reachable", detail, self.rtt, answered_by=self.answered_by,
                    client_ip=self.client_ip, reply_src=self.spec.dst)

    def _fail(self, g: "_Group", err: int, what: str) -> None:
        """A socket error: in the first exchange it decides the outcome, in the second it is a note."""
        info = _read_errqueue(self.sock) if self.sock is not None else None
        rtt = _ms(time.perf_counter() - self.t_phase)
        reply_src = None
        if info is not None and info[1] == SO_EE_ORIGIN_ICMP:
            _, _, itype, code, offender = info
            outcome = icmp_error_outcome(self.spec.kind, itype, code)
            detail = f"ICMP {icmp_error_name(itype, code)} from {offender or '?'}"
            reply_src = offender
        elif err == errno.ECONNREFUSED:
            outcome = "refused"
            if self.spec.kind == "http":
                detail = f"RST from {self.spec.dst}:{self.spec.port}"
                reply_src = self.spec.dst
            else:
                detail = "connection refused (ICMP port-unreachable)"
        elif err in UNREACHABLE_ERRNOS:
            outcome, detail, rtt = "unreachable", f"{what}: {_errname(err)}", None
        elif err in (errno.EPERM, errno.EACCES):
            outcome, rtt = "unreachable", None
            detail = f"dropped by netfilter or a prohibit route in the source namespace ({what}: {_errname(err)})"
        elif err == errno.ETIMEDOUT:
            outcome, detail, rtt = "timeout", f"{what}: {_errname(err)}", None
        else:
            outcome, detail, rtt = "error", f"{what}: {_errname(err)}", None
        if self.phase > 0:
            self._finish_ok(g, f"{self._second_name()} failed: {detail}")
        else:
            self.finish(g, outcome, detail, rtt if outcome in ("refused", "unreachable") else None,
                        reply_src=reply_src)

    def _second_name(self) -> str:
        return "second exchange"


class _HttpProbe(_SockProbe):
    __slots__ = ("connected", "sent", "buf")

    def __init__(self, idx: int, spec: ProbeSpec):
        super().__init__(idx, spec)
        self.connected = False
        self.sent = 0
        self.buf = bytearray()

    def _path(self) -> str:
        return self.spec.path if self.phase == 0 else "/clientip"

    def _second_name(self) -> str:
        return "GET /clientip"

    def _request(self) -> bytes:
        return (f"GET {self._path()} HTTP/1.1\r\nHost: {self.spec.dst}:{self.spec.port}\r\n"
                "User-Agent: netlab-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n").encode()

    def start(self, g: "_Group") -> None:
        self._open(g)

    def _open(self, g: "_Group") -> None:
        self.connected, self.sent, self.buf = False, 0, bytearray()
        try:
            s = g.new_socket(socket.SOCK_STREAM)   # made in the source namespace
        except OSError as e:
            self._fail(g, e.errno or errno.EIO, "socket")
            return
        self.sock = s
        s.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.t_phase = time.perf_counter()
        self.set_deadline(g, self.spec.timeout)
        err = s.connect_ex((self.spec.dst, self.spec.port))
        if err not in (0, errno.EINPROGRESS):
            self._fail(g, err, "connect")
            return
        g.sel.register(s, selectors.EVENT_WRITE, self)

    def on_event(self, g: "_Group", mask: int) -> None:
        s = self.sock
        if s is None:
            return
        if not self.connected:
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self._fail(g, err, "connect")
                return
            if not mask & selectors.EVENT_WRITE:
                return
            self.connected = True
        req = self._request()
        if self.sent < len(req):
            try:
                self.sent += s.send(req[self.sent:])
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self._fail(g, e.errno or errno.EIO, "send")
                return
            if self.sent >= len(req):
                g.sel.modify(s, selectors.EVENT_READ, self)
            return
        while True:
            try:
                chunk = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                if self._complete():
                    self._response(g)
                return
            except OSError as e:
                if self._complete():
                    self._response(g)
                else:
                    self._fail(g, e.errno or errno.EIO, "recv")
                return
            if not chunk:
                self._response(g)
                return
            self.buf += chunk
            if len(self.buf) > 1 << 20:
                self._response(g)
                return

    def _complete(self) -> bool:
        head, sep, body = bytes(self.buf).partition(b"\r\n\r\n")
        if not sep:
            return False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                try:
                    return len(body) >= int(value.strip())
                except ValueError:
                    return False
        return False

    def _parse(self) -> tuple[int, str] | None:
        head, sep, body = bytes(self.buf).partition(b"\r\n\r\n")
        if not sep:
            return None
        status = head.split(b"\r\n", 1)[0].split()
        if len(status) < 2 or not status[0].startswith(b"HTTP/") or not status[1].isdigit():
            return None
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length" and value.strip().isdigit():
                length = int(value.strip())
        if length is not None:
            body = body[:length]
        return int(status[1]), _text(body)

    def _response(self, g: "_Group") -> None:
        parsed = self._parse()
        elapsed = _ms(time.perf_counter() - self.t_phase)
        self._close_sock(g)
        if self.phase == 0:
            if parsed is None:
                got = f"{len(self.buf)} bytes that are not an HTTP response" if self.buf else "the connection closed"
                self.finish(g, "error", f"connected to {self.spec.dst}:{self.spec.port} but got {got}")
                return
            status, body = parsed
            self.rtt = elapsed
            self.first_detail = f"HTTP {status} from {self.spec.dst}:{self.spec.port} GET {self.spec.path}: {body!r}"
            if status == 200 and self.spec.path.split("?")[0] in ("/", "/hostname"):
                self.answered_by = body
            self.phase = 1
            self._open(g)
            return
        if parsed is None or parsed[0] != 200:
            self._finish_ok(g, "GET /clientip: no valid answer")
            return
        self.client_ip = _ip_only(parsed[1])
        self._finish_ok(g)

    def on_deadline(self, g: "_Group") -> None:
        t = self.spec.timeout
        if self.phase > 0:
            self._finish_ok(g, f"GET /clientip: no answer within {t:g}s")
        elif self.connected:
            self.finish(g, "timeout", f"TCP connected to {self.spec.dst}:{self.spec.port} but no HTTP "
                                      f"response within {t:g}s")
        else:
            self.finish(g, "timeout", f"no answer to the TCP connect within {t:g}s")


class _UdpAppProbe(_SockProbe):
    __slots__ = ("cmds",)

    def __init__(self, idx: int, spec: ProbeSpec):
        super().__init__(idx, spec)
        first = spec.payload
        self.cmds = [first] if first.strip() == "clientip" else [first, "clientip"]

    def _second_name(self) -> str:
        return "UDP clientip"

    def start(self, g: "_Group") -> None:
        try:
            s = g.new_socket(socket.SOCK_DGRAM)    # made in the source namespace
        except OSError as e:
            self._fail(g, e.errno or errno.EIO, "socket")
            return
        self.sock = s
        s.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        self.t_phase = time.perf_counter()
        self.set_deadline(g, self.spec.timeout)
        try:
            s.connect((self.spec.dst, self.spec.port))
        except OSError as e:
            self._fail(g, e.errno or errno.EIO, "connect")
            return
        g.sel.register(s, selectors.EVENT_READ, self)
        self._send(g)

    def _send(self, g: "_Group") -> None:
        self.t_phase = time.perf_counter()
        self.set_deadline(g, self.spec.timeout)
        try:
            self.sock.send(self.cmds[self.phase].encode())
        except OSError as e:
            self._fail(g, e.errno or errno.EIO, "send")

    def on_event(self, g: "_Group", mask: int) -> None:
        if self.sock is None:
            return
        try:
            data = self.sock.recv(65535)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self._fail(g, e.errno or errno.EIO, "recv")
            return
        body = _text(data)
        cmd = self.cmds[self.phase].strip()
        if cmd == "hostname":
            self.answered_by = body
        elif cmd == "clientip":
            self.client_ip = _ip_only(body)
        if self.phase == 0:
            self.rtt = _ms(time.perf_counter() - self.t_phase)
            self.first_detail = f"UDP reply from {self.spec.dst}:{self.spec.port}: {body!r}"
        self.phase += 1
        if self.phase < len(self.cmds):
            self._send(g)
        else:
            self._finish_ok(g)

    def on_deadline(self, g: "_Group") -> None:
        if self.phase > 0:
            self._finish_ok(g, f"UDP clientip: no answer within {self.spec.timeout:g}s")
        else:
            self.finish(g, "timeout", f"no UDP reply within {self.spec.timeout:g}s")


_PROBE_CLASSES = {"icmp": _RawProbe, "tcp": _RawProbe, "udp": _RawProbe,
                  "http": _HttpProbe, "udp-app": _UdpAppProbe}


# ----------------------------------------------------------------------------------------------
# Groups and the engine
#
# A socket belongs to the namespace that was current on the thread that *created* it; everything
# else (connect, sendto, recv, setsockopt) works from any thread. So each group's sockets are made
# by a throwaway thread that enters the group's namespace and ends (nsfs.in_netns), and one event
# loop on the caller's thread, which never changes namespace, drives the probes of every group.

def _group_setup(netns: str, kinds: set[str], dsts: dict[str, set[str]], all_dsts: dict[str, int | None],
                 filter_mode: str, n_stream: int, n_dgram: int) -> dict:
    """Runs inside the group's namespace (on a throwaway thread): every socket the group starts with
    and the source address the kernel picks for each destination of a crafted probe."""
    out: dict = {"raw": {}, "filters": {}, "send": None, "src": {}, "pool": None}
    try:
        if kinds & {"icmp", "tcp", "udp"}:
            wanted = [(socket.IPPROTO_ICMP, "icmp", (), dsts["icmp"])]
            if dsts["tcp"]:
                wanted.append((socket.IPPROTO_TCP, "tcp", dsts["tcp"], ()))
            if dsts["udp"]:
                wanted.append((socket.IPPROTO_UDP, "udp", dsts["udp"], ()))
            for proto, name, srcs, echo_srcs in wanted:
                sock, how = open_raw_receiver(proto, srcs, echo_srcs, filter_mode)
                out["raw"][proto] = sock
                out["filters"][name] = how
            out["send"] = socket.socket(socket.AF_INET, socket.SOCK_RAW | socket.SOCK_NONBLOCK |
                                        socket.SOCK_CLOEXEC, socket.IPPROTO_RAW)
            for dst, port in all_dsts.items():
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                try:
                    s.connect((dst, port or 9))
                    out["src"][dst] = s.getsockname()[0]
                except OSError as e:
                    out["src"][dst] = e
                finally:
                    s.close()
        out["pool"] = _make_sockets(n_stream, n_dgram)
        return out
    except BaseException:
        _close_setup(out)
        raise


def _make_sockets(n_stream: int, n_dgram: int) -> dict[int, list[socket.socket]]:
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


def _close_setup(out: dict) -> None:
    for s in out.get("raw", {}).values():
        s.close()
    if out.get("send") is not None:
        out["send"].close()
    for socks in (out.get("pool") or {}).values():
        for s in socks:
            s.close()


class _Group:
    """The probes of one source namespace."""

    def __init__(self, engine: "_Engine", netns: str, items: list[tuple[int, ProbeSpec]]):
        self.engine = engine
        self.netns = netns
        self.items = items
        self.results = engine.results
        self.sel = engine.sel
        self.pending: deque[_Probe] = deque(_PROBE_CLASSES[spec.kind](idx, spec) for idx, spec in items)
        self.active: set[_Probe] = set()
        self.blocked = False
        self.filters: dict[str, str] = {}  # protocol -> how its BPF filter was made (tests, debugging)
        self.stats = {"packets": 0, "matched": 0, "socket_batches": 0}
        self.send_sock: socket.socket | None = None
        self.raw: dict[int, socket.socket] = {}
        self.icmp_by_id: dict[int, _RawProbe] = {}
        self.tcp_by_sport: dict[int, _RawProbe] = {}
        self.udp_by_sport: dict[int, _RawProbe] = {}
        self._src: dict[str, str | OSError] = {}
        self._pool: dict[int, list[socket.socket]] = {socket.SOCK_STREAM: [], socket.SOCK_DGRAM: []}
        # sockets still to be handed out: two per http probe (GET path, GET /clientip), one per udp-app
        self._need = {socket.SOCK_STREAM: 2 * sum(s.kind == "http" for _, s in items),
                      socket.SOCK_DGRAM: sum(s.kind == "udp-app" for _, s in items)}

    def _batch(self, kind: int) -> int:
        return min(self._need[kind], self.engine.concurrency)

    def _in_ns(self, fn):
        return nsfs.in_netns(self.netns, fn) if self.netns else nsfs.run_in_thread(fn)

    def setup(self) -> None:
        kinds = {spec.kind for _, spec in self.items}
        raw_specs = [spec for _, spec in self.items if spec.kind in ("icmp", "tcp", "udp")]
        dsts = {k: {spec.dst for spec in raw_specs if spec.kind == k} for k in ("icmp", "tcp", "udp")}
        all_dsts = {spec.dst: spec.port for spec in raw_specs}
        n_stream, n_dgram = self._batch(socket.SOCK_STREAM), self._batch(socket.SOCK_DGRAM)
        mode = self.engine.filter_mode
        out = self._in_ns(lambda: _group_setup(self.netns, kinds, dsts, all_dsts, mode, n_stream, n_dgram))
        self.raw, self.filters, self.send_sock = out["raw"], out["filters"], out["send"]
        self._src, self._pool = out["src"], out["pool"]
        self.stats["socket_batches"] += 1
        for proto, sock in self.raw.items():
            self.sel.register(sock, selectors.EVENT_READ, (self, proto))

    def teardown(self) -> None:
        for p in list(self.active):
            p.close(self)
        self.active.clear()
        for sock in self.raw.values():
            try:
                self.sel.unregister(sock)
            except (KeyError, ValueError):
                pass
        _close_setup({"raw": self.raw, "send": self.send_sock, "pool": self._pool})
        self.raw, self.send_sock = {}, None
        self._pool = {socket.SOCK_STREAM: [], socket.SOCK_DGRAM: []}

    # -- resources for the probes
    def new_socket(self, kind: int) -> socket.socket:
        """A fresh socket of the group's namespace (from the pool, refilled from the namespace)."""
        if not self._pool[kind]:
            n = max(1, self._batch(kind))
            made = self._in_ns(lambda: _make_sockets(n if kind == socket.SOCK_STREAM else 0,
                                                     n if kind == socket.SOCK_DGRAM else 0))
            self.stats["socket_batches"] += 1
            for k, socks in made.items():
                self._pool[k].extend(socks)
        self._need[kind] = max(0, self._need[kind] - 1)
        return self._pool[kind].pop()

    def source_for(self, dst: str, port: int | None) -> str:
        got = self._src.get(dst)
        if got is None:  # every raw probe's destination was looked up in setup
            raise OSError(errno.EINVAL, f"no source address looked up for {dst}")
        if isinstance(got, OSError):
            raise got
        return got

    def alloc_port(self) -> int:
        span = SPORT_HI - SPORT_LO + 1
        for _ in range(span):
            with _counter_lock:
                port = SPORT_LO + next(_port_counter) % span
            if port not in self.tcp_by_sport and port not in self.udp_by_sport:
                return port
        raise OSError(errno.EADDRINUSE, "no free probe source port")

    def alloc_icmp_id(self) -> int:
        for _ in range(1 << 16):
            with _counter_lock:
                ident = next(_icmp_counter) & 0xFFFF
            if ident not in self.icmp_by_id:
                return ident
        raise OSError(errno.EADDRINUSE, "no free ICMP echo id")

    # -- starting probes
    def can_start(self) -> bool:
        return bool(self.pending) and not self.blocked and len(self.active) < self.engine.concurrency

    def start_more(self, budget: int) -> int:
        """Start up to `budget` probes; returns how many were started."""
        self.blocked = False
        eng = self.engine
        started = 0
        while started < budget and self.pending and len(self.active) < eng.concurrency \
                and eng.in_flight < eng.max_in_flight:
            p = self.pending.popleft()
            if not self._start(p):
                self.pending.appendleft(p)
                self.blocked = True
                break
            started += 1
        return started

    def _start(self, p: _Probe) -> bool:
        """Start one probe; False if it must be retried later (send buffer full)."""
        self.active.add(p)
        p.group = self
        try:
            p.start(self)
        except _Retry:
            p.close(self)
            self.active.discard(p)
            return False
        except OSError as e:
            err = e.errno or errno.EIO
            if err in UNREACHABLE_ERRNOS or err in (errno.EACCES, errno.EINVAL, errno.EPERM):
                what = "no usable route" if err in (errno.EINVAL, errno.EACCES) else "send"
                p.finish(self, "unreachable", f"{what}: {_errname(err)}")
            else:
                p.finish(self, "error", f"{'send' if isinstance(p, _RawProbe) else 'socket'}: {_errname(err)}")
        except Exception as e:  # noqa: BLE001 - a bug must only cost this probe
            log.exception("probe %s failed", p.spec)
            p.finish(self, "error", f"internal error: {type(e).__name__}: {e}")
        return True

    @property
    def finished(self) -> bool:
        return not self.pending and not self.active

    # -- replies from the raw sockets
    def drain(self, sock: socket.socket, proto: int) -> None:
        for _ in range(4096):
            try:
                data, anc, _, _ = sock.recvmsg(65535, 64)
            except (BlockingIOError, InterruptedError):
                return
            self.stats["packets"] += 1
            try:
                self._dispatch(proto, data, _kernel_ts_ns(anc))
            except Exception:  # noqa: BLE001 - a malformed packet must not stop the group
                log.debug("cannot dissect a %d-byte packet of protocol %d", len(data), proto, exc_info=True)

    def _dispatch(self, proto: int, data: bytes, ts: int | None) -> None:
        if len(data) < 20:
            return
        pkt = IP(data)
        if proto == socket.IPPROTO_TCP:
            tcp = pkt.getlayer(TCP)
            p = self.tcp_by_sport.get(tcp.dport) if tcp is not None else None
            if p is not None:
                self.stats["matched"] += 1
                p.on_tcp(self, pkt, tcp, ts)
        elif proto == socket.IPPROTO_UDP:
            udp = pkt.getlayer(UDP)
            p = self.udp_by_sport.get(udp.dport) if udp is not None else None
            if p is not None:
                self.stats["matched"] += 1
                p.on_udp(self, pkt, udp, ts)
        elif proto == socket.IPPROTO_ICMP:
            icmp = pkt.getlayer(ICMP)
            if icmp is None:
                return
            if icmp.type == 0:
                p = self.icmp_by_id.get(icmp.id)
                if p is not None:
                    self.stats["matched"] += 1
                    p.on_echo_reply(self, pkt, icmp, ts)
            elif icmp.type in (3, 11, 12):
                self._icmp_error(pkt, icmp, data, ts)

    def _icmp_error(self, pkt: IP, icmp: ICMP, data: bytes, ts: int | None) -> None:
        inner = icmp.getlayer(IPerror)
        if inner is None:
            return
        off = pkt.ihl * 4 + 8 + inner.ihl * 4   # start of the quoted transport header
        l4 = data[off:off + 8]
        if len(l4) < 8:
            return
        if inner.proto == socket.IPPROTO_TCP:
            sport, dport, seq = struct.unpack("!HHI", l4)
            p = self.tcp_by_sport.get(sport)
        elif inner.proto == socket.IPPROTO_UDP:
            sport, dport = struct.unpack("!HH", l4[:4])
            seq = None
            p = self.udp_by_sport.get(sport)
        elif inner.proto == socket.IPPROTO_ICMP:
            itype, _, _, ident, seq = struct.unpack("!BBHHH", l4)
            if itype != 8:
                return
            dport = 0
            p = self.icmp_by_id.get(ident)
        else:
            return
        if p is None or inner.src != p.src:
            return
        self.stats["matched"] += 1
        p.on_icmp_error(self, icmp.type, icmp.code, pkt.src, inner.dst, dport, seq, ts)


class _Engine:
    def __init__(self, groups: dict[str, list[tuple[int, ProbeSpec]]], results: list, concurrency: int,
                 max_groups: int, max_in_flight: int, filter_mode: str, groups_out: list | None):
        self.results = results
        self.concurrency = max(1, concurrency)
        self.max_groups = max(1, max_groups)
        self.max_in_flight = max(1, max_in_flight)
        self.filter_mode = filter_mode
        self.groups_out = groups_out
        self.waiting = deque(groups.items())
        self.live: list[_Group] = []
        self.heap: list = []
        self.sel: selectors.BaseSelector = selectors.DefaultSelector()

    @property
    def in_flight(self) -> int:
        return sum(len(g.active) for g in self.live)

    def _can_admit(self) -> bool:
        return bool(self.waiting) and len(self.live) < self.max_groups

    def _admit(self) -> None:
        for _ in range(ADMIT_BATCH):  # a few per turn: the groups already admitted start meanwhile
            if not self._can_admit():
                return
            netns, items = self.waiting.popleft()
            g = _Group(self, netns, items)
            try:
                g.setup()
            except Exception as e:  # noqa: BLE001 - every probe of the group gets the error
                g.teardown()
                why = f"{type(e).__name__}: {e}"
                if isinstance(e, OSError) and e.errno == errno.ENOENT and not os.path.exists(
                        netns if netns.startswith("/") else nsfs.netns_path(netns)):
                    why = f"no network namespace {netns!r}"
                for idx, spec in items:
                    self.results[idx] = ProbeResult(spec, "error", None, why)
                continue
            if self.groups_out is not None:
                self.groups_out.append(g)
            self.live.append(g)

    def run(self) -> None:
        try:
            rr = 0
            while self.waiting or self.live:
                self._admit()
                # Start probes round-robin over the groups, a bounded number per turn, so that
                # replies are read (and connections moved on) while a big matrix is being sent.
                budget, n = START_BATCH, len(self.live)
                for k in range(n):
                    budget -= self.live[(rr + k) % n].start_more(budget)
                    if budget <= 0:
                        rr = (rr + k + 1) % n
                        break
                blocked = any(g.blocked for g in self.live)
                more = self._can_admit() or (self.in_flight < self.max_in_flight
                                             and any(g.can_start() for g in self.live))
                self._retire()
                if not self.live:
                    continue
                now = time.monotonic()
                wait = self.heap[0][0] - now if self.heap else 0.05
                if more:
                    wait = 0.0
                elif blocked:
                    wait = min(wait, 0.001)
                for key, mask in self.sel.select(max(0.0, wait)):
                    data = key.data
                    if isinstance(data, tuple):
                        data[0].drain(key.fileobj, data[1])
                    elif not data.done:
                        try:
                            data.on_event(data.group, mask)
                        except Exception as e:  # noqa: BLE001 - a bug must only cost this probe
                            log.exception("probe %s failed", data.spec)
                            data.finish(data.group, "error", f"internal error: {type(e).__name__}: {e}")
                now = time.monotonic()
                while self.heap and self.heap[0][0] <= now:
                    t, _, p, g = heapq.heappop(self.heap)
                    if not p.done and p.deadline == t and p in g.active:
                        p.on_deadline(g)
                self._retire()
        finally:
            for g in self.live:
                g.teardown()
            self.live.clear()
            self.sel.close()

    def _retire(self) -> None:
        if any(g.finished for g in self.live):
            for g in [g for g in self.live if g.finished]:
                g.teardown()
                self.live.remove(g)


# ----------------------------------------------------------------------------------------------
# Entry point

def _validate(spec: ProbeSpec) -> str | None:
    if spec.kind not in KINDS:
        return f"unknown probe kind {spec.kind!r} (one of {', '.join(KINDS)})"
    try:
        ipaddress.IPv4Address(spec.dst)
    except (ipaddress.AddressValueError, ValueError):
        return f"destination {spec.dst!r} is not an IPv4 address"
    if spec.kind != "icmp":
        if not isinstance(spec.port, int) or isinstance(spec.port, bool) or not 0 < spec.port < 65536:
            return f"{spec.kind} probe needs a port in 1..65535, got {spec.port!r}"
    if not isinstance(spec.timeout, (int, float)) or not spec.timeout > 0:
        return f"timeout must be positive, got {spec.timeout!r}"
    if spec.kind == "http" and (not spec.path.startswith("/") or any(c in spec.path for c in " \r\n")):
        return f"bad HTTP path {spec.path!r}"
    return None


def _ensure_fd_limit(needed: int) -> None:
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < needed:
            new = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
            if new > soft:
                resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    except (ValueError, OSError):
        pass


def run_probes(specs: list[ProbeSpec], concurrency: int = 64, *, max_groups: int = 128,
               max_in_flight: int = 4096, filter_mode: str = "auto",
               _groups: list | None = None) -> list[ProbeResult]:
    """Run every probe and return the results in the same order.

    Probes are grouped by source namespace ("" = the caller's own namespace). Each group's sockets
    are created by a throwaway thread inside its namespace; one event loop on the calling thread
    (which never changes namespace) runs all groups at once. Limits: `concurrency` probes in flight
    per source namespace, `max_groups` namespaces with open sockets at once, `max_in_flight` probes
    in flight overall. filter_mode: "auto" | "pcap" | "handwritten" | "none" (the BPF filters of the
    raw receive sockets; matching in user space is the same whatever the filter).
    """
    if filter_mode not in ("auto", "pcap", "handwritten", "none"):
        raise ValueError(f"filter_mode must be auto, pcap, handwritten or none, not {filter_mode!r}")
    results: list[ProbeResult | None] = [None] * len(specs)
    groups: dict[str, list[tuple[int, ProbeSpec]]] = {}
    for idx, spec in enumerate(specs):
        why = _validate(spec)
        if why:
            results[idx] = ProbeResult(spec, "error", None, why)
        else:
            groups.setdefault(spec.source_netns or "", []).append((idx, spec))
    if groups:
        live = min(max_groups, len(groups))
        # per live group: 4 raw sockets, a pool of up to `concurrency` sockets and the in-flight ones
        _ensure_fd_limit(live * (8 + 2 * max(1, concurrency)) + 256)
        _Engine(groups, results, concurrency, max_groups, max_in_flight, filter_mode, _groups).run()
    for idx, r in enumerate(results):
        if r is None:  # cannot happen unless the loop died in a way we did not foresee
            results[idx] = ProbeResult(specs[idx], "error", None, "probe did not complete")
    return results  # type: ignore[return-value]
