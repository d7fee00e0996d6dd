"""The probe engine's public API: ICMP/TCP/UDP probes crafted with scapy, and HTTP / UDP exchanges over
real sockets, all run *inside* a source network namespace. A probe never reports "reachable" unless
the answer was seen coming back.

This module only gathers the names callers use; the engine lives in its parts:

* spec.py       ProbeSpec, ProbeResult, KINDS, OUTCOMES (pure: no sockets, no scapy)
* outcomes.py   ICMP errors and errnos -> outcomes
* sockets.py    Linux socket constants, the crafted probes' source ports, error queue, timestamps
* bpf.py        the raw receive sockets' BPF filters (libpcap-compiled or hand-written)
* kinds/        one module per way of probing: raw.py (icmp, tcp, udp crafted with scapy),
                http.py and udp_app.py (real sockets, with sock.py their common part)
* group.py      the probes of one source namespace: its sockets, ports, reply dispatch
* scheduler.py  the event loop over every group, and run_probes()
"""
from __future__ import annotations

from .bpf import (MAX_FILTER_HOSTS, attach_bpf, attached_bpf, bpf_expression, compile_bpf, handwritten_bpf,
                  open_raw_receiver)
from .outcomes import icmp_error_name, icmp_error_outcome
from .scheduler import run_probes
from .sockets import SPORT_HI, SPORT_LO
from .spec import KINDS, OUTCOMES, ProbeResult, ProbeSpec

__all__ = ["KINDS", "MAX_FILTER_HOSTS", "OUTCOMES", "SPORT_HI", "SPORT_LO", "ProbeResult", "ProbeSpec",
           "attach_bpf", "attached_bpf", "bpf_expression", "compile_bpf", "handwritten_bpf",
           "icmp_error_name", "icmp_error_outcome", "open_raw_receiver", "run_probes"]
