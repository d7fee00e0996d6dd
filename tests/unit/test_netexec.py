"""Tests of the built-in multi-pod netexec server (netlab.workload.netexec).

The server runs as a subprocess.  Pods point their "netns" at
/proc/self/ns/net, i.e. the server's own namespace, which it recognises and
does not switch into, so these tests need no privileges.  One test, marked
``root``, uses real namespaces and is skipped otherwise.
"""

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SELF_NETNS = "/proc/self/ns/net"


_handed_out = set()


def free_port():
    """A port currently free for both TCP and UDP on 0.0.0.0.

    Never the same port twice in a test session, so that ports picked one
    after the other for one test are distinct.
    """
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("0.0.0.0", 0))
            port = t.getsockname()[1]
            if port in _handed_out:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("0.0.0.0", port))
                except OSError:
                    continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port")


def pod(name, ports, logdir, netns=SELF_NETNS, key=None):
    return {
        "key": key or f"default/{name}",
        "name": name,
        "netns": netns,
        "ports": [{"port": p, "protocol": proto} for p, proto in ports],
        "log": str(logdir / f"{name}.log"),
    }


class NetexecProc:
    def __init__(self, tmp_path):
        self.dir = tmp_path
        self.config = tmp_path / "config.json"
        self.pidfile = tmp_path / "run" / "netexec.pid"
        self.logdir = tmp_path / "logs"  # created by the server (0700)
        self.proc = None
        self.stderr_path = tmp_path / "stderr"
        self._stderr = None

    def write_config(self, pods):
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pods": pods}))
        os.replace(tmp, self.config)

    def start(self, pods, timeout=10.0):
        self.write_config(pods)
        self.pidfile.parent.mkdir(exist_ok=True)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "netlab.workload.netexec",
             "--config", str(self.config), "--pidfile", str(self.pidfile)],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=self._stderr)
        deadline = time.monotonic() + timeout
        while not self.pidfile.exists():
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited early: {self.stderr()}")
            if time.monotonic() > deadline:
                raise AssertionError("server did not become ready")
            time.sleep(0.01)
        return self

    def pidfile_fields(self):
        pid, generation = self.pidfile.read_text().split()
        return int(pid), int(generation)

    def reload(self, pods, timeout=10.0):
        """Rewrite the config, send SIGHUP and wait for the new generation."""
        _, generation = self.pidfile_fields()
        self.write_config(pods)
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.pidfile_fields()[1] > generation:
                    return generation + 1
            except (OSError, ValueError):
                pass  # between writes, never partially written though
            assert self.proc.poll() is None, self.stderr()
            assert time.monotonic() < deadline, "reload not applied"
            time.sleep(0.01)

    def stderr(self):
        try:
            return self.stderr_path.read_text()
        except OSError:
            return ""

    def log(self, name):
        return (self.logdir / f"{name}.log").read_text()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self._stderr is not None:
            self._stderr.close()


@pytest.fixture
def netexec(tmp_path):
    """Start a server (one per test) for a list of pods; killed at teardown.

    Pods should log to tmp_path / "logs" (NetexecProc.log reads there).
    """
    servers = []

    def start(pods):
        assert not servers, "one server per test"
        servers.append(NetexecProc(tmp_path))
        return servers[0].start(pods)

    yield start
    for server in servers:
        server.stop()


# -- client helpers ---------------------------------------------------------


def recv_all(sock):
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def read_http_response(sock, buf=b""):
    """Read one response from ``sock``; returns (status, headers, body, rest)."""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        assert data, f"connection closed mid-response: {buf!r}"
        buf += data
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip()
               for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    while len(buf) < length:
        data = sock.recv(65536)
        assert data
        buf += data
    return status, headers, buf[:length].decode(), buf[length:]


def http_get(port, target, host="127.0.0.1"):
    """GET with Connection: close; returns (status, headers, body, local addr)."""
    with socket.create_connection((host, port), timeout=5) as s:
        local = s.getsockname()
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        status, headers, body, _ = read_http_response(s)
        return status, headers, body, local


def tcp_lines(port, payload):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        local = s.getsockname()
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        return recv_all(s).decode(), local


def udp_request(port, payload):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        s.send(payload)
        data = s.recv(65536)
        return data.decode(), s.getsockname()


