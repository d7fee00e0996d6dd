"""How an error becomes a probe outcome: ICMP errors (type, code) and socket errnos mapped to
"denied" / "refused" / "unreachable" / "error", and their names in reports.

"denied" is ICMP type 3 code 13 (communication administratively prohibited) and only that: it is what
netlab's NetworkPolicy rules answer with (REJECT --reject-with icmp-admin-prohibited), for every probe
kind (icmp included). Socket clients get EHOSTUNREACH for it as for host-unreachable; the probes over
sockets tell them apart by the ICMP type and code IP_RECVERR queues (sockets.read_errqueue)."""
from __future__ import annotations

import errno
import os

UNREACH_CODES = {
    0: "net-unreachable", 1: "host-unreachable", 2: "protocol-unreachable", 3: "port-unreachable",
    4: "fragmentation-needed", 5: "source-route-failed", 6: "net-unknown", 7: "host-unknown",
    8: "source-host-isolated", 9: "net-prohibited", 10: "host-prohibited",
    11: "net-unreachable-for-tos", 12: "host-unreachable-for-tos", 13: "admin-prohibited",
    14: "host-precedence-violation", 15: "precedence-cutoff",
}
# ICMP errors that mean "something actively rejected the connection" for TCP/UDP probes
# (iptables REJECT sends port-unreachable by default, or one of the *-prohibited codes); admin-prohibited
# (13) is the NetworkPolicy answer: its own outcome, "denied".
DENIED_CODE = 13
REFUSED_CODES = {2, 3, 9, 10}
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
        if code == DENIED_CODE:
            return "denied"
        if kind != "icmp" and code in REFUSED_CODES:
            return "refused"
        return "unreachable"
    if itype == 11:
        return "unreachable"
    return "error"


def errname(err: int) -> str:
    return f"{errno.errorcode.get(err, err)} ({os.strerror(err)})"
