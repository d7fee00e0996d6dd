"""The process side of the kubelet's probes: one httpGet, tcpSocket or exec probe run as the kubelet
runs it, from the node's network namespace against the pod, giving (result, output). Facts from
kubernetes' pkg/probe/{http,tcp,exec} and pkg/kubelet/prober (read for facts, written anew).

httpGet: GET scheme://host:port/path (host: the pod IP unless given; a named port is the container's
port of that name); the probe's httpHeaders plus `User-Agent: kube-probe/<major.minor>` and
`Accept: */*` unless given (an empty Accept is dropped; a Host header sets the request's host); no
keep-alive, no gzip, HTTPS unverified; timeoutSeconds (default 1) covers the whole exchange.
Redirects are followed (10 at most) while they stay on the same host; a redirect elsewhere ends the
probe on that 3xx: success with the kubelet's warning `Probe terminated redirects, Response body: ...`
(`is_warning`). 200-399 is success (output: the body's first 10 KiB); another status is
`HTTP probe failed with statuscode: N`; a transport error is the Go client's text, e.g.
`Get "http://10.244.1.5:8080/healthz": dial tcp 10.244.1.5:8080: connect: connection refused`.
tcpSocket: a TCP connect to host (default the pod IP):port within the timeout. exec: the command in
the pod's network and UTS namespaces; exit 0 is success; output: stdout and stderr, the first 10 KiB;
a timeout gives the CRI's `command "sleep 5" timed out`. grpc raises ValueError (validation refuses
it first). A port that cannot be resolved is a failure with the kubelet's text, as a probe that errored.

setns(2) moves only the calling thread, so httpGet and tcpSocket probes run on long-lived worker
threads that entered the node's namespace (``NodeProbers``: a queue per node, up to `per_node`
threads started on demand), never on a process per probe. A worker re-enters a namespace that was
made again, and leaves when idle and its namespace is gone (it must not keep a deleted node's
namespace alive) or after `idle` seconds without work. A node namespace that does not exist gives
("failure", "netns NAME does not exist").
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
from queue import Empty, SimpleQueue
from typing import Callable
from urllib.parse import urljoin, urlsplit

from ..dataplane import nsenter, nsfs
from ..errors import KernelError
from ..output import VERSION

SUCCESS, FAILURE = "success", "failure"
HANDLERS = ("exec", "httpGet", "tcpSocket")
MAX_OUTPUT = 10 * 1024           # the kubelet reads at most 10 KiB of a body or a command's output
MAX_REDIRECTS = 10
REDIRECTS = (301, 302, 303, 307, 308)
USER_AGENT = "kube-probe/" + ".".join(VERSION.lstrip("v").split(".")[:2])
WARNING = "Probe terminated redirects"   # output of a success with a warning (the kubelet's probe.Warning)
# the kubelet's HTTPS probes do not verify the server's certificate (InsecureSkipVerify): a client context
# with no CA loaded (create_default_context reads the system's CA bundle, 50 to 150 ms of every start of a
# process that imports this module, the lab's control loop among them, for certificates never checked)
_TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
_TLS.check_hostname, _TLS.verify_mode = False, ssl.CERT_NONE


class Gone(Exception):
    """The node's network namespace does not exist."""


# ------------------------------------------------------------------ the pure part

def handler_of(probe: dict) -> str:
    """The probe's handler (exec, httpGet or tcpSocket); ValueError for grpc, none or several."""
    found = [h for h in (*HANDLERS, "grpc") if (probe or {}).get(h) is not None]
    if found == ["grpc"]:
        raise ValueError("probe handler grpc is not supported by netlab's prober; use httpGet, tcpSocket or exec")
    if len(found) != 1:
        raise ValueError(f"probe must have exactly one handler of exec, httpGet or tcpSocket, has {found or 'none'}")
    return found[0]


def resolve_port(port: int | str, container_ports: list[dict]) -> int:
    """A probe's port: a number, or the name of one of the container's ports (ValueError, with the
    kubelet's text, when there is no such port or it is out of range)."""
    if isinstance(port, str):
        named = next((p.get("containerPort") for p in container_ports or [] if p.get("name") == port), None)
        if named is None:
            raise ValueError(f"port {json.dumps(port)} not found")
        port = int(named)
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"invalid port number: {port}")
    return port


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def probe_url(http_get: dict, pod_ip: str, container_ports: list[dict]) -> str:
    """The probe's URL, as the kubelet prints it in its messages."""
    path, host = http_get.get("path") or "", http_get.get("host") or pod_ip
    path = "/" + path if path and not path.startswith("/") else path
    port = resolve_port(http_get.get("port"), container_ports)
    return f"{(http_get.get('scheme') or 'HTTP').lower()}://{_hostport(host, port)}{path}"


