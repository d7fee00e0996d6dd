"""Multi-pod test server that answers as Kubernetes' agnhost ``netexec``.

One process serves many pods (netlab runs one per node).  Each pod is a Linux
network namespace; a socket belongs to the namespace that was current when it
was *created*, so the server switches into a pod's netns, creates that pod's
sockets and switches straight back.  Everything afterwards (accept, recv, send)
works on the sockets from the original namespace.  The loop is single-threaded
(one ``selectors`` loop), which is what makes the namespace switching safe:
``setns`` acts on the calling thread and nothing else runs on it while it is
switched.  The one exception is /dial (dial.py): each runs on a thread of its
own that enters the dialling pod's netns, makes its requests with blocking
sockets, hands the answer back through a queue and the wakeup pipe, and ends;
the loop keeps serving every pod meanwhile.

This module is over 500 lines because the socket layer (listeners, UDP,
HTTP/1.x connections with keep-alive, pipelining and backpressure), the pod
lifecycle (reload diff, /exit) and the pidfile/status protocol share the one
loop; what the server answers is in agnhost.py, /dial in dial.py and the
command-line flags in goflags.py.

Usage::

    python -m netlab.workload.netexec --config PATH [--pidfile PATH]

Config (JSON)::

    {"pods": [{"key": "default/web-1", "name": "web-1",
               "netns": "/run/netns/nl.lab.pod.default.web-1",
               "ports": [{"port": 8080, "protocol": "TCP"},
                         {"port": 8081, "protocol": "UDP"}],
               "log": "/run/netlab/lab/logs/default_web-1.log"}]}

``key`` identifies a pod across reloads, ``name`` is what ``/hostname``
answers, ``protocol`` defaults to TCP (SCTP is logged and skipped) and ``log``
is optional (without it the pod's lines go to stderr).

Readiness/reload protocol: the pidfile is written (atomically, via rename)
only once every pod's sockets are listening; it holds ``"<pid> <generation>"``
with generation 0 at start.  SIGHUP re-reads the config and applies the diff;
afterwards the pidfile is rewritten with the generation incremented.  A config
that cannot be read or parsed is not applied and leaves the pidfile untouched.
SIGTERM/SIGINT close everything, remove the pidfile and exit 0.

Status file: next to the pidfile (``X.pid`` -> ``X.status.json``), rewritten
atomically whenever a pod starts, exits or is restarted::

    {"pid": 123, "generation": 2, "pods": {"default/web-1":
        {"state": "exited", "exitCode": 3, "finishedAt": "2026-...Z", "restarts": 0}}}

/exit and /shutdown: agnhost's process exits; here one process serves many
pods, so the pod's *container* exits instead: that pod's listening and UDP
sockets close (its ports refuse connections, as when a container's process
is gone), its connections close (at once, or after ``timeout`` for a graceful
exit), and the other pods of the node are untouched.  The pod stays exited
(the status file says ``exited`` with the code, the pod's log says so) until
the server is next reloaded, which starts it again and counts a restart, as a
kubelet restarts a container; the lab reads the status file to tell that the
pod is not Ready.

Protocols on every pod port:

* TCP, HTTP/1.x: agnhost netexec's endpoints (agnhost.py): ``/``,
  ``/hostname``, ``/hostName``, ``/clientip``, ``/echo``, ``/header``,
  ``/healthz``, ``/readyz``, ``/redirect``, ``/dial``, ``/exit``,
  ``/shutdown``; ``/shell`` and ``/upload`` answer 501 (they would act as root
  on the host).  Keep-alive and pipelining are supported.
* TCP, line protocol (netlab's own; first bytes are not an HTTP method): one
  answer line per request line, the UDP commands or ``unknown command``.
* UDP datagrams, as agnhost: ``hostname``, ``clientip``, ``echo X``, read
  case-insensitively; anything else gets no answer.

Only the standard library is imported so that start-up stays fast.
"""

import argparse
import heapq
import json
import os
import queue
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
from urllib.parse import unquote

from . import agnhost

CLONE_NEWNET = 0x40000000
# Missing from the socket module before Python 3.12; the Linux value.
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
_PKTINFO = struct.Struct("=i4s4s")  # struct in_pktinfo

