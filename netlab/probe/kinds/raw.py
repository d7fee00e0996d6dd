"""icmp / tcp / udp probes: the request is crafted with scapy and sent through the group's raw
IP_HDRINCL socket; the reply is read from the group's raw receive sockets and matched strictly:
TCP replies by (src == dst, sport == port, dport == our port, ack == our ISN + 1), UDP replies by
(src, sport, dport), echo replies by (src, id, seq, random payload token), ICMP errors by the quoted
original packet (our source address, our source port / echo id, and for TCP our ISN).
Packets go through netfilter like any local traffic, so a probe to a Service ClusterIP is DNATed in
OUTPUT and its reply comes back un-DNATed from the ClusterIP.

The three kinds are one class: they differ only in the packet built and the reply that ends them.
"""
from __future__ import annotations

import errno
import random
import secrets
import time
from typing import TYPE_CHECKING

from scapy.layers.inet import ICMP, IP, TCP, UDP

from ..outcomes import icmp_error_name, icmp_error_outcome
from ..spec import ProbeSpec
from .base import Probe, Retry, ip_only, short_text

if TYPE_CHECKING:
    from ..group import Group

EPERM_GRACE = 0.1       # after a send refused by local netfilter, wait this long for its ICMP error


class RawProbe(Probe):
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

    def _table(self, g: "Group") -> dict:
        return {"icmp": g.icmp_by_id, "tcp": g.tcp_by_sport, "udp": g.udp_by_sport}[self.spec.kind]

    def start(self, g: "Group") -> None:
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
            raise Retry() from None
        except OSError as e:
            if e.errno in (errno.EPERM, errno.EACCES):
                # refused by netfilter in this namespace: a REJECT rule has queued its ICMP error
                # already; give it a moment, else report the local drop
                self.eperm = True
                self.set_deadline(g, min(spec.timeout, EPERM_GRACE))
                return
            raise

    def close(self, g: "Group") -> None:
        table = self._table(g)
        if table.get(self.key) is self:
            del table[self.key]

    def on_deadline(self, g: "Group") -> None:
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
    def on_echo_reply(self, g: "Group", ip: IP, icmp: ICMP, ts_ns: int | None) -> None:
        if ip.src != self.spec.dst or icmp.seq != self.isn or bytes(icmp.payload) != self.token:
            return
        self.finish(g, "reachable", f"echo-reply from {ip.src}", self._rtt(ts_ns), reply_src=ip.src)

    def on_tcp(self, g: "Group", ip: IP, tcp: TCP, ts_ns: int | None) -> None:
        spec = self.spec
        if ip.src != spec.dst or tcp.sport != spec.port:
            return
        flags = int(tcp.flags)
        want_ack = (self.isn + 1) & 0xFFFFFFFF
        if flags & 0x12 == 0x12 and tcp.ack == want_ack:
            self.finish(g, "reachable", f"SYN-ACK from {ip.src}:{tcp.sport}", self._rtt(ts_ns), reply_src=ip.src)
        elif flags & 0x04 and flags & 0x10 and tcp.ack == want_ack:
            self.finish(g, "refused", f"RST from {ip.src}:{tcp.sport}", self._rtt(ts_ns), reply_src=ip.src)

    def on_udp(self, g: "Group", ip: IP, udp: UDP, ts_ns: int | None) -> None:
        spec = self.spec
        if ip.src != spec.dst or udp.sport != spec.port:
            return
        body = short_text(bytes(udp.payload))
        kw = {}
        cmd = spec.payload.strip()
        if cmd == "hostname":
            kw["answered_by"] = body
        elif cmd == "clientip":
            kw["client_ip"] = ip_only(body)
        self.finish(g, "reachable", f"UDP reply from {ip.src}:{udp.sport}: {body!r}", self._rtt(ts_ns),
                    reply_src=ip.src, **kw)

    def on_icmp_error(self, g: "Group", itype: int, code: int, offender: str, inner_dst: str,
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
