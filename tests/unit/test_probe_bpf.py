"""The probe engine's BPF filters, without root: both the libpcap-compiled and the hand-written
programs are run by a small classic-BPF interpreter on packets crafted with scapy (packets start at
the IP header, as on AF_INET raw sockets), and the kernel is asked to accept each of them."""
from __future__ import annotations

import socket
import struct

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, IPOption_NOP, UDPerror

from netlab.probe import engine

TCP_P, UDP_P, ICMP_P = socket.IPPROTO_TCP, socket.IPPROTO_UDP, socket.IPPROTO_ICMP


def run_bpf(prog: bytes, pkt: bytes) -> int:
    """Classic BPF as the kernel runs it (enough of it for what libpcap emits here)."""
    insns = [struct.unpack_from("=HBBI", prog, i) for i in range(0, len(prog), 8)]
    a = x = 0
    mem = [0] * 16
    pc = 0

    def load(size: int, off: int) -> int | None:
        if off < 0 or off + size > len(pkt):
            return None
        return int.from_bytes(pkt[off:off + size], "big")

    while True:
        code, jt, jf, k = insns[pc]
        pc += 1
        cls = code & 0x07
        if cls in (0x00, 0x01):  # LD, LDX
            mode, size = code & 0xE0, {0x00: 4, 0x08: 2, 0x10: 1}[code & 0x18]
            if cls == 0x01 and mode == 0xA0:     # ldx 4*([k]&0xf)
                v = load(1, k)
                if v is None:
                    return 0
                x = (v & 0xF) * 4
                continue
            if mode == 0x00:
                v = k
            elif mode == 0x20:
                v = load(size, k)
            elif mode == 0x40:
                v = load(size, x + k)
            elif mode == 0x60:
                v = mem[k]
            elif mode == 0x80:
                v = len(pkt)
            else:
                raise NotImplementedError(hex(code))
            if v is None:
                return 0
            if cls == 0x00:
                a = v
            else:
                x = v
        elif cls == 0x02:
            mem[k] = a
        elif cls == 0x03:
            mem[k] = x
        elif cls == 0x04:  # ALU
            src = x if code & 0x08 else k
            op = code & 0xF0
            a = {0x00: lambda: a + src, 0x10: lambda: a - src, 0x20: lambda: a * src,
                 0x40: lambda: a | src, 0x50: lambda: a & src, 0x60: lambda: a << src,
                 0x70: lambda: a >> src, 0x80: lambda: -a, 0xA0: lambda: a ^ src,
                 0x30: lambda: a // src if src else 0, 0x90: lambda: a % src if src else 0}[op]() & 0xFFFFFFFF
        elif cls == 0x05:  # JMP
            op = code & 0xF0
            if op == 0x00:
                pc += k
                continue
            src = x if code & 0x08 else k
            cond = {0x10: a == src, 0x20: a > src, 0x30: a >= src, 0x40: bool(a & src)}[op]
            pc += jt if cond else jf
        elif cls == 0x06:  # RET
            return a if code & 0x18 == 0x10 else k
        elif cls == 0x07:  # MISC: tax / txa
            if code & 0xF8 == 0x00:
                x = a
            else:
                a = x
        else:
            raise NotImplementedError(hex(code))


def programs(proto, srcs=(), echo_srcs=()):
    return {"pcap": engine.compile_bpf(engine.bpf_expression(proto, srcs, echo_srcs)),
            "handwritten": engine.handwritten_bpf(proto, list(srcs) if proto != ICMP_P else [])}


def accepts(prog: bytes, pkt) -> bool:
    return run_bpf(prog, bytes(pkt)) > 0


PEER, OTHER, ME = "10.0.0.2", "10.0.0.9", "10.0.0.1"


@pytest.mark.parametrize("how", ["pcap", "handwritten"])
def test_tcp_filter(how):
    prog = programs(TCP_P, [PEER, "10.0.0.3"])[how]

    def tcp(src=PEER, dport=61000, flags="SA", **ip):
        return IP(src=src, dst=ME, **ip) / TCP(sport=80, dport=dport, flags=flags)
    assert accepts(prog, tcp())
    assert accepts(prog, tcp(src="10.0.0.3", flags="RA"))
    assert accepts(prog, tcp(flags="R"))
    assert accepts(prog, tcp(dport=65535))
    assert accepts(prog, tcp(options=[IPOption_NOP()] * 4))         # IP options: header is 24 bytes
    assert not accepts(prog, tcp(flags="A"))                           # not SYN-ACK nor RST
    assert not accepts(prog, tcp(flags="S"))                           # e.g. our own SYN to ourselves
    assert not accepts(prog, tcp(src=OTHER))                           # not a probed destination
    assert not accepts(prog, tcp(dport=5000))                          # not one of our source ports
    assert not accepts(prog, IP(src=PEER, dst=ME) / UDP(sport=80, dport=61000))


@pytest.mark.parametrize("how", ["pcap", "handwritten"])
def test_udp_filter(how):
    prog = programs(UDP_P, [PEER])[how]
    assert accepts(prog, IP(src=PEER, dst=ME) / UDP(sport=53, dport=62000) / b"x")
    assert not accepts(prog, IP(src=OTHER, dst=ME) / UDP(sport=53, dport=62000) / b"x")
    assert not accepts(prog, IP(src=PEER, dst=ME) / UDP(sport=53, dport=60999) / b"x")


@pytest.mark.parametrize("how", ["pcap", "handwritten"])
def test_icmp_filter(how):
    prog = programs(ICMP_P, echo_srcs=[PEER])[how]
    quoted = IPerror(src=ME, dst=PEER) / UDPerror(sport=61000, dport=53)
    assert accepts(prog, IP(src=PEER, dst=ME) / ICMP(type=0, id=1, seq=1))
    assert accepts(prog, IP(src="192.0.2.1", dst=ME) / ICMP(type=3, code=1) / quoted)  # from a router
    assert accepts(prog, IP(src="192.0.2.1", dst=ME) / ICMP(type=11) / quoted)
    assert not accepts(prog, IP(src=PEER, dst=ME) / ICMP(type=8))                      # echo request
    assert not accepts(prog, IP(src=PEER, dst=ME) / ICMP(type=5))                      # redirect
    # echo replies are also filtered by source with libpcap; the hand-written one checks types only
    assert accepts(prog, IP(src=OTHER, dst=ME) / ICMP(type=0)) == (how == "handwritten")


@pytest.mark.parametrize("how", ["pcap", "handwritten"])
def test_many_hosts(how):
    hosts = [f"10.1.{i // 250}.{i % 250 + 1}" for i in range(engine.MAX_FILTER_HOSTS)]
    prog = programs(TCP_P, hosts)[how]
    for h in (hosts[0], hosts[-1], hosts[len(hosts) // 2]):
        assert accepts(prog, IP(src=h, dst=ME) / TCP(sport=80, dport=61000, flags="SA"))
    assert not accepts(prog, IP(src=OTHER, dst=ME) / TCP(sport=80, dport=61000, flags="SA"))
    # beyond the limit the source is not filtered any more (the program would get too long)
    prog = programs(TCP_P, hosts + ["10.9.9.9"])[how]
    assert accepts(prog, IP(src=OTHER, dst=ME) / TCP(sport=80, dport=61000, flags="SA"))


@pytest.mark.parametrize("proto", [TCP_P, UDP_P, ICMP_P])
def test_kernel_accepts_and_holds_the_programs(proto):
    hosts = [f"10.1.{i // 250}.{i % 250 + 1}" for i in range(engine.MAX_FILTER_HOSTS)]
    for prog in list(programs(proto, hosts, hosts).values()) + list(programs(proto, [PEER], [PEER]).values()):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # any socket takes a filter, no root needed
        try:
            assert engine.attached_bpf(s) == b""
            assert engine.attach_bpf(s, prog) == len(prog) // 8
            assert engine.attached_bpf(s) == prog
        finally:
            s.close()


def test_icmp_error_names_and_outcomes():
    assert engine.icmp_error_name(3, 3) == "port-unreachable"
    assert engine.icmp_error_name(3, 13) == "admin-prohibited"
    assert engine.icmp_error_outcome("tcp", 3, 3) == "refused"
    assert engine.icmp_error_outcome("udp", 3, 10) == "refused"
    assert engine.icmp_error_outcome("tcp", 3, 1) == "unreachable"
    assert engine.icmp_error_outcome("icmp", 3, 1) == "unreachable"
    assert engine.icmp_error_outcome("http", 11, 0) == "unreachable"


def test_invalid_specs_are_errors_without_touching_any_namespace():
    P = engine.ProbeSpec
    rs = engine.run_probes([P("x", "bogus", "10.0.0.1"), P("x", "tcp", "10.0.0.1"),
                            P("x", "http", "nope", 80), P("x", "udp", "10.0.0.1", 70000),
                            P("x", "icmp", "10.0.0.1", timeout=0), P("x", "http", "10.0.0.1", 80, path="a b")])
    assert [r.outcome for r in rs] == ["error"] * 6
    assert engine.run_probes([]) == []