MAX_BUFFER = 64 * 1024  # cap on a connection's unprocessed input / pending output
IDLE_TIMEOUT = 30.0  # seconds without traffic before a connection is closed
SWEEP_INTERVAL = 1.0  # how often idle connections are looked for
ACCEPT_BATCH = 64  # connections accepted / datagrams read per readiness event
TCP_BACKLOG = 1024

HTTP_METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ",
                b"PATCH ", b"CONNECT ", b"TRACE ")
MAX_DIALS = 64  # /dial requests in flight per server (each has a thread of its own)

# Control characters are replaced in log lines so that one request = one line.
_LOG_SANITIZE = {c: "?" for c in list(range(32)) + [127]}


def _stderr(msg):
    try:
        sys.stderr.write(f"netexec: {msg}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _summary(text, limit=200):
    """A request made safe (single line, bounded length) for a log line."""
    if len(text) > limit:
        text = text[:limit] + "..."
    return text.translate(_LOG_SANITIZE)


def _peer(addr):
    return f"{addr[0]}:{addr[1]}"


# --------------------------------------------------------------------------
# Network namespaces


class NamespaceError(Exception):
    """Could not enter a pod's netns (the pod is skipped)."""


class FatalNamespaceError(Exception):
    """Could not return to the original netns: continuing would be unsafe."""


class Netns:
    """Switches the (single) thread into a netns and back."""

    def __init__(self):
        self._orig_fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        st = os.fstat(self._orig_fd)
        self.orig_id = (st.st_dev, st.st_ino)
        self._setns_impl = getattr(os, "setns", None)  # Python >= 3.12

    def _setns(self, fd):
        if self._setns_impl is None:
            import ctypes  # only paid for when a real switch is needed

            libc = ctypes.CDLL(None, use_errno=True)

            def setns(fd, nstype):
                if libc.setns(fd, nstype) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err))

            self._setns_impl = setns
        self._setns_impl(fd, CLONE_NEWNET)

    @staticmethod
    def identity(path):
        """(st_dev, st_ino) of a netns file, or None if it does not exist."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def run_in(self, path, func):
        """Call ``func()`` with ``path``'s netns current; return (ns_id, result).

        If ``path`` is the namespace we are already in, no switch happens (so
        this works unprivileged for the current netns, e.g. in tests).
        """
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise NamespaceError(f"cannot open netns {path}: {e.strerror}") from None
        try:
            st = os.fstat(fd)
            ns_id = (st.st_dev, st.st_ino)
            if ns_id == self.orig_id:
                return ns_id, func()
            try:
                self._setns(fd)
            except OSError as e:
                raise NamespaceError(f"cannot enter netns {path}: {e.strerror}") from None
            try:
                return ns_id, func()
            finally:
                try:
                    self._setns(self._orig_fd)
                except OSError as e:
                    raise FatalNamespaceError(
                        f"cannot return to the original netns: {e.strerror}") from None
        finally:
            os.close(fd)


# --------------------------------------------------------------------------
# Configuration


class ConfigError(Exception):
    pass


class PodSpec:
    """One pod of the config.  ``ports`` is a sorted tuple of (port, proto)."""

    __slots__ = ("key", "name", "netns", "ports", "log", "port_errors")

    def __init__(self, key, name, netns, ports, log, port_errors):
        self.key, self.name, self.netns = key, name, netns
        self.ports, self.log, self.port_errors = ports, log, port_errors


def _parse_pod(entry):
    if not isinstance(entry, dict):
        raise ConfigError("pod entry is not an object")
    key, name, netns = entry.get("key"), entry.get("name"), entry.get("netns")
    for field, value in (("key", key), ("name", name), ("netns", netns)):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"pod {key!r}: missing or invalid {field!r}")
    log = entry.get("log")
    if log is not None and (not isinstance(log, str) or not log):
        raise ConfigError(f"pod {key!r}: invalid 'log'")
    raw_ports = entry.get("ports", [])
    if not isinstance(raw_ports, list):
        raise ConfigError(f"pod {key!r}: 'ports' is not a list")
    ports, errors = set(), []
    for p in raw_ports:
        port = p.get("port") if isinstance(p, dict) else None
        proto = p.get("protocol", "TCP") if isinstance(p, dict) else None
        if (not isinstance(port, int) or isinstance(port, bool)
                or not 0 < port < 65536 or not isinstance(proto, str)):
            errors.append(f"invalid port entry {p!r}, skipped")
            continue
        proto = proto.upper()
        if proto not in ("TCP", "UDP"):
            errors.append(f"protocol {proto} on port {port} is not supported, skipped")
            continue
        ports.add((port, proto))
    return PodSpec(key, name, netns, tuple(sorted(ports)), log, tuple(errors))


def load_config(path):
    """Parse the config file into {key: PodSpec}.

    A bad file raises ConfigError; a bad pod entry is reported on stderr and
    skipped so it cannot take the other pods down.
    """
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read config {path}: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("pods"), list):
        raise ConfigError(f"config {path}: expected an object with a 'pods' list")
    specs = {}
    for entry in data["pods"]:
        try:
            spec = _parse_pod(entry)
        except ConfigError as e:
            _stderr(f"config: {e}")
            continue
        if spec.key in specs:
            _stderr(f"config: duplicate pod key {spec.key!r}, later entry ignored")
            continue
        specs[spec.key] = spec
    return specs


# --------------------------------------------------------------------------
# Per-pod log


class PodLog:
    """Append-only, line-buffered log file of one pod (stderr without a path)."""

    def __init__(self, key, path):
        self.key, self.path, self._f = key, path, None
        if path is None:
            return
        try:
            parent = os.path.dirname(path)
            if parent:
                os.makedirs(parent, mode=0o700, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.fchmod(fd, 0o600)  # also when the umask or an old file said otherwise
            except OSError:
                pass
            self._f = open(fd, "a", buffering=1, encoding="utf-8", errors="replace")
        except OSError as e:
            _stderr(f"pod {key}: cannot open log {path}: {e}; logging to stderr")

    def write(self, msg):
        t = time.time()
        line = (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
                + f".{int(t % 1 * 1000):03d}Z {msg}\n")
        try:
            if self._f is not None:
                self._f.write(line)
            else:
                sys.stderr.write(f"[{self.key}] {line}")
        except (OSError, ValueError):
            pass  # a full disk must not stop the server

    def close(self):
        if self._f is not None:
            try:
                self._f.close()
            except OSError:
                pass
            self._f = None


# --------------------------------------------------------------------------
# Request handling shared by the TCP line protocol and UDP


def line_command(pod, peer, text):
    """Answer one line of the TCP line protocol: agnhost's UDP commands, else "unknown command"."""
    answer = agnhost.command(pod.name, peer, text.encode("utf-8", "replace"))
    return "unknown command" if answer is None else answer


