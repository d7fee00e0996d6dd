"""The built-in server's sockets: a pod's TCP listeners, UDP sockets and HTTP/1.x (or line protocol)
connections, driven by the server's selectors loop (netexec.py); what they answer is agnhost.py's.
Standard library only.
"""

import selectors
import socket
import struct
import time
from urllib.parse import unquote

from . import agnhost, apps
from .podconf import stderr as _stderr, summary as _summary

# Missing from the socket module before Python 3.12; the Linux value.
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
_PKTINFO = struct.Struct("=i4s4s")  # struct in_pktinfo

MAX_BUFFER = 64 * 1024  # cap on a connection's unprocessed input / pending output
ACCEPT_BATCH = 64  # connections accepted / datagrams read per readiness event
MAX_DIALS = 64  # /dial requests in flight per server (each has a thread of its own)

HTTP_METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ",
                b"PATCH ", b"CONNECT ", b"TRACE ")


def _peer(addr):
    return f"{addr[0]}:{addr[1]}"


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
        self.app = pod.apps.get((port, "TCP"))

    def on_event(self, mask):
        for _ in range(ACCEPT_BATCH):
            try:
                sock, addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # EMFILE, ECONNABORTED, ...
                _stderr(f"pod {self.pod.key}: accept on port {self.port}: {e}")
                return
            greeting = apps.on_connect(self.app, self.pod)
            if greeting is not None:  # a raw TCP server that writes and closes (serve-hostname --tcp)
                self.pod.log.write(f"TCP {_peer(addr)} connected: answered {_summary(greeting)}")
                try:
                    sock.setblocking(True)
                    sock.settimeout(1.0)
                    sock.sendall(greeting.encode())
                except OSError:
                    pass
                sock.close()
                continue
            Connection(self.server, self.pod, sock, addr, self.app)

    def close(self):
        if not self.closed:
            self.closed = True
            self.server.unregister(self.sock)
            self.sock.close()


class UdpSocket(Handler):
    def __init__(self, server, pod, sock, port):
        self.server, self.pod, self.sock, self.port = server, pod, sock, port
        self.app = pod.apps.get((port, "UDP"))

    def on_event(self, mask):
        for _ in range(ACCEPT_BATCH):
            try:
                data, anc, _flags, addr = self.sock.recvmsg(65535, socket.CMSG_SPACE(_PKTINFO.size))
            except OSError:  # nothing (more) to read
                return
            peer = _peer(addr)
            answer = apps.datagram(self.app, self.pod, peer, data)
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

    def __init__(self, server, pod, sock, addr, app=None):
        self.server, self.pod, self.sock, self.app = server, pod, sock, app
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
        if self.app is not None:  # an HTTP server of a well-known image: 400 and close, as Go's
            self.pod.log.write(f"TCP {self.peer} {_summary(line.strip())}: not HTTP, 400")
            self.outbuf += apps.bad_request()
            self.close_after_flush = True
            return False
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
        result = apps.handle(self.app, self.pod, method, unquote(path), query, header_list, self.peer)
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


