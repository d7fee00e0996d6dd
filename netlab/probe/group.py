"""The probes of one source namespace: the sockets made inside it, the source ports and echo ids of
its crafted probes, and the dispatch of the packets its raw sockets receive to the probe they answer.

A socket belongs to the namespace that was current on the thread that *created* it; everything
else (connect, sendto, recv, setsockopt) works from any thread. So each group's sockets are made
by a throwaway thread that enters the group's namespace and ends (nsfs.in_netns); sockets for
HTTP/UDP exchanges come from a pool refilled the same way.
"""
from __future__ import annotations

import errno
import itertools
import logging
import random
import selectors
import socket
import struct
import threading
from collections import deque
from typing import TYPE_CHECKING

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror

from netlab.dataplane import nsfs

from .bpf import open_raw_receiver
from .kinds import PROBE_CLASSES, Probe, RawProbe, Retry
from .outcomes import UNREACHABLE_ERRNOS, errname
from .sockets import SPORT_HI, SPORT_LO, kernel_ts_ns, make_sockets
from .spec import ProbeSpec

if TYPE_CHECKING:
    from .scheduler import Engine

log = logging.getLogger(__name__)

_port_counter = itertools.count(random.randrange(SPORT_HI - SPORT_LO + 1))
_icmp_counter = itertools.count(random.randrange(1 << 16))
_counter_lock = threading.Lock()


def group_setup(netns: str, kinds: set[str], dsts: dict[str, set[str]], all_dsts: dict[str, int | None],
                filter_mode: str, n_stream: int, n_dgram: int) -> dict:
    """Runs inside the group's namespace (on a throwaway thread): every socket the group starts with
    and the source address the kernel picks for each destination of a crafted probe."""
    out: dict = {"raw": {}, "filters": {}, "send": None, "src": {}, "pool": None}
    try:
        if kinds & {"icmp", "tcp", "udp"}:
            wanted = [(socket.IPPROTO_ICMP, "icmp", (), dsts["icmp"])]
            if dsts["tcp"]:
                wanted.append((socket.IPPROTO_TCP, "tcp", dsts["tcp"], ()))
            if dsts["udp"]:
                wanted.append((socket.IPPROTO_UDP, "udp", dsts["udp"], ()))
            for proto, name, srcs, echo_srcs in wanted:
                sock, how = open_raw_receiver(proto, srcs, echo_srcs, filter_mode)
                out["raw"][proto] = sock
                out["filters"][name] = how
            out["send"] = socket.socket(socket.AF_INET, socket.SOCK_RAW | socket.SOCK_NONBLOCK |
                                        socket.SOCK_CLOEXEC, socket.IPPROTO_RAW)
            for dst, port in all_dsts.items():
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                try:
                    s.connect((dst, port or 9))
                    out["src"][dst] = s.getsockname()[0]
                except OSError as e:
                    out["src"][dst] = e
                finally:
                    s.close()
        out["pool"] = make_sockets(n_stream, n_dgram)
        return out
    except BaseException:
        close_setup(out)
        raise


def close_setup(out: dict) -> None:
    for s in out.get("raw", {}).values():
        s.close()
    if out.get("send") is not None:
        out["send"].close()
    for socks in (out.get("pool") or {}).values():
        for s in socks:
            s.close()