# --------------------------------------------------------------------------
# Sockets


class Handler:
    """Something registered in the selector (``key.data``)."""

    closed = False

    def on_event(self, mask):
        raise NotImplementedError


class TcpListener(Handler):
    def __init__(self, server, pod, sock, port):
        self.server, self.pod, self.sock, self.port = server, pod, sock, port

    def on_event(self, mask):
        for _ in range(ACCEPT_BATCH):
            try:
                sock, addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # EMFILE, ECONNABORTED, ...
                _stderr(f"pod {self.pod.key}: accept on port {self.port}: {e}")
                return
            Connection(self.server, self.pod, sock, addr)

    def close(self):
        if not self.closed:
            self.closed = True
            self.server.unregister(self.sock)
            self.sock.close()


class UdpSocket(Handler):
    def __init__(self, server, pod, sock, port):
        self.server, self.pod, self.sock, self.port = server, pod, sock, port

    def on_event(self, mask):
        for _ in range(ACCEPT_BATCH):
            try:
                data, anc, _flags, addr = self.sock.recvmsg(65535, socket.CMSG_SPACE(_PKTINFO.size))
            except OSError:  # nothing (more) to read
                return
            peer = _peer(addr)
            answer = agnhost.command(self.pod.name, peer, data)
            text = data[:agnhost.UDP_READ].decode("utf-8", "replace").strip()
            self.pod.log.write(f"UDP {peer} {_summary(text)}"
                               + ("" if answer is not None else " (unknown command, not answered)"))
            if answer is not None:
                self._reply(answer.encode(), anc, addr)

    def _reply(self, payload, anc, addr):
        # Answer from the address the request was sent to (the socket is bound
        # to 0.0.0.0 and the pod may have several addresses), falling back to
        # letting the kernel choose.
        for level, kind, value in anc:
            if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(value) >= _PKTINFO.size:
                _ifindex, spec_dst, _dst = _PKTINFO.unpack_from(value)
                try:
                    self.sock.sendmsg([payload], [(socket.IPPROTO_IP, IP_PKTINFO,
                                                   _PKTINFO.pack(0, spec_dst, b"\0" * 4))],
                                      0, addr)
                    return
                except OSError:
                    break
        try:
            self.sock.sendto(payload, addr)
        except OSError:
            pass  # UDP: a reply that cannot be sent now is simply dropped

    def close(self):
        if not self.closed:
            self.closed = True
            self.server.unregister(self.sock)
            self.sock.close()


