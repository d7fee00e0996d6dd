"""What a probe asks and what it found: the probe engine's input and output types, and the check of a
probe's fields done before anything is sent. Pure (no sockets, no scapy), so the planner can build
probes without loading the engine."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

KINDS = ("icmp", "tcp", "udp", "http", "udp-app")
OUTCOMES = ("reachable", "refused", "denied", "timeout", "unreachable", "error")


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
    host: str = ""             # http: the Host header (an Ingress probe: one exchange, the pod named by the
                               # ingress's X-Netlab-Pod header); "" : dst:port and the two exchanges


@dataclass
class ProbeResult:
    spec: ProbeSpec
    outcome: str               # "reachable" | "refused" | "denied" | "timeout" | "unreachable" | "error"
    rtt_ms: float | None
    detail: str
    answered_by: str | None = None   # pod name from the app-level exchange (/hostname or UDP hostname)
    client_ip: str | None = None     # source ip the server saw (/clientip or UDP clientip), ip only
    reply_src: str | None = None     # source address of the reply packet


def validate(spec: ProbeSpec) -> str | None:
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
    if spec.kind == "http" and any(c in spec.host for c in " \r\n/"):
        return f"bad HTTP host {spec.host!r}"
    if spec.kind == "http" and (not spec.path.startswith("/") or any(c in spec.path for c in " \r\n")):
        return f"bad HTTP path {spec.path!r}"
    return None
