"""The trace packet: ONE crafted TCP SYN, UDP datagram or ICMP echo request, sent from inside a source
namespace the way the probe engine's raw probes are (scapy-built, through an IP_HDRINCL socket), and its
answer read back. Unlike a probe, every field that singles the packet out is chosen by the caller: the IP
ID (kept by every NAT and by VXLAN, which carries the inner packet unchanged) and the TCP sequence number,
so the trace rules of every node can match this one packet and nothing else.

Run as `python -m netlab.trace.send JSON` inside the namespace (nsenter); prints one JSON line:
{"src": "10.244.1.2", "outcome": "reachable", "detail": "...", "reply_src": "...", "answered_by": ...}.
"""
from __future__ import annotations

import json
import select
import socket
import sys
import time

from ..probe.outcomes import icmp_error_name, icmp_error_outcome


def source_address(dst: str) -> str:
    """The address the kernel picks to reach dst from here (a route lookup, nothing sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((dst, 9))
        return s.getsockname()[0]


def build(p: dict, src: str) -> bytes:
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    ip = IP(src=src, dst=p["dst"], id=p["ipid"], ttl=64, flags="DF" if p["proto"] != "icmp" else 0)
    if p["proto"] == "tcp":
        pkt = ip / TCP(sport=p["sport"], dport=p["dport"], seq=p["seq"], flags="S", window=64240,
                       options=[("MSS", 1460)])
    elif p["proto"] == "udp":
        pkt = ip / UDP(sport=p["sport"], dport=p["dport"]) / b"hostname"
    else:
        pkt = ip / ICMP(type=8, id=p["sport"], seq=p["seq"] & 0xFFFF) / b"netlab-trace"
    return bytes(pkt)


def _judge(p: dict, src: str, data: bytes) -> dict | None:
    """The result this received packet means for our request, or None if it is not about it."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, TCPerror, UDPerror
    ip = IP(data)
    if ip.dst != src:
        return None
    if ICMP in ip:
        icmp = ip[ICMP]
        if icmp.type == 0 and p["proto"] == "icmp" and icmp.id == p["sport"] and icmp.seq == p["seq"] & 0xFFFF:
            return {"outcome": "reachable", "detail": f"echo-reply from {ip.src}", "reply_src": ip.src}
        if icmp.type in (3, 11) and IPerror in ip:
            inner = ip[IPerror]
            if inner.id != p["ipid"] or inner.src != src:
                return None
            if TCPerror in inner and inner[TCPerror].sport != p["sport"] or \
                    UDPerror in inner and inner[UDPerror].sport != p["sport"]:
                return None
            kind = p["proto"]
            return {"outcome": icmp_error_outcome(kind, icmp.type, icmp.code),
                    "detail": f"ICMP {icmp_error_name(icmp.type, icmp.code)} from {ip.src}", "reply_src": ip.src}
        return None
    if p["proto"] == "tcp" and TCP in ip:
        tcp = ip[TCP]
        if tcp.dport != p["sport"] or tcp.sport != p["dport"] or ip.src != p["dst"]:
            return None
        if tcp.ack != (p["seq"] + 1) & 0xFFFFFFFF:
            return None
        flags = int(tcp.flags)
        if flags & 0x12 == 0x12:
            return {"outcome": "reachable", "detail": f"SYN-ACK from {ip.src}:{tcp.sport}", "reply_src": ip.src}
        if flags & 0x04:
            return {"outcome": "refused", "detail": f"RST from {ip.src}:{tcp.sport}", "reply_src": ip.src}
        return None
    if p["proto"] == "udp" and UDP in ip:
        udp = ip[UDP]
        if udp.dport != p["sport"] or udp.sport != p["dport"] or ip.src != p["dst"]:
            return None
        body = bytes(udp.payload).decode(errors="replace").strip()[:200]
        return {"outcome": "reachable", "detail": f"UDP reply from {ip.src}:{udp.sport}: {body!r}",
                "reply_src": ip.src, "answered_by": body or None}
    return None


def send(p: dict) -> dict:
    """Send the packet described by p (dst, proto, dport, sport, ipid, seq, timeout) and wait for its answer."""
    try:
        src = source_address(p["dst"])
    except OSError as e:
        return {"src": None, "outcome": "no-route", "detail": f"no route to {p['dst']} ({e.strerror})",
                "reply_src": None}
    listen = [socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)]
    if p["proto"] in ("tcp", "udp"):
        listen.append(socket.socket(socket.AF_INET, socket.SOCK_RAW,
                                    socket.IPPROTO_TCP if p["proto"] == "tcp" else socket.IPPROTO_UDP))
    out = {"src": src, "outcome": "timeout", "detail": f"no reply within {p['timeout']:g}s", "reply_src": None}
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as tx:
            t0 = time.monotonic()
            try:
                tx.sendto(build(p, src), (p["dst"], 0))
            except OSError as e:
                # EPERM: a netfilter rule of this namespace refused it; ENETUNREACH: no route here
                what = "no-route" if e.errno in (101, 113) else "denied"
                return dict(out, outcome=what, detail=f"send failed here: {e.strerror}")
            end = t0 + p["timeout"]
            while (left := end - time.monotonic()) > 0:
                ready, _, _ = select.select(listen, [], [], left)
                for s in ready:
                    got = _judge(p, src, s.recv(65535))
                    if got is not None:
                        got["rtt_ms"] = round((time.monotonic() - t0) * 1000, 3)
                        return dict(out, **got)
    finally:
        for s in listen:
            s.close()
    return out


if __name__ == "__main__":
    print(json.dumps(send(json.loads(sys.argv[1]))), flush=True)
