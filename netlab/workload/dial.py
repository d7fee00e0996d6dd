"""agnhost netexec's /dial, run for one pod on a dedicated thread inside that pod's network namespace.

`start(netns_path, action, done)` starts a thread that enters the pod's netns (setns acts on the
calling thread only; this thread does nothing else and ends afterwards, so no other work ever runs
in a namespace it did not choose), makes the `tries` requests one after the other with blocking
sockets (each try: 5 s, as agnhost's client), and calls `done(body)` with agnhost's JSON answer:
`{"errors": [...], "responses": [...]}`: "responses" only when the last try got a non-empty answer
and "errors" only when some try failed, as agnhost does. The server's loop is never blocked.

HTTP tries GET http://HOST:PORT/REQUEST with a fresh connection each, follow up to 10 redirects (to
http:// URLs) as Go's client does, and take the body whatever the status. UDP tries send REQUEST in one
datagram from a fresh socket and take the first answer (at most 2048 bytes).
"""

from __future__ import annotations

import os
import socket
import threading
import time

from urllib.parse import quote

from . import agnhost

TRY_TIMEOUT = 5.0
MAX_BODY = 1 << 20
MAX_REDIRECTS = 10
CLONE_NEWNET = 0x40000000
_URL_SAFE = "/?&=%:;@!$'()*+,-._~#[]"


def _enter(netns_path: str) -> None:
    """setns() this thread into `netns_path` (nothing to do when it is already current)."""
    fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        mine = os.stat("/proc/thread-self/ns/net")
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino):
            return
        setns = getattr(os, "setns", None)
        if setns is not None:
            setns(fd, CLONE_NEWNET)
            return
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)


def start(netns_path: str, action: agnhost.DialAction, done) -> threading.Thread:
    def run():
        try:
            _enter(netns_path)
        except OSError as e:
            done(agnhost.go_json({"errors": [f"cannot enter the pod's network namespace: {e.strerror}"]}))
            return
        done(run_tries(action))

    t = threading.Thread(target=run, name="netexec-dial", daemon=True)
    t.start()
    return t


def run_tries(action: agnhost.DialAction) -> str:
    """The JSON body of /dial after `action.tries` tries from the current thread's netns."""
    responses, errors = [], []
    last = ""
    for _ in range(action.tries):
        try:
            if action.protocol == "udp":
                last = dial_udp(action.host, action.port, action.request)
            else:
                last = dial_http(action.host, action.port, action.request)
            responses.append(last)
        except DialError as e:
            last = ""
            errors.append(str(e))
    out = {}
    if errors:
        out["errors"] = errors
    if last:
        out["responses"] = responses
    return agnhost.go_json(out)


class DialError(Exception):
    pass


def _why(e: OSError) -> str:
    if isinstance(e, socket.timeout):
        return "i/o timeout"
    return (e.strerror or str(e)).lower()


def dial_udp(host: str, port: int, request: str) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((host, port))
        except OSError as e:
            raise DialError(f"udp dial failed. err:dial udp {host}:{port}: {_why(e)}") from None
        local = "%s:%d" % s.getsockname()
        try:
            s.send(request.encode())
        except OSError as e:
            raise DialError(f"udp connection write failed. err:write udp {local}->{host}:{port}: "
                            f"{_why(e)}") from None
        s.settimeout(TRY_TIMEOUT)
        try:
            data = s.recv(agnhost.UDP_READ)
        except OSError as e:
            raise DialError(f"reading from udp connection failed. err:'read udp {local}->{host}:{port}: "
                            f"{_why(e)}'") from None
        if not data:
            raise DialError("reading from udp connection failed. err:'<nil>'")
        return data.decode("utf-8", "replace")


def dial_http(host: str, port: int, request: str) -> str:
    # as Go's URL parser leaves it, but a request with spaces or control characters still makes a valid
    # request line (Go refuses such a URL; netlab sends it escaped)
    url = f"http://{host}:{port}/{quote(request, safe=_URL_SAFE)}"
    deadline = time.monotonic() + TRY_TIMEOUT
    for _ in range(MAX_REDIRECTS + 1):
        status, location, body = _get(host, port, _target(url), deadline, url)
        if status in (301, 302, 303, 307, 308) and location:
            from urllib.parse import urljoin, urlsplit

            url = urljoin(url, location)
            parts = urlsplit(url)
            if parts.scheme != "http" or not parts.hostname:
                raise DialError(f'Get "{url}": unsupported protocol scheme "{parts.scheme}"')
            host, port = parts.hostname, parts.port or 80
            continue
        return body
    raise DialError(f'Get "{url}": stopped after {MAX_REDIRECTS} redirects')


def _target(url: str) -> str:
    rest = url.split("://", 1)[1]
    slash = rest.find("/")
    return rest[slash:] if slash >= 0 else "/"


def _get(host: str, port: int, target: str, deadline: float, url: str) -> tuple[int, str, str]:
    def left() -> float:
        t = deadline - time.monotonic()
        if t <= 0:
            raise socket.timeout()
        return t

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(left())
            try:
                s.connect((host, port))
            except OSError as e:
                raise DialError(f'Get "{url}": dial tcp {host}:{port}: connect: {_why(e)}') from None
            req = (f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: Go-http-client/1.1\r\n"
                   "Accept-Encoding: identity\r\nConnection: close\r\n\r\n")
            s.sendall(req.encode("latin-1", "replace"))
            buf = bytearray()
            while len(buf) < MAX_BODY:
                s.settimeout(left())
                data = s.recv(65536)
                if not data:
                    break
                buf += data
    except socket.timeout:
        raise DialError(f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting '
                        "headers)") from None
    except OSError as e:
        raise DialError(f'Get "{url}": {_why(e)}') from None
    head, sep, body = bytes(buf).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(None, 2)
    if not sep or len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise DialError(f'Get "{url}": malformed HTTP response')
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers and headers["content-length"].isdigit():
        body = body[:int(headers["content-length"])]
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = _unchunk(body)
    return int(parts[1]), headers.get("location", ""), body.decode("utf-8", "replace")


def _unchunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, sep, data = data.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
        except ValueError:
            break
        if size == 0 or not sep:
            break
        out += data[:size]
        data = data[size + 2:]
    return bytes(out)