def probe_headers(http_get: dict) -> list[tuple[str, str]]:
    """The request's headers (Host excepted) in order: the probe's, then the kubelet's defaults."""
    given = [(h["name"], h.get("value", "")) for h in http_get.get("httpHeaders") or []]
    names = {n.lower() for n, _ in given}
    out = [(n, v) for n, v in given if n.lower() != "host" and not (n.lower() == "accept" and not v)]
    return out + [(n, v) for n, v in (("User-Agent", USER_AGENT), ("Accept", "*/*")) if n.lower() not in names]


def _go_errno(e: OSError) -> str:
    text = os.strerror(e.errno) if e.errno else str(e)
    return text[:1].lower() + text[1:]


# ------------------------------------------------------------------ runs in the node's namespace

def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def _get_once(url: str, headers: list[tuple[str, str]], host: str | None, deadline: float):
    """One GET: (status, Location, body) or a transport error's text (str)."""
    u = urlsplit(url)
    https = u.scheme == "https"
    port = u.port or (443 if https else 80)
    dial = f"dial tcp {_hostport(u.hostname, port)}"
    conn = (http.client.HTTPSConnection(u.hostname, port, timeout=_left(deadline), context=_TLS) if https
            else http.client.HTTPConnection(u.hostname, port, timeout=_left(deadline)))
    try:
        try:
            conn.connect()
        except socket.gaierror:
            return f"dial tcp: lookup {u.hostname}: no such host"
        except OSError as e:
            if isinstance(e, TimeoutError):
                raise
            return f"{dial}: connect: {_go_errno(e)}"
        sock = conn.sock
        local, remote = sock.getsockname(), sock.getpeername()
        try:
            conn.putrequest("GET", (u.path or "/") + (f"?{u.query}" if u.query else ""), skip_host=True,
                            skip_accept_encoding=True)
            conn.putheader("Host", host or u.netloc)
            for n, v in headers:
                conn.putheader(n, v)
            conn.putheader("Connection", "close")
            conn.endheaders()
            sock.settimeout(_left(deadline))
            resp = conn.getresponse()
        except http.client.RemoteDisconnected:
            return "EOF"
        except ConnectionResetError:
            return f"read tcp {_hostport(*local[:2])}->{_hostport(*remote[:2])}: read: connection reset by peer"
        except http.client.HTTPException as e:
            return f"net/http: HTTP/1.x transport connection broken: malformed HTTP response {json.dumps(str(e))}"
        try:
            sock.settimeout(_left(deadline))
            body = resp.read(MAX_OUTPUT)
        except (TimeoutError, OSError, http.client.HTTPException):
            body = b""   # the status decides; a body cut short is no failure
        return resp.status, resp.getheader("Location"), body.decode("utf-8", "replace")
    finally:
        conn.close()


def http_probe(url: str, headers: list[tuple[str, str]], timeout: float, host: str | None = None) -> tuple[str, str]:
    """The kubelet's HTTP probe of `url`, from the calling thread's namespace."""
    deadline = time.monotonic() + timeout
    first = urlsplit(url).hostname
    for hop in range(MAX_REDIRECTS + 1):
        try:
            got = _get_once(url, headers, host, deadline)
        except TimeoutError:
            return FAILURE, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
        if isinstance(got, str):
            return FAILURE, f'Get "{url}": {got}'
        status, location, body = got
        if status not in REDIRECTS or not location:
            break
        target = urljoin(url, location)
        if urlsplit(target).hostname != first:
            break       # another host: not followed, the 3xx itself is the answer
        if hop == MAX_REDIRECTS:
            return FAILURE, f'Get "{target}": stopped after {MAX_REDIRECTS} redirects'
        host = host if "://" not in location else None   # a Host header survives relative redirects only
        url = target
    if not 200 <= status < 400:
        return FAILURE, f"HTTP probe failed with statuscode: {status}"
    if status >= 300:
        return SUCCESS, f"{WARNING}, Response body: {body}"
    return SUCCESS, body


