"""netlab.live.prober without root: the kubelet's texts, ports, defaults and handlers, against real
servers on this host's loopback (the probe functions run in the calling thread's namespace; the node
namespaces are the integration tests' part)."""
from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest

from netlab.live import prober
from netlab.live.prober import FAILURE, SUCCESS, USER_AGENT, NodeProbers, run_probe


class Handler(http.server.BaseHTTPRequestHandler):
    seen: list = []

    def do_GET(self):
        Handler.seen.append((self.path, dict(self.headers.items())))
        port = self.server.server_address[1]
        routes = {
            "/ok": (200, {}, b"fine"),
            "/": (200, {}, b"root"),
            "/fail": (503, {}, b"secret body"),
            "/missing": (404, {}, b""),
            "/same": (302, {"Location": "/ok"}, b""),
            "/other": (302, {"Location": f"http://127.0.0.2:{port}/ok"}, b"moved"),
            "/loop": (302, {"Location": "/loop"}, b""),
            "/to-fail": (301, {"Location": "/fail"}, b""),
            "/big": (200, {}, b"x" * 30000),
        }
        status, headers, body = routes.get(self.path.split("?")[0], (404, {}, b""))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture(scope="module")
def server():
    srv = http.server.ThreadingHTTPServer(("0.0.0.0", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def silent():
    """A port that accepts connections and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield s.getsockname()[1]
    s.close()


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(port, path, headers=(), timeout=1.0, host=None, **extra):
    url = prober.probe_url({"port": port, "path": path, "host": "127.0.0.1", **extra}, "10.9.9.9", [])
    return prober.http_probe(url, prober.probe_headers({"httpHeaders": list(headers)}), timeout, host)


def test_http_success_and_body(server):
    assert get(server, "/ok") == (SUCCESS, "fine")


def test_http_status_failures_carry_no_body(server):
    assert get(server, "/fail") == (FAILURE, "HTTP probe failed with statuscode: 503")
    assert get(server, "/missing") == (FAILURE, "HTTP probe failed with statuscode: 404")


def test_http_refused_is_the_go_clients_text():
    port = closed_port()
    assert get(port, "/healthz") == (
        FAILURE, f'Get "http://127.0.0.1:{port}/healthz": dial tcp 127.0.0.1:{port}: connect: connection refused')


def test_http_timeout_waits_timeout_and_says_so(silent):
    t0 = time.monotonic()
    result = get(silent, "/healthz", timeout=1.0)
    took = time.monotonic() - t0
    assert result == (FAILURE, f'Get "http://127.0.0.1:{silent}/healthz": context deadline exceeded '
                               "(Client.Timeout exceeded while awaiting headers)")
    assert 0.9 < took < 2.5, took


def test_http_headers_user_agent_accept_and_host(server):
    Handler.seen.clear()
    get(server, "/ok")
    path, headers = Handler.seen[-1]
    assert headers["User-Agent"] == USER_AGENT == "kube-probe/1.33"
    assert headers["Accept"] == "*/*" and headers["Host"] == f"127.0.0.1:{server}"
    assert headers["Connection"] == "close"
    get(server, "/ok", [{"name": "User-Agent", "value": "mine"}, {"name": "X-Probe", "value": "1"},
                        {"name": "Accept", "value": ""}, {"name": "Host", "value": "web.example"}],
        host="web.example")
    path, headers = Handler.seen[-1]
    assert headers["User-Agent"] == "mine" and headers["X-Probe"] == "1"
    assert "Accept" not in headers and headers["Host"] == "web.example"


def test_http_redirects_same_host_followed_other_host_is_a_warning(server):
    assert get(server, "/same") == (SUCCESS, "fine")
    assert get(server, "/to-fail") == (FAILURE, "HTTP probe failed with statuscode: 503")
    result, output = get(server, "/other")
    assert (result, output) == (SUCCESS, "Probe terminated redirects, Response body: moved")
    assert prober.is_warning(result, output) and not prober.is_warning(SUCCESS, "fine")
    Handler.seen.clear()
    assert get(server, "/loop") == (FAILURE, f'Get "http://127.0.0.1:{server}/loop": stopped after 10 redirects')
    assert len(Handler.seen) == 11


def test_http_body_truncated_to_10_kib(server):
    result, output = get(server, "/big")
    assert result == SUCCESS and output == "x" * 10240


def test_tcp_ok_refused_and_timeout(server):
    assert prober.tcp_probe("127.0.0.1", server, 1.0) == (SUCCESS, "")
    port = closed_port()
    assert prober.tcp_probe("127.0.0.1", port, 1.0) == (
        FAILURE, f"dial tcp 127.0.0.1:{port}: connect: connection refused")


def test_named_ports_and_their_errors():
    ports = [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]
    assert prober.resolve_port("metrics", ports) == 9090
    assert prober.resolve_port(8080, []) == 8080
    with pytest.raises(ValueError, match='port "admin" not found'):
        prober.resolve_port("admin", ports)
    with pytest.raises(ValueError, match="invalid port number: 0"):
        prober.resolve_port(0, ports)
    assert prober.probe_url({"port": "http", "path": "/healthz"}, "10.244.1.5", ports) == \
        "http://10.244.1.5:8080/healthz"


def test_url_defaults_host_scheme_and_path():
    assert prober.probe_url({"port": 80}, "10.244.1.5", []) == "http://10.244.1.5:80"
    assert prober.probe_url({"port": 80, "path": "ready"}, "10.244.1.5", []) == "http://10.244.1.5:80/ready"
    assert prober.probe_url({"port": 443, "scheme": "HTTPS", "host": "10.0.0.1", "path": "/x?y=1"},
                            "10.244.1.5", []) == "https://10.0.0.1:443/x?y=1"


def test_a_missing_named_port_is_a_failure_not_an_exception():
    probe = {"tcpSocket": {"port": "nope"}}
    assert run_probe(probe, "10.244.1.5", "nl-x", [{"name": "http", "containerPort": 80}], "nl-x") == (
        FAILURE, 'port "nope" not found')


def test_bad_handlers_raise_naming_the_handler():
    with pytest.raises(ValueError, match="grpc"):
        run_probe({"grpc": {"port": 9000}}, "10.244.1.5", "p", [], "n")
    with pytest.raises(ValueError, match="none"):
        run_probe({"periodSeconds": 3}, "10.244.1.5", "p", [], "n")
    with pytest.raises(ValueError, match="exec.*httpGet"):
        prober.handler_of({"exec": {"command": ["true"]}, "httpGet": {"port": 80}})
    with pytest.raises(ValueError, match="exec has no command"):
        run_probe({"exec": {}}, "10.244.1.5", "p", [], "n")


def test_a_node_namespace_that_does_not_exist_is_a_failure():
    pool = NodeProbers()
    try:
        probe = {"httpGet": {"port": 8080, "path": "/healthz"}}
        for _ in range(3):
            assert run_probe(probe, "10.244.1.5", "nl-gone-pod", [], "nl-gone-node", probers=pool) == (
                FAILURE, "netns nl-gone-node does not exist")
        assert run_probe({"exec": {"command": ["true"]}}, "10.244.1.5", "nl-gone-pod", [], "nl-gone-node",
                         probers=pool)[1].startswith("netns nl-gone-pod does not exist")
        assert pool.workers("nl-gone-node") == 1      # one worker was enough for probes one after another
    finally:
        pool.close()
    assert pool.workers("nl-gone-node") == 0
    assert not [t for t in threading.enumerate() if t.name == "netlab-probe nl-gone-node"]
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit("nl-gone-node", lambda: None)


def test_https_probe_does_not_verify_the_servers_certificate(tmp_path):
    """scheme HTTPS, as the kubelet probes it: TLS with a self-signed certificate for another name passes
    (InsecureSkipVerify), and the status decides."""
    import ssl
    import subprocess
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=not-this-host"], check=True, capture_output=True)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        port = srv.server_address[1]
        assert get(port, "/ok", scheme="HTTPS") == (SUCCESS, "fine")
        assert get(port, "/fail", scheme="HTTPS")[0] == FAILURE
    finally:
        srv.shutdown()
        srv.server_close()
