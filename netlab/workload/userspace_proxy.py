"""The proxy process of kube-proxy's userspace mode: one per node, in the node's network namespace.

    python -S -m netlab.workload.userspace_proxy --config PATH --pidfile PATH

The config (JSON, written by netlab.render.kubeproxy_userspace.proxy_config)::

    {"version": 1, "node": "worker", "udpIdleSeconds": 0.25,
     "listeners": [{"service": "default/web:http", "protocol": "TCP", "port": 23456,
                    "endpoints": ["10.244.1.2:8080", "10.244.2.2:8080"], "affinitySeconds": null}]}

Each listener accepts on every address of the node at `port` (the node's iptables rules send the
Service's ClusterIP, externalIPs, LB IPs and NodePort there) and relays to an endpoint:

* TCP: the endpoints in round-robin order; a connect that is refused or times out is retried on the
  next endpoint, with the dial timeouts kube-proxy's userspace proxier used (250 ms, 500 ms, 1 s, 2 s:
  four tries), so a stopped backend does not fail the client's request. The bytes are then copied
  both ways, half-closes included. The endpoint sees the node's address as the client.
* UDP: a session per client address (a connected socket of the proxy's own to one endpoint), ended
  after `udpIdleSeconds` without a datagram either way (kube-proxy's --udp-timeout, 250 ms).
* A listener whose Service port has no endpoints is not opened: the redirected connection is refused
  (RST, ICMP port unreachable for UDP), as the other modes reject it.
* sessionAffinity ClientIP (`affinitySeconds`): a client keeps its endpoint while it comes back within
  that many seconds and the endpoint is still listed; a failed connect to it moves the client on.

SIGHUP re-reads the config: new listeners open, gone ones stop accepting (the relays they started run
on to their end), and the others take their new endpoints in place, keeping every established relay.
The pidfile holds "<pid> <generation>", rewritten atomically once a (re)load is applied (generation 0
at start); next to it (X.pid -> X.status.json) the ports listened on and the listeners that could not
be opened. SIGTERM/SIGINT: stop and remove the pidfile.

`Balancer` (the endpoint choice: round-robin, affinity, the retry order) is pure and imports nothing;
the module imports the standard library only, as the built-in server does, to start fast.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import time
from typing import Callable, Iterator

# kube-proxy's userspace proxier: the timeout of each connect attempt, one attempt per entry
DIAL_TIMEOUTS = (0.25, 0.5, 1.0, 2.0)
BUFFER = 65536


class Balancer:
    """One Service port's endpoint choice (kube-proxy userspace's round-robin load balancer).

    `next(client)` is the endpoint for a new connection of `client` (an IP): the client's affinity entry
    while it is fresh and its endpoint is still listed, else the next endpoint in round-robin order
    (recorded as the client's entry when affinity is on). `reset=True` skips the entry: a retry after a
    failed connect goes to another endpoint. `tries(client)` is the order of a connection's attempts."""

    def __init__(self, endpoints: list[str] | tuple[str, ...] = (), affinity_seconds: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.endpoints: list[str] = []
        self.affinity_seconds: float | None = None
        self.index = 0
        self.affinity: dict[str, tuple[str, float]] = {}    # client IP -> (endpoint, last used)
        self.update(endpoints, affinity_seconds)

    def update(self, endpoints, affinity_seconds: float | None) -> None:
        """New endpoints (and affinity setting): the round-robin goes on from where it was; affinity
        entries to endpoints that are gone (or all of them, if the affinity setting changed) are dropped."""
        endpoints = list(endpoints)
        if affinity_seconds != self.affinity_seconds:
            self.affinity = {}
        else:
            self.affinity = {c: e for c, e in self.affinity.items() if e[0] in endpoints}
        if endpoints != self.endpoints:
            self.index = self.index % len(endpoints) if endpoints else 0
        self.endpoints, self.affinity_seconds = endpoints, affinity_seconds

    def next(self, client: str, reset: bool = False) -> str | None:
        """The endpoint for a new connection (or UDP session) of `client`; None without endpoints."""
        if not self.endpoints:
            return None
        now = self.clock()
        if self.affinity_seconds and not reset:
            entry = self.affinity.get(client)
            if entry is not None and entry[0] in self.endpoints and now - entry[1] < self.affinity_seconds:
                self.affinity[client] = (entry[0], now)
                return entry[0]
        endpoint = self.endpoints[self.index % len(self.endpoints)]
        self.index = (self.index + 1) % len(self.endpoints)
        if self.affinity_seconds:
            self.affinity[client] = (endpoint, now)
        return endpoint

    def tries(self, client: str) -> Iterator[tuple[str, float]]:
        """(endpoint, connect timeout) of each attempt of a connection, lazily: each one is chosen when
        the previous attempt has failed (so connections in between move the round-robin on too)."""
        for i, timeout in enumerate(DIAL_TIMEOUTS):
            endpoint = self.next(client, reset=i > 0)
            if endpoint is None:
                return
            yield endpoint, timeout

    def forget_idle(self) -> None:
        """Drop the affinity entries older than the affinity timeout."""
        if self.affinity_seconds:
            now = self.clock()
            self.affinity = {c: e for c, e in self.affinity.items() if now - e[1] < self.affinity_seconds}


class ConfigError(Exception):
    pass


def parse_config(text: str) -> dict[tuple[str, int], dict]:
    """(protocol, port) -> the listener's entry; and the UDP idle time under ("", 0). Raises ConfigError."""
    try:
        doc = json.loads(text)
        out: dict[tuple[str, int], dict] = {("", 0): {"udpIdleSeconds": float(doc.get("udpIdleSeconds", 0.25))}}
        for entry in doc["listeners"]:
            proto, port = str(entry["protocol"]).upper(), int(entry["port"])
            if proto not in ("TCP", "UDP") or not 0 < port < 65536:
                raise ConfigError(f"listener {entry!r}: protocol TCP or UDP and a port 1-65535")
            eps = [str(e) for e in entry.get("endpoints") or []]
            for e in eps:
                host, _, p = e.rpartition(":")
                if not host or not p.isdigit():
                    raise ConfigError(f"endpoint {e!r} is not ip:port")
            aff = entry.get("affinitySeconds")
            out[(proto, port)] = {"service": str(entry.get("service", "")), "endpoints": eps,
                                  "affinitySeconds": float(aff) if aff else None}
        return out
    except ConfigError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ConfigError(f"bad config: {e}") from None


def _log(msg: str) -> None:
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} userspace-proxy: {msg}\n")
    sys.stderr.flush()


def _split(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    return host, int(port)


# ------------------------------------------------------------------ TCP

async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(BUFFER)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, asyncio.CancelledError):
        pass


class TcpListener:
    def __init__(self, service: str, port: int, balancer: Balancer) -> None:
        self.service, self.port, self.balancer = service, port, balancer
        self.server: asyncio.base_events.Server | None = None

    async def open(self) -> None:
        self.server = await asyncio.start_server(self.handle, host="0.0.0.0", port=self.port, reuse_address=True,
                                                 backlog=1024)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()          # stops accepting; the relays it started go on

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        upstream = None
        for endpoint, timeout in self.balancer.tries(peer[0]):
            try:
                upstream = await asyncio.wait_for(asyncio.open_connection(*_split(endpoint)), timeout)
                break
            except (OSError, asyncio.TimeoutError) as e:
                _log(f"{self.service}: connect to {endpoint} for {peer[0]} failed "
                     f"({type(e).__name__}: {e}); trying another endpoint")
        if upstream is None:
            _log(f"{self.service}: no endpoint took the connection of {peer[0]}:{peer[1]}; closing it")
            writer.close()
            return
        up_reader, up_writer = upstream
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                w.close()


# ------------------------------------------------------------------ UDP

class UdpListener(asyncio.DatagramProtocol):
    """A session per client address: a connected socket to the endpoint chosen for it, its replies sent
    back from the listener's port, closed after `idle` seconds without traffic."""

    def __init__(self, service: str, port: int, balancer: Balancer, idle: float) -> None:
        self.service, self.port, self.balancer, self.idle = service, port, balancer, idle
        self.transport: asyncio.DatagramTransport | None = None
        self.sessions: dict[tuple[str, int], tuple[socket.socket, list[float]]] = {}
        self.loop = asyncio.get_event_loop()

    async def open(self) -> None:
        await self.loop.create_datagram_endpoint(lambda: self, local_addr=("0.0.0.0", self.port), reuse_port=False)

    def connection_made(self, transport) -> None:
        self.transport = transport

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        for client in list(self.sessions):
            self._end(client)

    def datagram_received(self, data: bytes, addr) -> None:
        session = self.sessions.get(addr)
        if session is None:
            endpoint = self.balancer.next(addr[0])
            if endpoint is None:
                return
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            try:
                sock.connect(_split(endpoint))
            except OSError as e:
                _log(f"{self.service}: udp to {endpoint} failed: {e}")
                sock.close()
                return
            session = self.sessions[addr] = (sock, [time.monotonic()])
            self.loop.add_reader(sock.fileno(), self._reply, addr)
            self.loop.call_later(self.idle, self._check, addr)
        sock, last = session
        last[0] = time.monotonic()
        try:
            sock.send(data)
        except OSError:
            self._end(addr)

    def _reply(self, addr) -> None:
        session = self.sessions.get(addr)
        if session is None:
            return
        sock, last = session
        try:
            data = sock.recv(BUFFER)
        except BlockingIOError:
            return
        except OSError:            # ICMP port unreachable from the endpoint: the session is over
            self._end(addr)
            return
        last[0] = time.monotonic()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, addr)

    def _check(self, addr) -> None:
        session = self.sessions.get(addr)
        if session is None:
            return
        left = session[1][0] + self.idle - time.monotonic()
        if left > 0:
            self.loop.call_later(left, self._check, addr)
        else:
            self._end(addr)

    def _end(self, addr) -> None:
        session = self.sessions.pop(addr, None)
        if session is not None:
            self.loop.remove_reader(session[0].fileno())
            session[0].close()