class Group:
    """The probes of one source namespace."""

    def __init__(self, engine: "Engine", netns: str, items: list[tuple[int, ProbeSpec]]):
        self.engine = engine
        self.netns = netns
        self.items = items
        self.results = engine.results
        self.sel = engine.sel
        self.pending: deque[Probe] = deque(PROBE_CLASSES[spec.kind](idx, spec) for idx, spec in items)
        self.active: set[Probe] = set()
        self.blocked = False
        self.filters: dict[str, str] = {}  # protocol -> how its BPF filter was made (tests, debugging)
        self.stats = {"packets": 0, "matched": 0, "socket_batches": 0}
        self.send_sock: socket.socket | None = None
        self.raw: dict[int, socket.socket] = {}
        self.icmp_by_id: dict[int, RawProbe] = {}
        self.tcp_by_sport: dict[int, RawProbe] = {}
        self.udp_by_sport: dict[int, RawProbe] = {}
        self._src: dict[str, str | OSError] = {}
        self._pool: dict[int, list[socket.socket]] = {socket.SOCK_STREAM: [], socket.SOCK_DGRAM: []}
        # sockets still to be handed out: two per http probe (GET path, GET /clientip), one per udp-app
        self._need = {socket.SOCK_STREAM: 2 * sum(s.kind == "http" for _, s in items),
                      socket.SOCK_DGRAM: sum(s.kind == "udp-app" for _, s in items)}

    def _batch(self, kind: int) -> int:
        return min(self._need[kind], self.engine.concurrency)

    def _in_ns(self, fn):
        return nsfs.in_netns(self.netns, fn) if self.netns else nsfs.run_in_thread(fn)

    def setup(self) -> None:
        kinds = {spec.kind for _, spec in self.items}
        raw_specs = [spec for _, spec in self.items if spec.kind in ("icmp", "tcp", "udp")]
        dsts = {k: {spec.dst for spec in raw_specs if spec.kind == k} for k in ("icmp", "tcp", "udp")}
        all_dsts = {spec.dst: spec.port for spec in raw_specs}
        n_stream, n_dgram = self._batch(socket.SOCK_STREAM), self._batch(socket.SOCK_DGRAM)
        mode = self.engine.filter_mode
        out = self._in_ns(lambda: group_setup(self.netns, kinds, dsts, all_dsts, mode, n_stream, n_dgram))
        self.raw, self.filters, self.send_sock = out["raw"], out["filters"], out["send"]
        self._src, self._pool = out["src"], out["pool"]
        self.stats["socket_batches"] += 1
        for proto, sock in self.raw.items():
            self.sel.register(sock, selectors.EVENT_READ, (self, proto))

    def teardown(self) -> None:
        for p in list(self.active):
            p.close(self)
        self.active.clear()
        for sock in self.raw.values():
            try:
                self.sel.unregister(sock)
            except (KeyError, ValueError):
                pass
        close_setup({"raw": self.raw, "send": self.send_sock, "pool": self._pool})
        self.raw, self.send_sock = {}, None
        self._pool = {socket.SOCK_STREAM: [], socket.SOCK_DGRAM: []}

    # -- resources for the probes
    def new_socket(self, kind: int) -> socket.socket:
        """A fresh socket of the group's namespace (from the pool, refilled from the namespace)."""
        if not self._pool[kind]:
            n = max(1, self._batch(kind))
            made = self._in_ns(lambda: make_sockets(n if kind == socket.SOCK_STREAM else 0,
                                                    n if kind == socket.SOCK_DGRAM else 0))
            self.stats["socket_batches"] += 1
            for k, socks in made.items():
                self._pool[k].extend(socks)
        self._need[kind] = max(0, self._need[kind] - 1)
        return self._pool[kind].pop()

    def source_for(self, dst: str, port: int | None) -> str:
        got = self._src.get(dst)
        if got is None:  # every raw probe's destination was looked up in setup
            raise OSError(errno.EINVAL, f"no source address looked up for {dst}")
        if isinstance(got, OSError):
            raise got
        return got

    def alloc_port(self) -> int:
        span = SPORT_HI - SPORT_LO + 1
        for _ in range(span):
            with _counter_lock:
                port = SPORT_LO + next(_port_counter) % span
            if port not in self.tcp_by_sport and port not in self.udp_by_sport:
                return port
        raise OSError(errno.EADDRINUSE, "no free probe source port")

    def alloc_icmp_id(self) -> int:
        for _ in range(1 << 16):
            with _counter_lock:
                ident = next(_icmp_counter) & 0xFFFF
            if ident not in self.icmp_by_id:
                return ident
        raise OSError(errno.EADDRINUSE, "no free ICMP echo id")

    # -- starting probes
    def can_start(self) -> bool:
        return bool(self.pending) and not self.blocked and len(self.active) < self.engine.concurrency

    def start_more(self, budget: int) -> int:
        """Start up to `budget` probes; returns how many were started."""
        self.blocked = False
        eng = self.engine
        started = 0
        while started < budget and self.pending and len(self.active) < eng.concurrency \
                and eng.in_flight < eng.max_in_flight:
            p = self.pending.popleft()
            if not self._start(p):
                self.pending.appendleft(p)
                self.blocked = True
                break
            started += 1
        return started

    def _start(self, p: Probe) -> bool:
        """Start one probe; False if it must be retried later (send buffer full)."""
        self.active.add(p)
        p.group = self
        try:
            p.start(self)
        except Retry:
            p.close(self)
            self.active.discard(p)
            return False
        except OSError as e:
            err = e.errno or errno.EIO
            if err in UNREACHABLE_ERRNOS or err in (errno.EACCES, errno.EINVAL, errno.EPERM):
                what = "no usable route" if err in (errno.EINVAL, errno.EACCES) else "send"
                p.finish(self, "unreachable", f"{what}: {errname(err)}")
            else:
                p.finish(self, "error", f"{'send' if isinstance(p, RawProbe) else 'socket'}: {errname(err)}")
        except Exception as e:  # noqa: BLE001 - a bug must only cost this probe
            log.exception("probe %s failed", p.spec)
            p.finish(self, "error", f"internal error: {type(e).__name__}: {e}")
        return True

    @property
    def finished(self) -> bool:
        return not self.pending and not self.active

    # -- replies from the raw sockets
    def drain(self, sock: socket.socket, proto: int) -> None:
        for _ in range(4096):
            try:
                data, anc, _, _ = sock.recvmsg(65535, 64)
            except (BlockingIOError, InterruptedError):
                return
            self.stats["packets"] += 1
            try:
                self._dispatch(proto, data, kernel_ts_ns(anc))
            except Exception:  # noqa: BLE001 - a malformed packet must not stop the group
                log.debug("cannot dissect a %d-byte packet of protocol %d", len(data), proto, exc_info=True)

    def _dispatch(self, proto: int, data: bytes, ts: int | None) -> None:
        if len(data) < 20:
            return
        pkt = IP(data)
        if proto == socket.IPPROTO_TCP:
            tcp = pkt.getlayer(TCP)
            p = self.tcp_by_sport.get(tcp.dport) if tcp is not None else None
            if p is not None:
                self.stats["matched"] += 1
                p.on_tcp(self, pkt, tcp, ts)
        elif proto == socket.IPPROTO_UDP:
            udp = pkt.getlayer(UDP)
            p = self.udp_by_sport.get(udp.dport) if udp is not None else None
            if p is not None:
                self.stats["matched"] += 1
                p.on_udp(self, pkt, udp, ts)
        elif proto == socket.IPPROTO_ICMP:
            icmp = pkt.getlayer(ICMP)
            if icmp is None:
                return
            if icmp.type == 0:
                p = self.icmp_by_id.get(icmp.id)
                if p is not None:
                    self.stats["matched"] += 1
                    p.on_echo_reply(self, pkt, icmp, ts)
            elif icmp.type in (3, 11, 12):
                self._icmp_error(pkt, icmp, data, ts)

    def _icmp_error(self, pkt: IP, icmp: ICMP, data: bytes, ts: int | None) -> None:
        inner = icmp.getlayer(IPerror)
        if inner is None:
            return
        off = pkt.ihl * 4 + 8 + inner.ihl * 4   # start of the quoted transport header
        l4 = data[off:off + 8]
        if len(l4) < 8:
            return
        if inner.proto == socket.IPPROTO_TCP:
            sport, dport, seq = struct.unpack("!HHI", l4)
            p = self.tcp_by_sport.get(sport)
        elif inner.proto == socket.IPPROTO_UDP:
            sport, dport = struct.unpack("!HH", l4[:4])
            seq = None
            p = self.udp_by_sport.get(sport)
        elif inner.proto == socket.IPPROTO_ICMP:
            itype, _, _, ident, seq = struct.unpack("!BBHHH", l4)
            if itype != 8:
                return
            dport = 0
            p = self.icmp_by_id.get(ident)
        else:
            return
        if p is None or inner.src != p.src:
            return
        self.stats["matched"] += 1
        p.on_icmp_error(self, icmp.type, icmp.code, pkt.src, inner.dst, dport, seq, ts)