def udp_silent(port, payload, wait=0.3):
    """No answer to `payload` within `wait` s."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(wait)
        s.connect(("127.0.0.1", port))
        s.send(payload)
        try:
            s.recv(65536)
        except (socket.timeout, ConnectionRefusedError):  # no answer, or no socket any more
            return True
        return False


def refused(port, within: float = 2.0):
    """True once a connection to the port is refused; the server closes a pod's listeners on its next
    loop turn after answering, so a connect right after the answer may still be accepted."""
    deadline = time.monotonic() + within
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        except ConnectionRefusedError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


# -- tests --------------------------------------------------------------------


def test_pidfile_is_readiness_signal(netexec, tmp_path):
    tcp = free_port()
    srv = netexec([pod("web-1", [(tcp, "TCP")], tmp_path / "logs")])
    pid, generation = srv.pidfile_fields()
    assert pid == srv.proc.pid
    assert generation == 0
    # Listening as soon as the pidfile exists: no retry needed.
    assert http_get(tcp, "/healthz")[:3:2] == (200, "")


def test_http_endpoints(netexec, tmp_path):
    tcp = free_port()
    srv = netexec([pod("web-1", [(tcp, "TCP")], tmp_path / "logs")])

    status, headers, body, _ = http_get(tcp, "/hostname")
    assert (status, body) == (200, "web-1")
    assert headers["content-type"].startswith("text/plain")
    assert headers["content-length"] == "5"

    status, _, body, _ = http_get(tcp, "/")
    assert status == 200 and re.fullmatch(r"NOW: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \+0000 UTC m=\+\d+\.\d{9}", body), body
    assert http_get(tcp, "/healthz")[:3:2] == (200, "")
    assert http_get(tcp, "/readyz")[:3:2] == (200, "ok")

    status, _, body, local = http_get(tcp, "/clientip")
    assert status == 200
    assert body == f"{local[0]}:{local[1]}"

    assert http_get(tcp, "/echo?msg=hello%20world")[:3:2] == (200, "hello world")
    assert http_get(tcp, "/echo?msg=a+b&x=1")[:3:2] == (200, "a b")
    assert http_get(tcp, "/echo")[:3:2] == (200, "")

    assert http_get(tcp, "/nope")[0] == 404
    assert http_get(tcp, "/hostname/x")[0] == 404
    assert srv.proc.poll() is None


def test_http_keep_alive_and_pipelining(netexec, tmp_path):
    tcp = free_port()
    netexec([pod("web-1", [(tcp, "TCP")], tmp_path / "logs")])
    with socket.create_connection(("127.0.0.1", tcp), timeout=5) as s:
        s.sendall(b"GET /hostname HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body, rest = read_http_response(s)
        assert (status, body, headers["connection"]) == (200, "web-1", "keep-alive")
        # Two pipelined requests, the second one with a body and HEAD.
        s.sendall(b"POST /echo?msg=one HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                  b"HEAD /hostname HTTP/1.1\r\n\r\n"
                  b"GET /echo?msg=last HTTP/1.0\r\n\r\n")
        status, _, body, rest = read_http_response(s, rest)
        assert (status, body) == (200, "one")
        # HEAD: Content-Length of the body that would be sent, no body.
        while b"\r\n\r\n" not in rest:
            rest += s.recv(65536)
        head, _, rest = rest.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and b"Content-Length: 5" in head
        # HTTP/1.0 without keep-alive: answered, then closed.
        status, headers, body, rest = read_http_response(s, rest)
        assert (status, body, headers["connection"]) == (200, "last", "close")
        assert rest + recv_all(s) == b""


def test_tcp_line_protocol(netexec, tmp_path):
    tcp = free_port()
    netexec([pod("web-1", [(tcp, "TCP")], tmp_path / "logs")])
    out, local = tcp_lines(tcp, b"hostname\nclientip\r\necho hello world\nbogus\necho last")
    assert out == f"web-1\n{local[0]}:{local[1]}\nhello world\nunknown command\nlast\n"


def test_udp(netexec, tmp_path):
    udp = free_port()
    srv = netexec([pod("web-1", [(udp, "UDP")], tmp_path / "logs")])
    assert udp_request(udp, b"hostname")[0] == "web-1"
    assert udp_request(udp, b"hostname\n")[0] == "web-1"
    assert udp_request(udp, b"echo hello world\r\n")[0] == "hello world"
    data, local = udp_request(udp, b"clientip")
    assert data == f"{local[0]}:{local[1]}"
    # as agnhost: no answer to what is not a command
    assert udp_silent(udp, b"what") and udp_silent(udp, b"\xff\x00garbage") and udp_silent(udp, b"echo")
    # UDP only: nothing listens on TCP.
    assert refused(udp)
    assert srv.proc.poll() is None


def test_two_pods_one_process(netexec, tmp_path):
    a, b = free_port(), free_port()
    logs = tmp_path / "logs"
    netexec([pod("web-1", [(a, "TCP"), (a, "UDP")], logs),
             pod("web-2", [(b, "TCP"), (b, "UDP")], logs)])
    assert http_get(a, "/hostname")[2] == "web-1"
    assert http_get(b, "/hostname")[2] == "web-2"
    assert udp_request(a, b"hostname")[0] == "web-1"
    assert udp_request(b, b"hostname")[0] == "web-2"


def test_broken_pod_does_not_stop_others(netexec, tmp_path):
    a, b, c = free_port(), free_port(), free_port()
    blocker = socket.socket()
    blocker.bind(("0.0.0.0", c))  # makes the bind of pod "busy" fail
    blocker.listen()
    try:
        srv = netexec([
            pod("gone", [(b, "TCP")], tmp_path / "logs", netns="/nonexistent/netns"),
            pod("busy", [(c, "TCP"), (b, "UDP")], tmp_path / "logs"),
            pod("web-1", [(a, "TCP"), (a, "SCTP")], tmp_path / "logs"),
        ])
        assert http_get(a, "/hostname")[2] == "web-1"
        assert udp_request(b, b"hostname")[0] == "busy"  # its other port works
        assert refused(b)
        assert "cannot open netns /nonexistent/netns" in srv.log("gone")
        assert f"cannot listen on TCP 0.0.0.0:{c}" in srv.log("busy")
        assert "SCTP" in srv.log("web-1")
        err = srv.stderr()
        assert "pod default/gone" in err and "pod default/busy" in err
    finally:
        blocker.close()


def test_sighup_reload(netexec, tmp_path):
    a, b, c = free_port(), free_port(), free_port()
    logs = tmp_path / "logs"
    web1 = pod("web-1", [(a, "TCP")], logs)
    web2 = pod("web-2", [(b, "TCP"), (b, "UDP")], logs)
    srv = netexec([web1, web2])

    # A keep-alive connection to the pod that stays.
    keep = socket.create_connection(("127.0.0.1", b), timeout=5)
    keep.sendall(b"GET /hostname HTTP/1.1\r\n\r\n")
    assert read_http_response(keep)[2] == "web-2"
    # And one to the pod that goes away.
    doomed = socket.create_connection(("127.0.0.1", a), timeout=5)
    doomed.sendall(b"GET /hostname HTTP/1.1\r\n\r\n")
    assert read_http_response(doomed)[2] == "web-1"

    web3 = pod("web-3", [(c, "TCP")], logs)
    assert srv.reload([web2, web3]) == 1
    assert srv.pidfile_fields() == (srv.proc.pid, 1)

    assert refused(a)
    assert recv_all(doomed) == b""  # its accepted connection was closed too
    doomed.close()
    assert http_get(c, "/hostname")[2] == "web-3"
    keep.sendall(b"GET /hostname HTTP/1.1\r\n\r\n")
    assert read_http_response(keep)[2] == "web-2"  # untouched
    assert udp_request(b, b"hostname")[0] == "web-2"
    assert "stopped (removed from config" in srv.log("web-1")

    # Renaming a pod keeps its sockets; changing its ports reopens them.
    web2_renamed = dict(web2, name="web-2b")
    web3_moved = dict(web3, ports=[{"port": a, "protocol": "TCP"}])
    assert srv.reload([web2_renamed, web3_moved]) == 2
    keep.sendall(b"GET /hostname HTTP/1.1\r\n\r\n")
    assert read_http_response(keep)[2] == "web-2b"
    keep.close()
    assert refused(c)
    assert http_get(a, "/hostname")[2] == "web-3"

    # A config that cannot be parsed is not applied.
    srv.config.write_text("{not json")
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "reload not applied" not in srv.stderr() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "reload not applied" in srv.stderr()
    assert srv.pidfile_fields()[1] == 2
    assert http_get(a, "/hostname")[2] == "web-3"

    # Removing everything, then adding back.
    assert srv.reload([]) == 3
    assert refused(a) and refused(b)
    assert srv.reload([web1]) == 4
    assert http_get(a, "/hostname")[2] == "web-1"


def test_garbage_clients_do_not_crash(netexec, tmp_path):
    tcp = free_port()
    srv = netexec([pod("web-1", [(tcp, "TCP"), (tcp, "UDP")], tmp_path / "logs")])

    # Random bytes, then an abrupt close.
    with socket.create_connection(("127.0.0.1", tcp), timeout=5) as s:
        s.sendall(os.urandom(5000))
    # Disconnect in the middle of an HTTP request.
    with socket.create_connection(("127.0.0.1", tcp), timeout=5) as s:
        s.sendall(b"GET /hostname HTTP/1.1\r\nHost: x")
    # Reset (RST) with a request pending.
    s = socket.create_connection(("127.0.0.1", tcp), timeout=5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
    s.sendall(b"GET /host")
    s.close()
    # A malformed request line, an endless header, an oversized body.
    assert http_get(tcp, "/a b c")[0] == 400
    with socket.create_connection(("127.0.0.1", tcp), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nX: " + b"a" * 100_000)
        assert read_http_response(s)[0] == 431
    with socket.create_connection(("127.0.0.1", tcp), timeout=5) as s:
        s.sendall(b"POST / HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n")
        assert read_http_response(s)[0] == 413
    with socket.create_connection(("127.0.0.1", tcp), timeout=5) as s:
        s.sendall(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        assert read_http_response(s)[0] == 501
    with socket.create_connection(("127.0.0.1", tcp), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n")
        assert read_http_response(s)[0] == 400
    # A line protocol client that never sends a newline gets cut off.
    with socket.create_connection(("127.0.0.1", tcp), timeout=5) as s:
        try:
            s.sendall(b"x" * 200_000)
        except (ConnectionResetError, BrokenPipeError):
            pass
        try:
            assert recv_all(s) == b""
        except ConnectionResetError:
            pass
    # A client that sends many requests but never reads (output backpressure).
    hog = socket.create_connection(("127.0.0.1", tcp), timeout=5)
    hog.setblocking(False)
    try:
        for _ in range(2000):
            hog.send(b"GET /hostname HTTP/1.1\r\n\r\n" * 50)
    except (BlockingIOError, ConnectionResetError, BrokenPipeError):
        pass
    assert udp_silent(tcp, b"\x00" + os.urandom(1000))  # not a command: no answer, as agnhost

    assert http_get(tcp, "/hostname")[2] == "web-1"
    assert udp_request(tcp, b"hostname")[0] == "web-1"
    hog.close()
    assert http_get(tcp, "/hostname")[2] == "web-1"
    assert srv.proc.poll() is None
    assert "Traceback" not in srv.stderr()


def test_logs(netexec, tmp_path):
    tcp = free_port()
    srv = netexec([pod("web-1", [(tcp, "TCP"), (tcp, "UDP")], tmp_path / "logs")])
    http_get(tcp, "/echo?msg=logged")
    tcp_lines(tcp, b"hostname\n")
    udp_request(tcp, b"echo via-udp")
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(timeout=10) == 0

    path = srv.logdir / "web-1.log"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(srv.logdir.stat().st_mode) == 0o700
    lines = path.read_text().splitlines()
    assert any(f"listening on TCP 0.0.0.0:{tcp}" in line for line in lines)
    assert any(f"listening on UDP 0.0.0.0:{tcp}" in line for line in lines)
    assert any(" HTTP 127.0.0.1:" in line and "GET /echo?msg=logged 200" in line
               for line in lines)
    assert any(" TCP 127.0.0.1:" in line and line.endswith(" hostname") for line in lines)
    assert any(" UDP 127.0.0.1:" in line and line.endswith(" echo via-udp") for line in lines)
    assert "stopped" in lines[-1]
    assert all(line[:4].isdigit() and line[23] == "Z" for line in lines)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_zero(netexec, tmp_path, sig):
    tcp = free_port()
    srv = netexec([pod("web-1", [(tcp, "TCP")], tmp_path / "logs")])
    idle = socket.create_connection(("127.0.0.1", tcp), timeout=5)
    # One answered keep-alive request proves the server has accepted this
    # connection; a connection still in the listen backlog when the process
    # exits is reset by the kernel, which is not what this test is about.
    idle.sendall(b"GET /hostname HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, body, rest = read_http_response(idle)
    assert (status, body, rest) == (200, "web-1", b"")
    srv.proc.send_signal(sig)
    assert srv.proc.wait(timeout=10) == 0
    assert recv_all(idle) == b""
    idle.close()
    assert refused(tcp)
    assert not srv.pidfile.exists()


def test_bad_config_fails_fast(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text("[]")
    result = subprocess.run(
        [sys.executable, "-m", "netlab.workload.netexec", "--config", str(cfg),
         "--pidfile", str(tmp_path / "pid")],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "'pods' list" in result.stderr
    assert not (tmp_path / "pid").exists()


def test_many_pods(netexec, tmp_path):
    ports = [free_port() for _ in range(100)]
    srv = netexec([pod(f"web-{i}", [(p, "TCP"), (p, "UDP")], tmp_path / "logs")
                   for i, p in enumerate(ports)])
    for i, p in enumerate(ports):
        assert http_get(p, "/hostname")[2] == f"web-{i}"
    assert udp_request(ports[-1], b"hostname")[0] == "web-99"
    assert srv.proc.poll() is None


def test_imports_only_stdlib():
    code = ("import sys; import netlab.workload.netexec; "
            "print(sorted(m for m in sys.modules if m.startswith('netlab')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.stdout.strip() == ("['netlab', 'netlab.workload', 'netlab.workload.agnhost', "
                                  "'netlab.workload.apps', 'netlab.workload.conns', 'netlab.workload.netexec', "
                                  "'netlab.workload.podconf']")


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                    reason="needs root and iproute2")
def test_real_network_namespaces(netexec, tmp_path):
    names = [f"nxt{uuid.uuid4().hex[:8]}" for _ in range(2)]
    try:
        for name in names:
            subprocess.run(["ip", "netns", "add", name], check=True)
            subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        # Same port in both namespaces, plus one in the test's own netns.
        host_port = free_port()
        srv = netexec([pod("pod-a", [(8080, "TCP"), (8081, "UDP")], tmp_path / "logs",
                           netns=f"/run/netns/{names[0]}"),
                       pod("pod-b", [(8080, "TCP")], tmp_path / "logs",
                           netns=f"/run/netns/{names[1]}"),
                       pod("host", [(host_port, "TCP")], tmp_path / "logs")])

        def in_ns(name, code):
            return subprocess.run(["ip", "netns", "exec", name, sys.executable, "-c", code],
                                  capture_output=True, text=True, check=True,
                                  timeout=30).stdout

        get = ("import socket; s = socket.create_connection(('127.0.0.1', 8080), 5); "
               "s.sendall(b'hostname\\n'); s.shutdown(1); print(s.recv(100).decode(), end='')")
        assert in_ns(names[0], get) == "pod-a\n"
        assert in_ns(names[1], get) == "pod-b\n"
        udp = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
               "s.settimeout(5); s.sendto(b'hostname', ('127.0.0.1', 8081)); "
               "print(s.recv(100).decode(), end='')")
        assert in_ns(names[0], udp) == "pod-a"
        assert http_get(host_port, "/hostname")[2] == "host"

        # Deleting and re-creating a namespace under the same name is noticed
        # on reload: the pod's sockets move to the new namespace.
        subprocess.run(["ip", "netns", "del", names[1]], check=True)
        subprocess.run(["ip", "netns", "add", names[1]], check=True)
        subprocess.run(["ip", "-n", names[1], "link", "set", "lo", "up"], check=True)
        srv.reload(json.loads(srv.config.read_text())["pods"])
        assert in_ns(names[1], get) == "pod-b\n"
        assert "netns was recreated" in srv.log("pod-b")
    finally:
        for name in names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


# -- agnhost netexec's command line, read as Go's flag package reads it ---------------------------

from netlab.workload import agnhost, goflags  # noqa: E402

FLAGS = {"n": (goflags.INT, 1), "s": (goflags.STRING, ""), "b": (goflags.BOOL, False)}


@pytest.mark.parametrize("argv, values, rest", [
    ([], {}, []),
    (["-n", "5"], {"n": 5}, []),
    (["--n", "5"], {"n": 5}, []),
    (["-n=5"], {"n": 5}, []),
    (["--n=5"], {"n": 5}, []),
    (["--n", "-1"], {"n": -1}, []),              # the next word is the value, whatever it looks like
    (["--s", "--b"], {"s": "--b"}, []),
    (["--s="], {"s": ""}, []),
    (["--s=a=b"], {"s": "a=b"}, []),
    (["-b"], {"b": True}, []),
    (["-b=false"], {"b": False}, []),
    (["-b", "false"], {"b": True}, ["false"]),   # a boolean takes a value only with =
    (["-b=T", "-n=0x10"], {"b": True, "n": 16}, []),
    (["-n=1", "-n=2"], {"n": 2}, []),            # the last one wins
    (["--", "-n=2"], {}, ["-n=2"]),
    (["x", "-n=2"], {}, ["x", "-n=2"]),          # parsing stops at the first non-flag
    (["-", "-n=2"], {}, ["-", "-n=2"]),
    (["-n=017", "-s", "x", "y"], {"n": 15, "s": "x"}, ["y"]),
    (["-n=1_000"], {"n": 1000}, []),
    (["-n=+7"], {"n": 7}, []),
])
def test_go_flag_parsing(argv, values, rest):
    got, got_rest = goflags.parse(argv, FLAGS)
    assert got == {**{"n": 1, "s": "", "b": False}, **values}
    assert got_rest == rest


@pytest.mark.parametrize("argv, error", [
    (["-x"], "flag provided but not defined: -x"),
    (["--x=1"], "flag provided but not defined: -x"),
    (["-n"], "flag needs an argument: -n"),
    (["-n", "abc"], 'invalid value "abc" for flag -n: parse error'),
    (["-n=08"], 'invalid value "08" for flag -n: parse error'),
    (["-n=1__0"], 'invalid value "1__0" for flag -n: parse error'),
    (["-n=9223372036854775808"], "value out of range"),
    (["-b=maybe"], 'invalid boolean value "maybe" for -b'),
    (["---n"], "bad flag syntax: ---n"),
    (["-=1"], "bad flag syntax: -=1"),
    (["-help"], "-help asks for the usage"),
])
def test_go_flag_errors(argv, error):
    with pytest.raises(goflags.FlagError) as e:
        goflags.parse(argv, FLAGS)
    assert error in str(e.value)


@pytest.mark.parametrize("argv, ports", [
    (["netexec"], [(8080, "TCP"), (8081, "UDP")]),
    (["netexec", "--http-port", "80"], [(80, "TCP"), (8081, "UDP")]),
    (["/agnhost", "netexec", "-http-port=80", "--udp-port", "-1"], [(80, "TCP")]),
    (["agnhost", "netexec", "--udp-port=9000", "--delay-shutdown", "5"], [(8080, "TCP"), (9000, "UDP")]),
    (["netexec", "--sctp-port=-1", "--tls-cert-file="], [(8080, "TCP"), (8081, "UDP")]),
    (["serve-hostname", "--port", "80"], None),
    (["/agnhost"], None),
])
def test_netexec_ports(argv, ports):
    assert goflags.netexec_ports(argv) == ports


@pytest.mark.parametrize("argv, error", [
    (["netexec", "--bogus"], "flag provided but not defined: -bogus"),
    (["netexec", "--http-port"], "flag needs an argument: -http-port"),
    (["netexec", "--http-port", "0"], "--http-port=0 is not a port"),
    (["netexec", "--udp-port=70000"], "--udp-port=70000 is not a port"),
    (["netexec", "--sctp-port=9000"], "SCTP is not emulated"),
    (["netexec", "--tls-cert-file=/localhost.crt"], "HTTPS is not emulated"),
    (["netexec", "--http-override=/hostname"], "--http-override=/hostname: is not emulated"),
    (["netexec", "--udp-listen-addresses=127.0.0.1"], "listens on every address"),
    (["netexec", "80"], 'netexec takes no arguments, got "80"'),
])
def test_netexec_refused_args(argv, error):
    with pytest.raises(goflags.FlagError) as e:
        goflags.netexec_ports(argv)
    assert error in str(e.value)


def _deployment(args):
    import yaml

    return yaml.safe_dump({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                           "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                               "metadata": {"labels": {"app": "web"}},
                               "spec": {"containers": [{"name": "srv", "image": "agnhost", "args": args}]}}}})


def test_scenario_netexec_flag_as_two_words_and_unknown_flag():
    from netlab.errors import SpecError
    from netlab.spec.parse import load_text

    s = load_text(_deployment(["netexec", "--http-port", "80"]), "s.yaml")
    c = s.deployments[0].template.containers[0]
    ports = [(p.port, p.protocol) for p in c.ports]
    assert ports == [(80, "TCP"), (8081, "UDP")] and (c.command, c.args) == ([], [])
    with pytest.raises(SpecError) as e:
        load_text(_deployment(["netexec", "--http-port=80", "--bogus=1"]), "s.yaml")
    msg = str(e.value)
    assert "\n" not in msg and "container srv" in msg and "-bogus" in msg and e.value.exit_code == 2, msg


# -- agnhost's answers (pure) --------------------------------------------------------------------------


class FakePod:
    name, started, healthy, exiting = "web-1", time.monotonic(), True, False


def handle(target, headers=(), method="GET"):
    path, _, query = target.partition("?")
    return agnhost.handle(FakePod(), method, path, query, list(headers), "10.0.0.1:4242")


def test_agnhost_endpoints():
    assert handle("/hostName").body == handle("/hostname").body == "web-1"
    assert handle("/clientip").body == "10.0.0.1:4242"
    assert (handle("/echo?msg=hi&code=418").status, handle("/echo?msg=hi&code=418").body) == (418, "hi")
    assert "must be an integer" in handle("/echo?msg=hi&code=x").body
    hdrs = [("Host", "x"), ("x-forwarded-for", "1.2.3.4"), ("Accept", "*/*"), ("accept", "a<b")]
    assert handle("/header?key=X-Forwarded-For", hdrs).body == "1.2.3.4"
    assert handle("/header", hdrs).body == '{"Accept":["*/*","a\\u003cb"],"X-Forwarded-For":["1.2.3.4"]}'
    r = handle("/redirect?location=/echo%3Fmsg%3Dfoobar&code=307")
    assert (r.status, r.headers) == (307, [("Location", "/echo?msg=foobar")])
    assert handle("/redirect?location=x").headers == [("Location", "/x")] and handle("/redirect").status == 302
    for path in ("/shell?cmd=id", "/upload"):
        r = handle(path)
        assert r.status == 501 and "root on the host" in r.body
    assert handle("/nope").status == 404
    assert handle("/healthz").status == 200
    sick = FakePod()
    sick.healthy = False
    assert agnhost.handle(sick, "GET", "/healthz", "", [], "p").status == 412


@pytest.mark.parametrize("query, want", [
    ("request=hostName&host=10.0.0.2&port=8080&protocol=http&tries=3", ("http", "10.0.0.2", 8080, "hostName", 3)),
    ("request=hostname&host=10.0.0.2&port=8081&protocol=UDP", ("udp", "10.0.0.2", 8081, "hostname", 1)),
    ("request=x&host=&port=http", ("http", "127.0.0.1", 80, "x", 1)),
    ("host=10.0.0.2&port=80", 400),                               # no request
    ("request=x&host=10.0.0.2&port=80&tries=two", 400),
    ("request=x&host=10.0.0.2&port=80&protocol=sctp", 400),
    ("request=x&host=10.0.0.2&port=80&protocol=tcp", 400),
    ("request=x&host=web.default.svc&port=80", 400),             # no DNS in the lab
    ("request=x&host=10.0.0.2&port=99999", 400),
])
def test_agnhost_dial_params(query, want):
    r = handle(f"/dial?{query}")
    if isinstance(want, int):
        assert isinstance(r, agnhost.Response) and r.status == want
    else:
        assert isinstance(r, agnhost.DialAction)
        assert (r.protocol, r.host, r.port, r.request, r.tries) == want


@pytest.mark.parametrize("query, want", [
    ("", (0, 0.0, 0.0)), ("code=3", (3, 0.0, 0.0)), ("code=300", (44, 0.0, 0.0)),
    ("code=1&timeout=1.5s&wait=300ms", (1, 1.5, 0.3)), ("timeout=1m2s", (0, 62.0, 0.0)),
])
def test_agnhost_exit_params(query, want):
    r = handle(f"/exit?{query}")
    assert (r.code, r.timeout, pytest.approx(r.wait)) == (want[0], want[1], want[2])


def test_agnhost_exit_bad_params_answer_and_do_not_exit():
    r = handle("/exit?timeout=5")  # a Go duration needs a unit
    assert isinstance(r, agnhost.Response) and "valid golang duration" in r.body
    assert "must be an integer" in handle("/exit?code=x").body
    assert isinstance(handle("/shutdown"), agnhost.ExitAction)


@pytest.mark.parametrize("data, answer", [
    (b"hostname", "web-1"), (b"hostName", "web-1"), (b"HOSTNAME\n", "web-1"), (b"  clientIP ", "1.2.3.4:5"),
    (b"echo Hello", "hello"), (b"ECHO  x", " x"), (b"echo", None), (b"bogus", None), (b"", None),
])
def test_agnhost_udp_commands(data, answer):
    assert agnhost.command("web-1", "1.2.3.4:5", data) == answer


# -- the server: agnhost behaviours on real sockets -----------------------------------------------


def test_hostName_and_case_insensitive_udp(netexec, tmp_path):
    tcp, udp = free_port(), free_port()
    netexec([pod("web-1", [(tcp, "TCP"), (udp, "UDP")], tmp_path / "logs")])
    assert http_get(tcp, "/hostName")[:3:2] == (200, "web-1")
    assert udp_request(udp, b"hostName")[0] == "web-1"
    assert udp_request(udp, b"ClientIP")[0].startswith("127.0.0.1:")
    status, _, body, _ = http_get(tcp, "/shell?cmd=touch%20/tmp/pwned")
    assert status == 501 and "root on the host" in body


def test_dial_between_pods(netexec, tmp_path):
    a, b_tcp, b_udp, dead = free_port(), free_port(), free_port(), free_port()
    netexec([pod("client", [(a, "TCP")], tmp_path / "logs"),
             pod("target", [(b_tcp, "TCP"), (b_udp, "UDP")], tmp_path / "logs")])
    status, _, body, _ = http_get(a, f"/dial?request=hostName&protocol=http&host=127.0.0.1&port={b_tcp}&tries=3")
    assert status == 200 and json.loads(body) == {"responses": ["target"] * 3}
    status, _, body, _ = http_get(a, f"/dial?request=hostname&protocol=udp&host=127.0.0.1&port={b_udp}&tries=2")
    assert json.loads(body) == {"responses": ["target"] * 2}
    # nothing listens: the error, no responses
    status, _, body, _ = http_get(a, f"/dial?request=hostname&protocol=http&host=127.0.0.1&port={dead}")
    got = json.loads(body)
    assert status == 200 and list(got) == ["errors"] and "connection refused" in got["errors"][0], got
    # a redirect is followed, as Go's client does
    _, _, body, _ = http_get(a, f"/dial?request=redirect%3Flocation%3D/hostName&host=127.0.0.1&port={b_tcp}")
    assert json.loads(body) == {"responses": ["target"]}


def test_dial_does_not_block_other_pods(netexec, tmp_path):
    a, b, black = free_port(), free_port(), free_port()
    netexec([pod("client", [(a, "TCP")], tmp_path / "logs"), pod("other", [(b, "TCP"), (black, "UDP")],
                                                                   tmp_path / "logs")])
    # a UDP dial to a command nobody answers waits 5 s; the server keeps answering meanwhile
    s = socket.create_connection(("127.0.0.1", a), timeout=10)
    s.sendall(f"GET /dial?request=bogus&protocol=udp&host=127.0.0.1&port={black} HTTP/1.1\r\n\r\n".encode())
    t0 = time.monotonic()
    assert http_get(b, "/hostname")[2] == "other"
    assert http_get(a, "/hostname")[2] == "client"
    assert time.monotonic() - t0 < 2
    status, _, body, _ = read_http_response(s)
    s.close()
    assert "i/o timeout" in json.loads(body)["errors"][0] and time.monotonic() - t0 >= 4.5


def test_exit_closes_only_that_pod(netexec, tmp_path):
    a_tcp, a_udp, b = free_port(), free_port(), free_port()
    srv = netexec([pod("a", [(a_tcp, "TCP"), (a_udp, "UDP")], tmp_path / "logs"),
                   pod("b", [(b, "TCP")], tmp_path / "logs")])
    with socket.create_connection(("127.0.0.1", a_tcp), timeout=5) as s:
        s.sendall(b"GET /exit?code=3 HTTP/1.1\r\n\r\n")
        assert recv_all(s) == b""  # timeout 0: the process is gone before it answers, as agnhost's
    assert refused(a_tcp)
    assert udp_silent(a_udp, b"hostname")
    assert http_get(b, "/hostname")[2] == "b"
    status = json.loads((tmp_path / "run" / "netexec.status.json").read_text())
    assert status["pods"]["default/a"]["state"] == "exited" and status["pods"]["default/a"]["exitCode"] == 3
    assert status["pods"]["default/b"]["state"] == "running"
    assert "exited with code 3" in srv.log("a")
    # a reload restarts it, as a kubelet restarts a container
    srv.reload(json.loads(srv.config.read_text())["pods"])
    assert http_get(a_tcp, "/hostname")[2] == "a"
    status = json.loads((tmp_path / "run" / "netexec.status.json").read_text())
    got = status["pods"]["default/a"]
    assert {k: got[k] for k in ("state", "restarts")} == {"state": "running", "restarts": 1}
    # what it listens on, and in which namespace: the lab reads readiness from here (dataplane/status.py)
    assert sorted(got["listening"]) == sorted([f"TCP/{a_tcp}", f"UDP/{a_udp}"]) and len(got["netns"]) == 2


def test_graceful_exit_and_shutdown(netexec, tmp_path):
    a, b = free_port(), free_port()
    netexec([pod("a", [(a, "TCP")], tmp_path / "logs"), pod("b", [(b, "TCP")], tmp_path / "logs")])
    t0 = time.monotonic()
    status, headers, body, _ = http_get(a, "/exit?code=0&timeout=1s&wait=300ms")
    assert (status, body) == (200, "") and time.monotonic() - t0 >= 0.3
    assert refused(a)
    with socket.create_connection(("127.0.0.1", b), timeout=5) as s:
        s.sendall(b"GET /shutdown HTTP/1.1\r\n\r\n")
        assert recv_all(s) == b""
    assert refused(b)


def test_delayed_exit_happens_when_the_client_left(netexec, tmp_path):
    a = free_port()
    netexec([pod("a", [(a, "TCP")], tmp_path / "logs")])
    with socket.create_connection(("127.0.0.1", a), timeout=5) as s:
        s.sendall(b"GET /exit?code=1&wait=500ms HTTP/1.1\r\n\r\n")
    assert http_get(a, "/hostname")[2] == "a"  # still waiting
    time.sleep(1.0)
    assert refused(a)


def test_dial_request_with_a_query(netexec, tmp_path):
    a, b = free_port(), free_port()
    netexec([pod("client", [(a, "TCP")], tmp_path / "logs"), pod("target", [(b, "TCP")], tmp_path / "logs")])
    _, _, body, _ = http_get(a, f"/dial?request=echo%3Fmsg%3Dhello%20world&host=127.0.0.1&port={b}")
    assert json.loads(body) == {"responses": ["hello world"]}
    _, _, body, _ = http_get(a, f"/dial?request=echo%3Fmsg%3D&host=127.0.0.1&port={b}&tries=2")
    assert json.loads(body) == {}  # agnhost lists responses only when the last one is not empty


def test_sigterm_with_delay_shutdown_keeps_serving_then_exits_and_is_never_restarted(netexec, tmp_path):
    """The kubelet's SIGTERM to a pod of the server (config "sigterm"), as agnhost netexec takes it: with
    --delay-shutdown=N it keeps serving N s then exits 0; without, it exits at once (143); the other
    pods are untouched and no later reload starts it again."""
    a, b, c = free_port(), free_port(), free_port()
    logs = tmp_path / "logs"
    pa, pb, pc = pod("a", [(a, "TCP")], logs), pod("b", [(b, "TCP")], logs), pod("c", [(c, "TCP")], logs)
    srv = netexec([pa, pb, pc])
    t0 = time.monotonic()
    srv.reload([dict(pa, sigterm=True, delayShutdown=1), dict(pb, sigterm=True), pc])
    assert refused(b)                                   # no delay: gone at once
    assert http_get(a, "/hostname")[2] == "a"           # delaying: still serving, new connections too
    while time.monotonic() - t0 < 0.7:
        assert http_get(a, "/hostname")[2] == "a"
        time.sleep(0.05)
    assert refused(a, within=3.0)
    assert time.monotonic() - t0 >= 1.0
    status = json.loads((tmp_path / "run" / "netexec.status.json").read_text())["pods"]
    assert (status["default/a"]["state"], status["default/a"]["exitCode"]) == ("exited", 0)
    assert (status["default/b"]["state"], status["default/b"]["exitCode"]) == ("exited", 143)
    assert status["default/c"]["state"] == "running" and http_get(c, "/hostname")[2] == "c"
    assert "received SIGTERM: sleeping 1 seconds" in srv.log("a")
    # a reload while they are being deleted does not restart them
    srv.reload([dict(pa, sigterm=True, delayShutdown=1), dict(pb, sigterm=True), pc])
    assert refused(a) and refused(b)
    status = json.loads((tmp_path / "run" / "netexec.status.json").read_text())["pods"]
    assert status["default/a"]["restarts"] == 0 and status["default/a"]["state"] == "exited"


@pytest.mark.parametrize("argv, delay", [
    (["netexec"], 0), (["netexec", "--delay-shutdown=5"], 5), (["/agnhost", "netexec", "--delay-shutdown", "7"], 7),
    (["netexec", "--delay-shutdown=-3"], 0), (["sleep", "5"], 0)])
def test_netexec_delay_shutdown(argv, delay):
    from netlab.workload import goflags
    assert goflags.netexec_delay_shutdown(argv) == delay


def test_load_config_reports_the_digest_of_the_text_it_parsed(tmp_path):
    from netlab.workload.podconf import config_digest, load_config
    path = tmp_path / "c.json"
    text = '{"pods": [{"key": "default/a", "name": "a", "netns": "/run/netns/x", "ports": [{"port": 80, "protocol": "TCP"}]}]}'
    path.write_text(text)
    got: list = []
    specs = load_config(str(path), got)
    assert list(specs) == ["default/a"] and got == [config_digest(text)] == [config_digest(text.encode())]
    path.write_text(text.replace("80", "81"))
    again: list = []
    load_config(str(path), again)
    assert again != got
