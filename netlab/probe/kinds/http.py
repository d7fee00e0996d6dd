"""http probes: a real TCP connection from the source namespace sends GET path, then GET /clientip on
a second connection, to the built-in server (or any HTTP server: a non-200 answer is still an
answer)."""
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

POD_HEADER = "X-Netlab-Pod"   # netlab/ingress/config.py: the backend pod nginx passed the request to

if TYPE_CHECKING:
    from ..group import Group


class HttpProbe(SockProbe):
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
        return (f"GET {self._path()} HTTP/1.1\r\nHost: {self.spec.host or f'{self.spec.dst}:{self.spec.port}'}\r\n"
                "User-Agent: netlab-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n").encode()

    def start(self, g: "Group") -> None:
        self._open(g)

    def _open(self, g: "Group") -> None:
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

    def on_event(self, g: "Group", mask: int) -> None:
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

    def _header(self, name: str) -> str:
        head = bytes(self.buf).partition(b"\r\n\r\n")[0]
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == name.lower().encode():
                return v.strip().decode(errors="replace")
        return ""

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
        return int(status[1]), short_text(body)

    def _response(self, g: "Group") -> None:
        parsed = self._parse()
        elapsed = ms(time.perf_counter() - self.t_phase)
        self._close_sock(g)
        if self.phase == 0:
            if parsed is None:
                got = f"{len(self.buf)} bytes that are not an HTTP response" if self.buf else "the connection closed"
                self.finish(g, "error", f"connected to {self.spec.dst}:{self.spec.port} but got {got}")
                return
            status, body = parsed
            self.rtt = elapsed
            self.first_detail = f"HTTP {status} from {self.spec.dst}:{self.spec.port} GET {self.spec.path}: {body!r}"
            # the pod that answered: netexec names itself on /hostname (agnhost: /hostName); "/" tells the time
            if status == 200 and self.spec.path.split("?")[0] in ("/hostname", "/hostName"):
                self.answered_by = body
            if self.spec.host:   # through an Ingress: the pod nginx passed the request to (one exchange)
                self.first_detail = f"HTTP {status} from {self.spec.dst}:{self.spec.port} Host {self.spec.host} " \
                                    f"GET {self.spec.path}: {body!r}"
                self.answered_by = self._header(POD_HEADER) or None
                self._finish_ok(g)
                return
            self.phase = 1
            self._open(g)
            return
        if parsed is None or parsed[0] != 200:
            self._finish_ok(g, "GET /clientip: no valid answer")
            return
        self.client_ip = ip_only(parsed[1])
        self._finish_ok(g)

    def on_deadline(self, g: "Group") -> None:
        t = self.spec.timeout
        if self.phase > 0:
            self._finish_ok(g, f"GET /clientip: no answer within {t:g}s")
        elif self.connected:
            self.finish(g, "timeout", f"TCP connected to {self.spec.dst}:{self.spec.port} but no HTTP "
                                      f"response within {t:g}s")
        else:
            self.finish(g, "timeout", f"no answer to the TCP connect within {t:g}s")