class Connection(Handler):
    """One accepted TCP connection speaking HTTP/1.x or the line protocol."""

    def __init__(self, server, pod, sock, addr):
        self.server, self.pod, self.sock = server, pod, sock
        self.peer = _peer(addr)
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.mode = None  # "http" or "line", decided by the first bytes
        self.eof = False  # the peer has finished sending
        self.close_after_flush = False
        self.waiting = False  # a /dial or a delayed /exit is answering the current request
        self.last_activity = time.monotonic()
        self.events = 0
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        pod.conns.add(self)
        self._update_events()

    # -- event handling -----------------------------------------------------

    def on_event(self, mask):
        # Write first: once the output drains, _process() below also resumes
        # requests that were held back by output backpressure.
        if mask & selectors.EVENT_WRITE:
            if not self._flush():
                return
        if mask & selectors.EVENT_READ:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:  # ECONNRESET and friends
                self.close()
                return
            if data is not None:
                self.last_activity = time.monotonic()
                if data:
                    self.inbuf += data
                else:
                    self.eof = True
        self._process()
        if self.outbuf and not self._flush():
            return
        self._update_events()

    def _flush(self):
        """Send what we can; False if the connection got closed."""
        while self.outbuf:
            try:
                n = self.sock.send(self.outbuf)
            except (BlockingIOError, InterruptedError):
                return True
            except OSError:
                self.close()
                return False
            del self.outbuf[:n]
            self.last_activity = time.monotonic()
        return True

    def _update_events(self):
        if self.closed:
            return
        if not self.outbuf and (self.close_after_flush or self.eof):
            self.close()
            return
        events = 0
        if not self.eof and not self.close_after_flush and len(self.outbuf) < MAX_BUFFER:
            events |= selectors.EVENT_READ
        if self.outbuf:
            events |= selectors.EVENT_WRITE
        if events != self.events:
            self.server.set_events(self.sock, events, self, self.events)
            self.events = events

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.pod.conns.discard(self)
        if self.events:
            self.server.unregister(self.sock)
        self.sock.close()
        self.inbuf = self.outbuf = bytearray()

    # -- protocol -----------------------------------------------------------

    def _detect_mode(self):
        buf = bytes(self.inbuf[:8])
        undecided = False
        for method in HTTP_METHODS:
            if buf.startswith(method):
                return "http"
            if method.startswith(buf):
                undecided = True  # could still become an HTTP request line
        if undecided and not self.eof:
            return None
        return "line"

    def _process(self):
        while not self.close_after_flush and not self.waiting and len(self.outbuf) < MAX_BUFFER:
            if self.mode is None:
                if not self.inbuf:
                    return
                self.mode = self._detect_mode()
                if self.mode is None:
                    return
            if self.mode == "http":
                progressed = self._http_request()
            else:
                progressed = self._line_request()
            if not progressed:
                break
        if self.close_after_flush:
            self.inbuf.clear()
        elif len(self.inbuf) > MAX_BUFFER and not self.waiting:
            # Too much input without a complete request.
            if self.mode == "http":
                self._http_respond(431, "request too large\n", "", close=True)
            else:
                self.close_after_flush = True
            self.inbuf.clear()

    def _line_request(self):
        idx = self.inbuf.find(b"\n")
        if idx < 0:
            if not (self.eof and self.inbuf):
                return False
            idx = len(self.inbuf)  # unterminated last line at EOF
        line = self.inbuf[:idx].decode("utf-8", "replace")
        del self.inbuf[:idx + 1]
        self.pod.log.write(f"TCP {self.peer} {_summary(line.strip())}")
        self.outbuf += (line_command(self.pod, self.peer, line) + "\n").encode()
        return True

    def _http_request(self):
        # Tolerate blank lines between pipelined requests (RFC 9112 2.2).
        while self.inbuf[:2] == b"\r\n" or self.inbuf[:1] == b"\n":
            del self.inbuf[:2 if self.inbuf[:1] == b"\r" else 1]
        if not self.inbuf:
            return False
        ends = [(i, len(sep)) for sep in (b"\r\n\r\n", b"\n\n")
                for i in (self.inbuf.find(sep),) if i >= 0]
        if not ends:
            return False
        head_len, sep_len = min(ends)
        lines = bytes(self.inbuf[:head_len]).decode("latin-1").split("\n")
        parts = lines[0].strip().split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self._http_respond(400, "bad request\n", _summary(lines[0].strip()), close=True)
            return False
        method, target, version = parts
        header_list = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                self._http_respond(400, "bad header\n", f"{method} {target}", close=True)
                return False
            header_list.append((name.strip(), value.strip()))
        headers = {name.lower(): value for name, value in header_list}
        if "transfer-encoding" in headers:
            # We never need a request body; without chunked parsing we cannot
            # find where the next request starts, so refuse it.
            self._http_respond(501, "chunked requests are not supported\n",
                               f"{method} {target}", close=True)
            return False
        try:
            body_len = int(headers.get("content-length", "0"))
            if body_len < 0:
                raise ValueError
        except ValueError:
            self._http_respond(400, "bad content-length\n", f"{method} {target}", close=True)
            return False
        total = head_len + sep_len + body_len
        if total > len(self.inbuf):
            if total > MAX_BUFFER:
                self._http_respond(413, "request too large\n", f"{method} {target}", close=True)
            return False  # else wait for the rest of the body
        del self.inbuf[:total]

        connection = headers.get("connection", "").lower()
        if version == "HTTP/1.0":
            keep_alive = "keep-alive" in connection
        else:
            keep_alive = "close" not in connection
        if "://" in target:  # absolute-form, e.g. through a proxy
            target = "/" + target.split("://", 1)[1].partition("/")[2]
        path, _, query = target.partition("?")
        summary = f"{method} {target}"
        result = agnhost.handle(self.pod, method, unquote(path), query, header_list, self.peer)
        close = not keep_alive
        if isinstance(result, agnhost.DialAction):
            self._start_dial(result, summary, close, method == "HEAD")
        elif isinstance(result, agnhost.ExitAction):
            self.pod.log.write(f"HTTP {self.peer} {_summary(summary)}: the container exits with code "
                               f"{result.code}")
            self.server.request_exit(self.pod, self, result, head=method == "HEAD")
        else:
            self._http_respond(result.status, result.body, summary, close=close or result.close,
                               head=(method == "HEAD"), extra=result.headers, ctype=result.ctype)
        return True

    def _start_dial(self, action, summary, close, head):
        if len(self.server.dials) >= MAX_DIALS:
            self._http_respond(503, f"too many /dial requests in flight (netlab allows {MAX_DIALS})\n",
                               summary, close=close, head=head)
            return
        self.waiting = True

        def done(body):
            self.waiting = False
            if not self.closed:
                self._http_respond(200, body, summary, close=close, head=head)

        self.server.start_dial(self.pod, self, action, done)

    def _http_respond(self, status, body, summary, close, head=False, extra=(),
                      ctype="text/plain; charset=utf-8"):
        payload = body.encode("utf-8")
        lines = [f"HTTP/1.1 {status} {agnhost.reason(status)}"]
        if payload or extra:
            lines.append(f"Content-Type: {ctype}")
        lines += [f"{name}: {value.replace(chr(13), ' ').replace(chr(10), ' ')}" for name, value in extra]
        lines += [f"Content-Length: {len(payload)}", f"Connection: {'close' if close else 'keep-alive'}"]
        self.outbuf += ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
        if not head:
            self.outbuf += payload
        if close:
            self.close_after_flush = True
        self.pod.log.write(f"HTTP {self.peer} {_summary(summary)} {status}")


