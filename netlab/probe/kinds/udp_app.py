"""udp-app probes: a connected UDP socket of the source namespace sends the built-in server's
commands ("hostname", then "clientip") and reads their answers."""
from __future__ import annotations

import errno
import selectors
import socket
import time
from typing import TYPE_CHECKING

from ..sockets import IP_RECVERR
from ..spec import ProbeSpec
from .base import ip_only, ms, short_text
from .sock import SockProbe

if TYPE_CHECKING:
    from ..group import Group


class UdpAppProbe(SockProbe):
    __slots__ = ("cmds",)

    def __init__(self, idx: int, spec: ProbeSpec):
        super().__init__(idx, spec)
        first = spec.payload
        self.cmds = [first] if first.strip() == "clientip" else [first, "clientip"]

    def _second_name(self) -> str:
        return "UDP clientip"

    def start(self, g: "Group") -> None:
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

    def _send(self, g: "Group") -> None:
        self.t_phase = time.perf_counter()
        self.set_deadline(g, self.spec.timeout)
        try:
            self.sock.send(self.cmds[self.phase].encode())
        except OSError as e:
            self._fail(g, e.errno or errno.EIO, "send")

    def on_event(self, g: "Group", mask: int) -> None:
        if self.sock is None:
            return
        try:
            data = self.sock.recv(65535)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self._fail(g, e.errno or errno.EIO, "recv")
            return
        body = short_text(data)
        cmd = self.cmds[self.phase].strip()
        if cmd == "hostname":
            self.answered_by = body
        elif cmd == "clientip":
            self.client_ip = ip_only(body)
        if self.phase == 0:
            self.rtt = ms(time.perf_counter() - self.t_phase)
            self.first_detail = f"UDP reply from {self.spec.dst}:{self.spec.port}: {body!r}"
        self.phase += 1
        if self.phase < len(self.cmds):
            self._send(g)
        else:
            self._finish_ok(g)

    def on_deadline(self, g: "Group") -> None:
        if self.phase > 0:
            self._finish_ok(g, f"UDP clientip: no answer within {self.spec.timeout:g}s")
        else:
            self.finish(g, "timeout", f"no UDP reply within {self.spec.timeout:g}s")
