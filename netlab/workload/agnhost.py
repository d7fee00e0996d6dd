"""What agnhost netexec answers, as pure functions of a request (no sockets): the HTTP endpoints and
the UDP commands of netlab's built-in server (netexec.py runs them for many pods in one process).

Endpoints (agnhost's behaviour, learnt from its documentation and source; deviations marked):

* `/`: `NOW: <time>`. (agnhost answers every path it has no handler for like `/`; netlab answers them
  404, so that a mistyped path shows.)
* `/hostname`, `/hostName`: the pod's hostname (the pod name).
* `/clientip`: `ip:port` of the peer.
* `/echo?msg=X[&code=N]`: X, with status N if given.
* `/header?key=K`: the value of request header K; without key, every header as JSON.
* `/healthz`: 200 (empty) while every socket of the pod is open, 412 otherwise (agnhost: while its UDP
  server runs, so it answers 412 with `--udp-port=-1`; netlab answers 200 there).
* `/readyz`: `ok` as /healthz; `shutting down` (503) during a graceful /exit.
* `/redirect?location=L[&code=N]`: a redirect to L (302 unless N).
* `/dial?request=R&protocol=http|udp&host=H&port=P&tries=N`: the pod itself sends R N times to H:P
  (HTTP GET /R, or R as a UDP datagram), from its own network namespace, and answers
  `{"errors":[...],"responses":[...]}` (see dial.py). H must be an IP address: there is no DNS.
* `/exit?code=N&timeout=D&wait=D`, `/shutdown`: the pod's "container" exits (see netexec.py).
* `/shell`, `/upload`: refused with 501: they would run commands / write files as root on the host.

UDP datagrams (first 2048 bytes, trimmed and lower-cased, as agnhost does): `hostname`, `clientip`,
`echo X` (answers X lower-cased, as agnhost does); anything else gets no answer.
"""

from __future__ import annotations

import json
import time
from http import HTTPStatus
from urllib.parse import parse_qs, urljoin

UDP_READ = 2048  # agnhost reads datagrams into a buffer of this size
MAX_TRIES = 100  # /dial tries netlab accepts per request (agnhost: unbounded; each may take 5 s)


class Response:
    __slots__ = ("status", "body", "headers", "close", "ctype")

    def __init__(self, status, body="", headers=(), close=False, ctype="text/plain; charset=utf-8"):
        self.status, self.body, self.headers, self.close, self.ctype = status, body, list(headers), close, ctype


class DialAction:
    """/dial: run by the server on a thread of its own inside the pod's netns."""

    __slots__ = ("protocol", "host", "port", "request", "tries")

    def __init__(self, protocol, host, port, request, tries):
        self.protocol, self.host, self.port, self.request, self.tries = protocol, host, port, request, tries


class ExitAction:
    """/exit and /shutdown: the pod's container exits with `code` after `wait` s, allowing `timeout` s
    for connections to finish (0: at once, without answering)."""

    __slots__ = ("code", "timeout", "wait")

    def __init__(self, code, timeout, wait):
        self.code, self.timeout, self.wait = code, timeout, wait


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"status code {status}"


def go_json(value) -> str:
    """JSON as Go's encoding/json writes it: no spaces, <, >, & and U+2028/9 escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def canonical_header(name: str) -> str:
    """Go's CanonicalMIMEHeaderKey: x-forwarded-for -> X-Forwarded-For."""
    if not name or any(c.isspace() or c == ":" for c in name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0,
                   "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration, in seconds ("1.5s", "300ms", "1h2m", "0"); ValueError if invalid."""
    s = text
    neg = s[:1] == "-"
    if s[:1] in "+-" and s:
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f"invalid duration {text!r}")
    total = 0.0
    while s:
        i = 0
        while i < len(s) and (s[i].isdigit() or s[i] == "."):
            i += 1
        num = s[:i]
        if not num or num == "." or num.count(".") > 1:
            raise ValueError(f"invalid duration {text!r}")
        s = s[i:]
        j = 0
        while j < len(s) and not (s[j].isdigit() or s[j] == "."):
            j += 1
        unit = s[:j]
        if unit not in _DURATION_UNITS:
            raise ValueError(f"unknown unit {unit!r} in duration {text!r}" if unit else
                             f"missing unit in duration {text!r}")
        s = s[j:]
        total += float(num) * _DURATION_UNITS[unit]
    return -total if neg else total


def _go_now(started: float) -> str:
    """time.Now() printed by Go's %v, with the monotonic reading since the pod's server started."""
    t = time.time()
    frac = f"{int(t % 1 * 1e9):09d}".rstrip("0")
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + (f".{frac}" if frac else "")
    return f"{stamp} +0000 UTC m=+{time.monotonic() - started:.9f}"


def _first(query: dict, key: str) -> str:
    return query.get(key, [""])[0]


class Pod:
    """What a handler needs of a pod (netexec.Pod provides it)."""

    name: str
    started: float
    healthy: bool
    exiting: bool


