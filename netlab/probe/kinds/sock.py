"""What the probes over real sockets (http, udp-app) share: their socket, the two exchanges (the
request, then the client-IP question) and how a socket error becomes the outcome."""
from __future__ import annotations

import errno
import socket
import time
from typing import TYPE_CHECKING

from ..outcomes import UNREACHABLE_ERRNOS, errname, icmp_error_name, icmp_error_outcome
from ..sockets import SO_EE_ORIGIN_ICMP, read_errqueue
from ..spec import ProbeSpec
from .base import Probe, ms

if TYPE_CHECKING:
    from ..group import Group


class SockProbe(Probe):
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

    def close(self, g: "Group") -> None:
        self._close_sock(g)

    def _close_sock(self, g: "Group") -> None:
        if self.sock is not None:
            try:
                g.sel.unregister(self.sock)
            except (KeyError, ValueError):
                pass
            self.sock.close()
            self.sock = None

    def _finish_ok(self, g: "Group", note: str = "") -> None:
        detail = self.first_detail + (f"; {note}" if note else "")
        self.finish(g, "reachable", detail, self.rtt, answered_by=self.answered_by,
                    client_ip=self.client_ip, reply_src=self.spec.dst)

    def _fail(self, g: "Group", err: int, what: str) -> None:
        """A socket error: in the first exchange it decides the outcome, in the second it is a note."""
        info = read_errqueue(self.sock) if self.sock is not None else None
        rtt = ms(time.perf_counter() - self.t_phase)
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
            outcome, detail, rtt = "unreachable", f"{what}: {errname(err)}", None
        elif err in (errno.EPERM, errno.EACCES):
            outcome, rtt = "unreachable", None
            detail = f"dropped by netfilter or a prohibit route in the source namespace ({what}: {errname(err)})"
        elif err == errno.ETIMEDOUT:
            outcome, detail, rtt = "timeout", f"{what}: {errname(err)}", None
        else:
            outcome, detail, rtt = "error", f"{what}: {errname(err)}", None
        if self.phase > 0:
            self._finish_ok(g, f"{self._second_name()} failed: {detail}")
        else:
            self.finish(g, outcome, detail, rtt if outcome in ("refused", "denied", "unreachable") else None,
                        reply_src=reply_src)

    def _second_name(self) -> str:
        return "second exchange"