def tcp_probe(host: str, port: int, timeout: float) -> tuple[str, str]:
    """The kubelet's TCP probe: connect within `timeout`, from the calling thread's namespace."""
    dial = f"dial tcp {_hostport(host, port)}"
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except TimeoutError:
        return FAILURE, f"{dial}: i/o timeout"
    except socket.gaierror:
        return FAILURE, f"dial tcp: lookup {host}: no such host"
    except OSError as e:
        return FAILURE, f"{dial}: connect: {_go_errno(e)}"
    return SUCCESS, ""


def exec_probe(argv: list[str], pod_netns: str, uts_path: str | None, timeout: float,
               join: dict | None = None) -> tuple[str, str]:
    """The kubelet's exec probe: argv in the container, as the runtime's exec runs it: in the namespaces
    and with the credentials of the container's process `join` (its record) if it runs, else in a fresh
    default sandbox in the pod's namespaces (netlab/dataplane/sandbox.py; a process of its own)."""
    from ..dataplane import procs, sandbox
    try:
        status = sandbox.read_status(int(join["pid"])) if join and procs.alive(join) else None
        if status:
            cmd = sandbox.join_argv(int(join["pid"]), status, argv)  # type: ignore[index]
        else:
            cmd = nsenter.enter(pod_netns, sandbox.launch_argv(sandbox.Sandbox(), argv), uts_path,
                                missing=f"netns {pod_netns} does not exist")
    except KernelError as e:
        return FAILURE, str(e)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)     # the command and whatever it started
        proc.communicate()
        return FAILURE, f"command {json.dumps(' '.join(argv), ensure_ascii=False)} timed out"
    text = out[:MAX_OUTPUT].decode("utf-8", "replace")
    return (SUCCESS if proc.returncode == 0 else FAILURE), text


def is_warning(result: str, output: str) -> bool:
    """Whether a success is the kubelet's probe.Warning (a redirect to another host it did not follow)."""
    return result == SUCCESS and output.startswith(WARNING + ",")


# ------------------------------------------------------------------ workers in the nodes' namespaces

class _Node:
    def __init__(self):
        self.jobs, self.threads, self.pending, self.workers, self.busy = SimpleQueue(), [], 0, 0, 0


class NodeProbers:
    """Long-lived worker threads inside the nodes' network namespaces, fed through a queue per node:
    `submit(node_netns, fn)` runs fn() on a thread that has entered that namespace."""

    def __init__(self, per_node: int = 4, idle: float = 30.0, poll: float = 1.0, exec_workers: int = 16):
        self.per_node, self.idle, self.poll = per_node, idle, poll
        self._nodes: dict[str, _Node] = {}
        self._lock, self._closed = threading.Lock(), False
        self._exec = cf.ThreadPoolExecutor(exec_workers, thread_name_prefix="netlab-probe-exec")

    def submit(self, node_netns: str, fn: Callable[[], object]) -> cf.Future:
        """fn() on a worker in `node_netns`; the future fails with `Gone` if that namespace does not exist."""
        fut: cf.Future = cf.Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("NodeProbers is closed")
            node = self._nodes.setdefault(node_netns, _Node())
            node.jobs.put((fut, fn))
            node.pending += 1
            if node.pending > node.workers - node.busy and node.workers < self.per_node:
                node.workers += 1
                t = threading.Thread(target=self._work, args=(node_netns, node), daemon=True,
                                     name=f"netlab-probe {node_netns}")
                node.threads.append(t)
                t.start()
        return fut

    def submit_exec(self, fn: Callable[[], object]) -> cf.Future:
        return self._exec.submit(fn)

    def _quit(self, node: _Node, force: bool = False) -> bool:
        """Called with the lock held: a worker leaves only when nothing waits (so no job is stranded)."""
        if node.pending and not (force or self._closed):
            return False
        node.workers -= 1
        node.threads.remove(threading.current_thread())
        return True

    def _work(self, name: str, node: _Node) -> None:
        path = nsfs.netns_path(name)
        entered, last = None, time.monotonic()
        while True:
            try:
                job = node.jobs.get(timeout=self.poll)
            except Empty:
                stale = entered is not None and nsfs.ns_inode(path) != entered
                with self._lock:
                    if (self._closed or stale or time.monotonic() - last > self.idle) and self._quit(node):
                        return
                continue
            with self._lock:
                node.pending -= 1
                if job is None and self._quit(node, force=True):
                    return
                node.busy += 1
            fut, fn = job
            try:
                if fut.set_running_or_notify_cancel():
                    key = nsfs.ns_inode(path) if nsfs.is_ns_file(path) else None
                    if key is None:
                        fut.set_exception(Gone(f"netns {name} does not exist"))
                        continue
                    if key != entered:
                        nsfs.enter_netns_here(path)   # the first job, or the namespace was made again
                        entered = key
                    fut.set_result(fn())
            except BaseException as e:  # noqa: BLE001 - handed to the caller through the future
                if not fut.done():
                    fut.set_exception(e)
            finally:
                last = time.monotonic()
                with self._lock:
                    node.busy -= 1

    def release(self, node_netns: str, wait: float = 5.0) -> None:
        """Stop the workers of one node (e.g. before its namespace is deleted) and wait for them."""
        with self._lock:
            node = self._nodes.pop(node_netns, None)
            if node is None:
                return
            threads = list(node.threads)
            for _ in threads:
                node.jobs.put(None)
                node.pending += 1
        for t in threads:
            t.join(wait)

    def close(self, wait: float = 5.0) -> None:
        """Stop every worker; queued probes still run first (each ends within its own timeout)."""
        with self._lock:
            self._closed = True
            names = list(self._nodes)
        for n in names:
            self.release(n, wait)
        self._exec.shutdown(wait=True)

    def workers(self, node_netns: str) -> int:
        """How many worker threads `node_netns` has now."""
        with self._lock:
            return self._nodes[node_netns].workers if node_netns in self._nodes else 0


