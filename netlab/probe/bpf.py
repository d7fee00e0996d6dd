"""Classic BPF filters of the probe engine's raw receive sockets: compiled with libpcap through scapy
(link type DLT_RAW), or written by hand when libpcap is missing; attached with SO_ATTACH_FILTER and
read back with SO_GET_FILTER, so a test can see that the kernel holds exactly the filter built."""
from __future__ import annotations

import ctypes
import errno
import logging
import os
import socket
import struct
import threading
from typing import Iterable

from .sockets import SO_TIMESTAMPNS, SPORT_HI, SPORT_LO

log = logging.getLogger(__name__)

SO_ATTACH_FILTER = 26
SO_GET_FILTER = SO_ATTACH_FILTER
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
DLT_RAW = 12            # libpcap link type whose packets start at the IP header (like AF_INET raw sockets)
BPF_ACCEPT = 0x40000    # snap length returned by an accepting filter
MAX_FILTER_HOSTS = 256  # beyond this many destinations the BPF filter does not list source hosts
RAW_RCVBUF = 4 << 20
ICMP_TYPES = (0, 3, 11)  # echo-reply, destination-unreachable, time-exceeded

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
