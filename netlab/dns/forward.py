"""Forwarding to the upstream resolvers, with a health check so that a dead upstream costs nothing.

Every upstream ("IP" or "IP:PORT", port 53 by default) is probed every PROBE_INTERVAL seconds with
a `. IN NS` query; any reply (whatever its rcode) marks it up. It is marked down at once when the
kernel refuses to send to it (ENETUNREACH, EHOSTUNREACH, ECONNREFUSED...) and after DOWN_AFTER
probes or forwarded queries in a row got no reply. `healthy()` lists the upstreams that are up (all of
them until the first probe says otherwise); with none the server answers SERVFAIL at once instead of
waiting for a timeout. A forwarded query goes to the healthy upstreams in turn, each with TIMEOUT
seconds, over UDP (and again over TCP when the upstream truncates and the client asked over TCP).
"""
from __future__ import annotations

import errno
import os
import socket
import struct
import threading
import time

import dns.message
import dns.rdatatype

TIMEOUT = 1.5
PROBE_INTERVAL = 1.0
PROBE_TIMEOUT = 1.0
DOWN_AFTER = 2
UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED, errno.EADDRNOTAVAIL,
               errno.EPERM, errno.EACCES, errno.EINVAL}


def parse_upstream(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
    return (host, int(port)) if port else (text, 53)


class Upstream:
    def __init__(self, text: str):
        self.addr = parse_upstream(text)
        self.up = True
        self.misses = 0
        self.checked = 0.0

    def ok(self) -> None:
        self.up, self.misses, self.checked = True, 0, time.monotonic()

    def failed(self, hard: bool) -> None:
        self.misses += 1
        self.checked = time.monotonic()
        if hard or self.misses >= DOWN_AFTER:
            self.up = False


def _exchange_udp(addr: tuple[str, int], wire: bytes, timeout: float) -> bytes:
    """Send and wait for the reply with the same ID (raises OSError / socket.timeout)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.connect(addr)
        s.send(wire)
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(0.001, deadline - time.monotonic()))
            data = s.recv(65535)
            if len(data) >= 12 and data[:2] == wire[:2] and data[2] & 0x80:
                return data


def _exchange_tcp(addr: tuple[str, int], wire: bytes, timeout: float) -> bytes:
    with socket.create_connection(addr, timeout=timeout) as s:
        s.sendall(struct.pack("!H", len(wire)) + wire)
        buf = b""
        while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
            chunk = s.recv(65535)
            if not chunk:
                raise OSError(errno.ECONNRESET, "upstream closed the connection")
            buf += chunk
        return buf[2:2 + struct.unpack("!H", buf[:2])[0]]


class Upstreams:
    def __init__(self, texts=()):
        self.lock = threading.Lock()
        self.list: list[Upstream] = []
        self.configure(texts)
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def configure(self, texts) -> None:
        texts = tuple(texts)
        with self.lock:
            if tuple(f"{u.addr[0]}:{u.addr[1]}" for u in self.list) == tuple(
                    "%s:%d" % parse_upstream(t) for t in texts):
                return
            self.list = [Upstream(t) for t in texts]

    def healthy(self) -> list[Upstream]:
        return [u for u in self.list if u.up]

    def start(self) -> None:
        self.thread = threading.Thread(target=self._probe_loop, name="dns-upstream-probe", daemon=True)
        self.thread.start()

    def _probe_loop(self) -> None:
        while not self.stop.is_set():
            for u in list(self.list):
                self.probe(u)
            self.stop.wait(PROBE_INTERVAL)

    def probe(self, u: Upstream) -> None:
        q = dns.message.make_query(".", dns.rdatatype.NS)
        q.id = int.from_bytes(os.urandom(2), "big")
        try:
            _exchange_udp(u.addr, q.to_wire(), PROBE_TIMEOUT)
            u.ok()
        except OSError as e:
            u.failed(hard=e.errno in UNREACHABLE)

    def forward(self, wire: bytes, tcp: bool) -> bytes | None:
        """The reply to `wire` (its own ID kept) from the first healthy upstream that answers, or None."""
        qid = wire[:2]
        ours = os.urandom(2) + wire[2:]
        for u in self.healthy():
            try:
                data = _exchange_udp(u.addr, ours, TIMEOUT)
                u.ok()
                if tcp and data[2] & 0x02:
                    data = _exchange_tcp(u.addr, ours, TIMEOUT)
                return qid + data[2:]
            except OSError as e:
                u.failed(hard=e.errno in UNREACHABLE)
        return None