_default: NodeProbers | None = None
_default_lock = threading.Lock()


def default_probers() -> NodeProbers:
    """The module's own NodeProbers (made again after close)."""
    global _default
    with _default_lock:
        if _default is None or _default._closed:
            _default = NodeProbers()
        return _default


# ------------------------------------------------------------------ the entry points

def submit_probe(probe: dict, pod_ip: str, pod_netns: str, container_ports: list[dict], node_netns: str,
                 uts_path: str | None = None, *, probers: NodeProbers | None = None,
                 join: dict | None = None) -> cf.Future:
    """`run_probe` without waiting: a Future of (result, output). ValueError at once for a bad handler."""
    kind = handler_of(probe)
    timeout = float(probe.get("timeoutSeconds") or 1)
    pool = probers or default_probers()
    spec = probe[kind]
    if kind == "exec":
        argv = list(spec.get("command") or [])
        if not argv:
            raise ValueError("probe handler exec has no command")
        return pool.submit_exec(lambda: exec_probe(argv, pod_netns, uts_path, timeout, join))
    try:
        if kind == "httpGet":
            url, headers = probe_url(spec, pod_ip, container_ports), probe_headers(spec)
            host = next((h.get("value") for h in spec.get("httpHeaders") or [] if h["name"].lower() == "host"), None)
            fn = lambda: http_probe(url, headers, timeout, host)  # noqa: E731
        else:
            host, port = spec.get("host") or pod_ip, resolve_port(spec.get("port"), container_ports)
            fn = lambda: tcp_probe(host, port, timeout)  # noqa: E731
    except ValueError as e:          # the kubelet: the probe errored, which counts as a failure
        done: cf.Future = cf.Future()
        done.set_result((FAILURE, str(e)))
        return done
    outer: cf.Future = cf.Future()

    def finish(f: cf.Future) -> None:
        e = f.exception()
        outer.set_result((FAILURE, str(e)) if isinstance(e, Gone) else f.result() if e is None
                         else (FAILURE, f"probe errored: {e}"))
    pool.submit(node_netns, fn).add_done_callback(finish)
    return outer


def run_probe(probe: dict, pod_ip: str, pod_netns: str, container_ports: list[dict], node_netns: str,
              uts_path: str | None = None, *, probers: NodeProbers | None = None) -> tuple[str, str]:
    """Run one probe as the kubelet does: ("success" | "failure", output). httpGet and tcpSocket go
    from the node's namespace `node_netns` to the pod; exec runs in the pod's namespaces."""
    fut = submit_probe(probe, pod_ip, pod_netns, container_ports, node_netns, uts_path, probers=probers)
    timeout = float(probe.get("timeoutSeconds") or 1)
    try:
        return fut.result(timeout=2 * timeout + 30)   # each probe ends within its timeout; this is a backstop
    except cf.TimeoutError:
        return FAILURE, f"probe did not finish within {2 * timeout + 30:g}s (node {node_netns} overloaded)"