# ------------------------------------------------------------------ the process

class Proxy:
    def __init__(self, config: str, pidfile: str | None) -> None:
        self.config, self.pidfile = config, pidfile
        self.generation = -1
        self.listeners: dict[tuple[str, int], TcpListener | UdpListener] = {}
        self.errors: dict[str, str] = {}
        self.stopping = asyncio.Event()

    async def load(self) -> None:
        try:
            with open(self.config) as f:
                wanted = parse_config(f.read())
        except (OSError, ConfigError) as e:
            _log(f"config not applied: {e}")
            return
        idle = wanted.pop(("", 0))["udpIdleSeconds"]
        # a Service port without endpoints has no listener: its connections are refused (a closed port),
        # as the other modes reject them
        wanted = {k: v for k, v in wanted.items() if v["endpoints"]}
        for key in [k for k in self.listeners if k not in wanted]:
            self.listeners.pop(key).close()
        errors = {}
        for key, entry in sorted(wanted.items()):
            current = self.listeners.get(key)
            if current is not None:
                current.service = entry["service"]
                current.balancer.update(entry["endpoints"], entry["affinitySeconds"])
                continue
            balancer = Balancer(entry["endpoints"], entry["affinitySeconds"])
            proto, port = key
            listener = TcpListener(entry["service"], port, balancer) if proto == "TCP" else \
                UdpListener(entry["service"], port, balancer, idle)
            try:
                await listener.open()
            except OSError as e:
                errors[f"{proto.lower()}/{port}"] = f"{entry['service']}: cannot listen on {proto} port {port}: {e}"
                _log(errors[f"{proto.lower()}/{port}"])
                continue
            self.listeners[key] = listener
        for listener in self.listeners.values():
            listener.balancer.forget_idle()
            if isinstance(listener, UdpListener):
                listener.idle = idle
        self.errors = errors
        self.generation += 1
        self._write_status()

    def _write_atomic(self, path: str, text: str) -> None:
        tmp = f"{path}.tmp.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with open(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)

    def _write_status(self) -> None:
        if not self.pidfile:
            return
        base = self.pidfile[:-4] if self.pidfile.endswith(".pid") else self.pidfile
        try:
            self._write_atomic(base + ".status.json", json.dumps(
                {"pid": os.getpid(), "generation": self.generation, "errors": self.errors,
                 "listening": sorted(f"{p.lower()}/{n}" for p, n in self.listeners)}))
            self._write_atomic(self.pidfile, f"{os.getpid()} {self.generation}\n")
        except OSError as e:
            _log(f"cannot write {self.pidfile}: {e}")

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        reloads = asyncio.Queue()
        loop.add_signal_handler(signal.SIGHUP, reloads.put_nowait, True)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        await self.load()
        _log(f"started (pid {os.getpid()}): {len(self.listeners)} listeners")
        while not self.stopping.is_set():
            waiter = asyncio.ensure_future(reloads.get())
            stop = asyncio.ensure_future(self.stopping.wait())
            await asyncio.wait([waiter, stop], return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if waiter.done():
                while not reloads.empty():      # several SIGHUPs in a row: one reload
                    reloads.get_nowait()
                await self.load()
            else:
                waiter.cancel()
        for listener in self.listeners.values():
            listener.close()
        if self.pidfile:
            try:
                os.unlink(self.pidfile)
            except OSError:
                pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="userspace_proxy", description="kube-proxy userspace mode's proxy")
    ap.add_argument("--config", required=True)
    ap.add_argument("--pidfile")
    args = ap.parse_args(argv)

    async def go() -> None:
        await Proxy(args.config, args.pidfile).run()
    asyncio.run(go())
    return 0


if __name__ == "__main__":
    sys.exit(main())