# --------------------------------------------------------------------------
# Pods and the server


class Pod:
    """A running pod: its sockets, open connections and log."""

    def __init__(self, spec):
        self.key, self.name, self.netns, self.ports = spec.key, spec.name, spec.netns, spec.ports
        self.log = PodLog(spec.key, spec.log)
        self.ns_id = None  # identity of the netns the sockets were created in
        self.sockets = []  # TcpListener / UdpSocket
        self.conns = set()
        self.broken = False  # some socket could not be opened
        self.started = time.monotonic()
        self.exiting = False  # a graceful /exit is under way
        self.exit_code = None  # set once the pod's "container" has exited (/exit, /shutdown)
        self.finished_at = None
        self.restarts = 0

    @property
    def healthy(self):
        return not self.broken and self.exit_code is None and not self.exiting

    def error(self, msg):
        self.broken = True
        self.log.write(f"ERROR {msg}")
        _stderr(f"pod {self.key}: {msg}")


def _open_sockets(ports):
    """Create and bind sockets for ``ports``; runs inside the pod's netns.

    Returns [(port, proto, socket or None, error or None)].
    """
    result = []
    for port, proto in ports:
        sock = None
        try:
            if proto == "TCP":
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("0.0.0.0", port))
                sock.listen(TCP_BACKLOG)
            else:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
                sock.bind(("0.0.0.0", port))
            sock.setblocking(False)
            result.append((port, proto, sock, None))
        except OSError as e:
            if sock is not None:
                sock.close()
            result.append((port, proto, None, e.strerror or str(e)))
    return result