def handle(pod, method: str, path: str, query_string: str, headers: list[tuple[str, str]],
           peer: str):
    """Answer one HTTP request of `pod`: a Response, a DialAction or an ExitAction."""
    query = parse_qs(query_string, keep_blank_values=True)
    if path == "/":
        return Response(200, f"NOW: {_go_now(pod.started)}")
    if path in ("/hostname", "/hostName"):
        return Response(200, pod.name)
    if path == "/clientip":
        return Response(200, peer)
    if path == "/echo":
        status = _status_code(_first(query, "code"), 200)
        return status if isinstance(status, Response) else Response(status, _first(query, "msg"))
    if path == "/header":
        key = _first(query, "key")
        if key:
            want = canonical_header(key)
            return Response(200, next((v for n, v in headers if canonical_header(n) == want), ""))
        out: dict[str, list[str]] = {}
        for n, v in headers:
            if n.lower() != "host":  # Go keeps Host out of the header map
                out.setdefault(canonical_header(n), []).append(v)
        return Response(200, go_json(dict(sorted(out.items()))))
    if path == "/healthz":
        return Response(200 if pod.healthy else 412)
    if path == "/readyz":
        if pod.exiting:
            return Response(503, "shutting down")
        return Response(200, "ok") if pod.healthy else Response(412)
    if path == "/redirect":
        return _redirect(path, _first(query, "location"), _first(query, "code"), method)
    if path == "/dial":
        return _dial(query)
    if path == "/exit":
        return _exit(query)
    if path == "/shutdown":
        return ExitAction(0, 0.0, 0.0)
    if path in ("/shell", "/upload"):
        what = "run commands" if path == "/shell" else "write files"
        return Response(501, f"{path} is not implemented by netlab's built-in server: it would {what} as "
                             "root on the host; use `netlab exec POD -- COMMAND`\n")
    return Response(404, "404 page not found\n")


def _status_code(code: str, default: int) -> int | Response:
    """A `code` query argument as agnhost reads it (/echo, /redirect): empty means `default`; otherwise
    the status, or the answer agnhost gives to a bad one."""
    if not code:
        return default
    try:
        status = int(code)
    except ValueError:
        return Response(200, f"argument 'code' must be an integer or empty, got {json.dumps(code)}\n")
    if not 100 <= status <= 999:
        return Response(500, "invalid status code\n", close=True)
    return status


def _redirect(path: str, location: str, code: str, method: str) -> Response:
    status = _status_code(code, 302)
    if isinstance(status, Response):
        return status
    if "://" not in location.partition("?")[0]:
        location = urljoin(path, location)  # relative to the request's path, as Go's http.Redirect
    body = ""
    if method in ("GET", "HEAD"):
        esc = location.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;")
        body = f'<a href="{esc}">{reason(status)}</a>.\n\n'
    return Response(status, body, [("Location", location)], ctype="text/html; charset=utf-8")


def _dial(query: dict):
    tries_s = _first(query, "tries")
    tries = 1
    if tries_s:
        try:
            tries = int(tries_s)
        except ValueError:
            return Response(400, f"tries parameter is invalid. strconv.Atoi: parsing {json.dumps(tries_s)}: "
                                 "invalid syntax\n")
    request = _first(query, "request")
    if not request:
        return Response(400, "request parameter not specified. <nil>\n")
    if tries > MAX_TRIES:
        return Response(400, f"tries parameter is invalid: netlab allows at most {MAX_TRIES}\n")
    protocol = _first(query, "protocol").lower() or "http"
    if protocol == "sctp":
        return Response(400, "unsupported protocol. sctp (SCTP is not emulated by netlab)\n")
    if protocol not in ("http", "udp"):
        return Response(400, f"unsupported protocol. {_first(query, 'protocol')}\n")
    host, port_s = _first(query, "host"), _first(query, "port")
    try:
        port = _port(port_s)
        host = _host(host)
    except ValueError as e:
        return Response(400, f"host and/or port param are invalid. {e}\n")
    return DialAction(protocol, host, port, request, tries)


def _host(host: str) -> str:
    import ipaddress

    if host in ("", "localhost"):
        return "127.0.0.1"
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        raise ValueError(f"lookup {host}: netlab's built-in server dials IPv4 addresses only "
                         "(there is no DNS in the lab)") from None


def _port(port: str) -> int:
    if port == "":
        return 0
    if port.isdigit() and int(port) <= 65535:
        return int(port)
    import socket

    try:
        return socket.getservbyname(port)
    except OSError:
        raise ValueError(f"address {port}: unknown port") from None


def _exit(query: dict):
    values = {}
    for key, kind in (("timeout", "a valid golang duration"), ("wait", "a valid golang duration")):
        text = _first(query, key)
        try:
            values[key] = parse_duration(text) if text else 0.0
        except ValueError:
            return Response(200, f"argument '{key}' must be {kind} or empty, got {json.dumps(text)}\n")
    code_s = _first(query, "code")
    try:
        code = int(code_s) if code_s else 0
    except ValueError:
        return Response(200, f"argument 'code' must be an integer [0-127] or empty, got {json.dumps(code_s)}\n")
    return ExitAction(code & 0xFF, max(values["timeout"], 0.0), max(values["wait"], 0.0))


def command(pod_name: str, peer: str, data: bytes) -> str | None:
    """agnhost's UDP commands: the answer to a datagram, or None (agnhost answers nothing)."""
    text = data[:UDP_READ].decode("utf-8", "replace").strip().lower()
    if text == "hostname":
        return pod_name
    if text == "clientip":
        return peer
    if text.startswith("echo "):
        return text[5:]
    return None
