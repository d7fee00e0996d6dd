"""Well-known test images run as themselves (netlab/workload/images.py, apps.py): what a container of
agnhost, http-echo, nginx or hello-app serves, read from its image and command line, and what the
built-in server answers on those ports (a real server process on this machine's loopback)."""
from __future__ import annotations

import socket

import pytest

from netlab.errors import SpecError
from netlab.model.preflight import check_commands, check_host_commands

from .scenarios import cluster, cluster_of, container, pod
from .test_netexec import free_port, http_get, netexec, udp_request  # noqa: F401 (fixture)
from .test_netexec import pod as server_pod

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"


def _pod(image, command=None, args=None, env=None, ports=None):
    extra = {k: v for k, v in (("command", command), ("args", args)) if v is not None}
    c = container("app", ports=ports or (), **extra)
    c["image"] = image
    if env:
        c["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return cluster_of(cluster(), pod("p", containers=[c])).pods[0]


def _served(image, command=None, args=None, env=None, ports=None):
    p = _pod(image, command, args, env, ports)
    assert not p.commands, "a well-known image runs no host command"
    check_commands(cluster_of(cluster()))
    return {f"{port}/{proto}": app["app"] if app["app"] != "serve-hostname" else f"serve-hostname/{app['mode']}"
            for (port, proto), app in p.builtin_apps.items()}


@pytest.mark.parametrize("image", [AGNHOST, "k8s.gcr.io/e2e-test-images/agnhost:2.20",
                                   "gcr.io/kubernetes-e2e-test-images/agnhost:2.2"])
def test_agnhost_serve_hostname_whatever_the_spelling(image):
    assert _served(image, ["/agnhost", "serve-hostname"]) == {"9376/TCP": "serve-hostname/http"}
    assert _served(image, None, ["serve-hostname", "--port", "8080"]) == {"8080/TCP": "serve-hostname/http"}
    assert _served(image, ["/agnhost", "serve-hostname", "--http=false", "--udp", "--tcp", "--port=53"]) == {
        "53/TCP": "serve-hostname/tcp", "53/UDP": "serve-hostname/udp"}


def test_agnhost_netexec_pause_porter_connect():
    assert _served(AGNHOST, None, ["netexec", "--http-port=80", "--udp-port=-1"]) == {"80/TCP": "netexec"}
    assert _served(AGNHOST) == {}   # the image's default command: pause
    assert _served(AGNHOST, None, ["pause"], ports=[{"containerPort": 80}]) == {}   # pause opens no port
    assert _served(AGNHOST, ["/agnhost", "porter"], env={"SERVE_PORT_9001": "foo", "SERVE_UDP_PORT_9002": "bar"}) \
        == {"9001/TCP": "porter", "9002/UDP": "porter"}
    p = _pod(AGNHOST, ["/agnhost", "connect", "10.96.0.10:80", "--timeout=3s"])
    assert p.commands[0][1][-3:] == ["netlab.workload.connect", "10.96.0.10:80", "3"]
    check_host_commands(cluster_of(cluster(), pod("p", containers=[dict(container("app", command=[
        "/agnhost", "connect", "1.2.3.4:80"]), image=AGNHOST)])))


def test_echo_servers_and_nginx():
    assert _served("hashicorp/http-echo:0.2.3", None, ["-text=foo"]) == {"5678/TCP": "http-echo"}
    assert _served("hashicorp/http-echo", None, ["-listen=:8080", "-text", "bar"]) == {"8080/TCP": "http-echo"}
    for image, port in (("nginx", 80), ("nginx:1.14.2", 80), ("docker.io/library/nginx:alpine", 80),
                        ("nginxinc/nginx-unprivileged:stable", 8080)):
        assert _served(image, ports=[{"containerPort": port}]) == {f"{port}/TCP": "nginx"}
    # a port nginx does not open is not served (nothing listens there, as on a cluster)
    assert _served("nginx", ports=[{"containerPort": 8080}]) == {"80/TCP": "nginx"}
    assert _served("gcr.io/google-samples/hello-app:2.0") == {"8080/TCP": "hello-app"}
    # any other image with no command keeps agnhost netexec on its declared ports
    assert _served("busybox", ports=[{"containerPort": 8080}]) == {"8080/TCP": "netexec"}


@pytest.mark.parametrize("image,command,args,msg", [
    (AGNHOST, ["sh", "-c", "echo hi"], None, "Pod default/p: spec.containers[0].command of container app: agnhost "
     "subcommand 'sh' is not emulated by netlab; use one of netexec, serve-hostname, pause, porter, connect"),
    (AGNHOST, ["/agnhost", "serve-hostname", "--udp"], None, "Pod default/p: spec.containers[0].command of "
     "container app: agnhost serve-hostname: --http with --tcp or --udp: agnhost exits"),
    (AGNHOST, ["/agnhost", "connect"], None, "Pod default/p: spec.containers[0].command of container app: agnhost "
     "connect: accepts 1 arg(s), received 0"),
    ("hashicorp/http-echo", None, None, "Pod default/p: spec.containers[0].args of container app: http-echo has no "
     "-text (nor env ECHO_TEXT): it exits 127; add -text=SOMETHING to args"),
    ("nginx", ["sh", "-c", "nginx"], None, "Pod default/p: spec.containers[0].command of container app: runs 'sh' "
     "in image nginx"),
])
def test_what_the_image_would_refuse_is_one_line(image, command, args, msg):
    with pytest.raises(SpecError) as e:
        _pod(image, command, args)
    assert e.value.exit_code == 2
    assert str(e.value).startswith(msg), str(e.value)
    assert "\n" not in str(e.value)


def test_the_server_answers_as_each_image(netexec, tmp_path):  # noqa: F811
    sh, tcp, udp, echo, ngx, hello, porter, pudp = (free_port() for _ in range(8))
    spec = server_pod("web-1", [], tmp_path / "logs")
    spec["ports"] = [
        {"port": sh, "protocol": "TCP", "app": {"app": "serve-hostname", "mode": "http", "close": True}},
        {"port": tcp, "protocol": "TCP", "app": {"app": "serve-hostname", "mode": "tcp"}},
        {"port": udp, "protocol": "UDP", "app": {"app": "serve-hostname", "mode": "udp"}},
        {"port": echo, "protocol": "TCP", "app": {"app": "http-echo", "text": "foo", "status": 201}},
        {"port": ngx, "protocol": "TCP", "app": {"app": "nginx"}},
        {"port": hello, "protocol": "TCP", "app": {"app": "hello-app", "version": "2.0.0"}},
        {"port": porter, "protocol": "TCP", "app": {"app": "porter", "value": "v1", "json": False}},
        {"port": pudp, "protocol": "UDP", "app": {"app": "porter", "value": "v2", "json": False}}]
    netexec([spec])
    status, headers, body, _ = http_get(sh, "/anything")
    assert (status, body) == (200, "web-1")
    with socket.create_connection(("127.0.0.1", tcp), timeout=5) as s:
        assert s.recv(100) == b"web-1" and s.recv(100) == b""   # written at once, then closed
    assert udp_request(udp, b"x")[0] == "web-1"
    assert http_get(echo, "/x")[0::2] == (201, "foo\n")
    assert http_get(echo, "/health")[0::2] == (200, '{"status":"ok"}\n')
    status, headers, body, _ = http_get(ngx, "/")
    assert status == 200 and "<title>Welcome to nginx!</title>" in body
    status, headers, body, _ = http_get(ngx, "/hostname")
    assert status == 404 and "<title>404 Not Found</title>" in body
    assert http_get(hello, "/")[0::2] == (200, "Hello, world!\nVersion: 2.0.0\nHostname: web-1\n")
    assert http_get(porter, "/")[0::2] == (200, "v1")
    assert udp_request(pudp, b"x")[0] == "v2"
    with socket.create_connection(("127.0.0.1", echo), timeout=5) as s:   # not HTTP: 400, closed
        s.sendall(b"hostname\n")
        assert s.recv(1000).startswith(b"HTTP/1.1 400 Bad Request")