class Server:
    def __init__(self, config_path, pidfile):
        self.config_path = config_path
        self.pidfile = pidfile
        self.netns = Netns()
        self.sel = selectors.DefaultSelector()
        self.pods = {}
        self.generation = 0
        self._stop = False
        self._reload = False
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.sel.register(self._wake_r, selectors.EVENT_READ, None)
        self.dials = set()  # connections waiting for a /dial thread
        self._done = queue.SimpleQueue()  # (callback, argument) from /dial threads
        self._timers = []  # heap of (when, seq, callback)
        self._seq = 0
        self.restarts = {}  # pod key -> restarts after an exit, kept across the pod's restarts
        self.status_path = None
        if pidfile:
            base = pidfile[:-4] if pidfile.endswith(".pid") else pidfile
            self.status_path = base + ".status.json"

    # -- selector helpers -----------------------------------------------------

    def set_events(self, sock, events, handler, old_events):
        if not events:
            self.sel.unregister(sock)
        elif not old_events:
            self.sel.register(sock, events, handler)
        else:
            self.sel.modify(sock, events, handler)

    def unregister(self, sock):
        try:
            self.sel.unregister(sock)
        except (KeyError, ValueError):
            pass

    # -- signals ----------------------------------------------------------------

    def install_signals(self):
        # The handlers only set flags; the loop does the work.  The wakeup fd
        # makes select() return when a signal arrives.
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGHUP, self._on_sighup)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)

    def _on_sighup(self, signum, frame):
        self._reload = True

    def _on_stop(self, signum, frame):
        self._stop = True

    def _drain_wakeup(self):
        try:
            while os.read(self._wake_r, 512):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    # -- pods -------------------------------------------------------------------

    def start_pod(self, spec):
        pod = Pod(spec)
        self.pods[spec.key] = pod
        for err in spec.port_errors:
            pod.log.write(f"WARNING {err}")
            _stderr(f"pod {spec.key}: {err}")
        if not spec.ports:
            return
        try:
            pod.ns_id, opened = self.netns.run_in(spec.netns, lambda: _open_sockets(spec.ports))
        except NamespaceError as e:
            pod.error(str(e))
            return
        for port, proto, sock, err in opened:
            if sock is None:
                pod.error(f"cannot listen on {proto} 0.0.0.0:{port}: {err}")
                continue
            cls = TcpListener if proto == "TCP" else UdpSocket
            handler = cls(self, pod, sock, port)
            self.sel.register(sock, selectors.EVENT_READ, handler)
            pod.sockets.append(handler)
            pod.log.write(f"listening on {proto} 0.0.0.0:{port} "
                          f"(pod {pod.name}, netns {pod.netns})")

    def stop_pod(self, pod, reason):
        del self.pods[pod.key]
        nconns = len(pod.conns)
        for conn in list(pod.conns):
            conn.close()
        for handler in pod.sockets:
            handler.close()
        pod.sockets = []
        pod.log.write(f"stopped ({reason}; closed {nconns} connections)")
        pod.log.close()

    # -- /dial, /exit ---------------------------------------------------------------

    def add_timer(self, delay, callback):
        self._seq += 1
        heapq.heappush(self._timers, (time.monotonic() + delay, self._seq, callback))

    def _run_timers(self):
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, callback = heapq.heappop(self._timers)
            callback()

    def _next_timeout(self):
        if not self._timers:
            return SWEEP_INTERVAL
        return min(SWEEP_INTERVAL, max(0.0, self._timers[0][0] - time.monotonic()))

    def start_dial(self, pod, conn, action, done):
        """Run /dial on a thread of its own in the pod's netns; `done(body)` then runs on this loop."""
        self.dials.add(conn)

        def finished(body):  # on the dial thread: hand over to the loop
            self._done.put((conn, done, body))
            try:
                os.write(self._wake_w, b"d")
            except OSError:
                pass  # the pipe is full: the loop is awake anyway

        pod.log.write(f"dial {action.protocol} {action.host}:{action.port} request "
                      f"{_summary(action.request)} tries {action.tries}")
        from . import dial  # threads and http parsing: only paid for by pods that dial

        dial.start(pod.netns, action, finished)

    def _finish_dials(self):
        while True:
            try:
                conn, done, body = self._done.get_nowait()
            except queue.Empty:
                return
            self.dials.discard(conn)
            if conn.closed:
                continue
            done(body)
            conn.last_activity = time.monotonic()
            conn.on_event(0)  # send the answer, go on with pipelined requests

    def request_exit(self, pod, conn, action, head=False):
        """/exit or /shutdown from `conn`: after action.wait s, the pod's container exits."""
        def go():
            if conn.closed or self.pods.get(pod.key) is not pod or pod.exit_code is not None:
                return
            conn.waiting = False
            if action.timeout > 0:
                conn._http_respond(200, "", "exit", close=True, head=head)
                conn.on_event(0)
            self.exit_pod(pod, action.code, action.timeout)

        if action.wait > 0:
            conn.waiting = True
            self.add_timer(action.wait, go)
        else:
            go()

    def exit_pod(self, pod, code, timeout=0.0):
        """The pod's container exits: its sockets close, as a process's do when it ends.

        With `timeout`, the listening sockets close now and open connections may finish their
        request for up to `timeout` s (agnhost's graceful shutdown); without, everything closes now
        (requests being answered get no answer). The pod stays exited until the server is reloaded
        (SIGHUP), which restarts it as a kubelet restarts a container; the status file says so.
        """
        for handler in pod.sockets:
            handler.close()
        pod.sockets = []
        if timeout > 0:
            pod.exiting = True
            for conn in list(pod.conns):
                if conn.outbuf or conn.waiting or conn.inbuf:
                    conn.close_after_flush = conn.close_after_flush or not conn.waiting
                else:
                    conn.close()
            self.add_timer(timeout, lambda: self._close_conns(pod))
        else:
            self._close_conns(pod)
        pod.exit_code = code
        pod.finished_at = time.time()
        pod.log.write(f"exited with code {code}: its ports are closed until the next reload")
        self.write_status()

    def _close_conns(self, pod):
        pod.exiting = False
        for conn in list(pod.conns):
            conn.close()

    def write_status(self):
        """Write each pod's container state to the status file (atomically), for the lab to read."""
        if not self.status_path:
            return
        pods = {}
        for key, pod in sorted(self.pods.items()):
            st = {"restarts": self.restarts.get(key, 0)}
            if pod.exit_code is None:
                st["state"] = "running"
            else:
                st.update(state="exited", exitCode=pod.exit_code,
                          finishedAt=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(pod.finished_at)))
            pods[key] = st
        tmp = f"{self.status_path}.tmp.{os.getpid()}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with open(fd, "w") as f:
                json.dump({"pid": os.getpid(), "generation": self.generation, "pods": pods}, f)
            os.replace(tmp, self.status_path)
        except OSError as e:
            _stderr(f"cannot write status file {self.status_path}: {e}")
            try:
                os.unlink(tmp)
            except OSError:
                pass

    def _needs_restart(self, pod, spec):
        if spec.netns != pod.netns:
            return "netns changed"
        if spec.ports != pod.ports:
            return "ports changed"
        if pod.broken:
            return "retrying after errors"
        if pod.exit_code is not None:
            return f"restarted after its exit with code {pod.exit_code}"
        if pod.ns_id is not None and Netns.identity(spec.netns) != pod.ns_id:
            return "netns was recreated"
        return None

    def apply(self, specs):
        # Stop first so that a port moving between pods can be re-bound.
        for key, pod in list(self.pods.items()):
            spec = specs.get(key)
            reason = "removed from config" if spec is None else self._needs_restart(pod, spec)
            if spec is None:
                self.restarts.pop(key, None)
            elif pod.exit_code is not None:
                self.restarts[key] = self.restarts.get(key, 0) + 1
            if reason:
                self.stop_pod(pod, reason)
        for key, spec in specs.items():
            pod = self.pods.get(key)
            if pod is None:
                try:
                    self.start_pod(spec)
                except FatalNamespaceError:
                    raise
                except Exception as e:  # a bug must only affect this pod
                    _stderr(f"pod {key}: unexpected error: {e!r}\n{traceback.format_exc()}")
                continue
            # Unchanged sockets; the name and log path may still be updated.
            pod.name = spec.name
            for err in spec.port_errors:
                pod.log.write(f"WARNING {err}")
            if spec.log != pod.log.path:
                pod.log.write(f"log moved to {spec.log}")
                pod.log.close()
                pod.log = PodLog(key, spec.log)
        self.write_status()

    def reload(self):
        try:
            specs = load_config(self.config_path)
        except ConfigError as e:
            _stderr(f"reload not applied: {e}")
            return
        self.generation += 1
        self.apply(specs)
        try:
            self.write_pidfile()
        except OSError:
            pass  # already reported; keep serving

    def write_pidfile(self):
        """Atomically write "<pid> <generation>"; raises OSError on failure."""
        if not self.pidfile:
            return
        tmp = f"{self.pidfile}.tmp.{os.getpid()}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with open(fd, "w") as f:
                f.write(f"{os.getpid()} {self.generation}\n")
            os.replace(tmp, self.pidfile)
        except OSError as e:
            _stderr(f"cannot write pidfile {self.pidfile}: {e}")
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def _remove_pidfile(self):
        if not self.pidfile:
            return
        try:
            with open(self.pidfile) as f:
                mine = f.read().split()[:1] == [str(os.getpid())]
            if mine:
                os.unlink(self.pidfile)
        except OSError:
            pass

    # -- main loop ----------------------------------------------------------------

    def _sweep_idle(self, now):
        for pod in list(self.pods.values()):
            for conn in list(pod.conns):
                if now - conn.last_activity > IDLE_TIMEOUT and not conn.waiting:
                    conn.close()

    def start(self, specs):
        self.apply(specs)
        self.write_pidfile()  # readiness: every socket is listening now

    def run(self):
        last_sweep = time.monotonic()
        while not self._stop:
            for key, mask in self.sel.select(timeout=self._next_timeout()):
                handler = key.data
                if handler is None:
                    self._drain_wakeup()
                    self._finish_dials()
                    continue
                if handler.closed:  # closed earlier in this batch
                    continue
                try:
                    handler.on_event(mask)
                except Exception as e:
                    _stderr(f"pod {handler.pod.key}: unexpected error: {e!r}\n"
                            f"{traceback.format_exc()}")
                    if isinstance(handler, Connection):
                        handler.close()
            self._run_timers()
            if self._reload and not self._stop:
                self._reload = False
                self.reload()
            now = time.monotonic()
            if now - last_sweep >= SWEEP_INTERVAL:
                last_sweep = now
                self._sweep_idle(now)

    def shutdown(self):
        for pod in list(self.pods.values()):
            self.stop_pod(pod, "server shutting down")
        self._remove_pidfile()
        if self.status_path:
            try:
                os.unlink(self.status_path)
            except OSError:
                pass
        self.sel.close()


def _raise_fd_limit():
    # Each pod costs a socket per port plus one per connection.
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, ValueError, OSError):
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m netlab.workload.netexec",
        description="agnhost-netexec-like test server for many pods (netns) in one process")
    parser.add_argument("--config", required=True, help="JSON config with the pods to serve")
    parser.add_argument("--pidfile", help='written as "<pid> <generation>" once listening '
                        "and after each applied SIGHUP reload")
    args = parser.parse_args(argv)

    try:
        server = Server(args.config, args.pidfile)
        server.install_signals()
        specs = load_config(args.config)
    except (ConfigError, OSError) as e:
        _stderr(str(e))
        return 1
    _raise_fd_limit()
    try:
        try:
            server.start(specs)
        except OSError:  # the pidfile could not be written (already reported)
            return 1
        server.run()
    except FatalNamespaceError as e:
        # Sockets created from here on could land in a pod's netns: give up.
        _stderr(f"fatal: {e}")
        return 1
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
