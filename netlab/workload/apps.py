"""What the built-in server answers on a port of a well-known image's container (images.py says which
images and how they are recognised): pure functions of a request, like agnhost.py for netexec.
Standard library only.

* serve-hostname (agnhost): HTTP, any path: the pod's hostname (no newline), `Connection: close` with
  --close; raw TCP: the hostname written as the connection opens, then closed; UDP: the hostname.
* porter (agnhost): HTTP, any path: the env var's value (with --json-response `{"Method":M,"Body":V}`,
  application/json); UDP: the value.
* http-echo (hashicorp): `/health`: `{"status":"ok"}` and a newline; any other path: the text and a
  newline, with the -status-code.
* nginx: `/` and `/index.html`: nginx's default "Welcome to nginx!" page (text/html); GET/HEAD of
  anything else: nginx's 404 page; other methods on `/`: 405.
* hello-app (Google's sample): any path: `Hello, world!\\nVersion: V\\nHostname: POD\\n`.
* kube-proxy-health (not an image: kube-proxy's service health server on a node's healthCheckNodePort,
  netlab/lb/healthcheck.py): any path: 200 or 503 with kube-proxy's JSON, the count read from the node's
  state file on each request.

A request that is not HTTP gets what Go's (or nginx's) HTTP server answers: 400 and the connection closed.
"""
from __future__ import annotations



from . import agnhost
from .agnhost import Response

NGINX_VERSION = "1.27.3"   # what the Server header and the error pages name (nginx:latest at the time)

NGINX_WELCOME = """<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto;
font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>

<p>For online documentation and support please refer to
<a href="http://nginx.org/">nginx.org</a>.<br/>
Commercial support is available at
<a href="http://nginx.com/">nginx.com</a>.</p>

<p><em>Thank you for using nginx.</em></p>
</body>
</html>
"""


def nginx_error(status: int) -> str:
    title = f"{status} {agnhost.reason(status)}"
    return (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
            f"<hr><center>nginx/{NGINX_VERSION}</center>\r\n</body>\r\n</html>\r\n")


def name(app: dict | None) -> str:
    return (app or {}).get("app", "netexec")


def handle(app: dict | None, pod, method: str, path: str, query_string: str, headers, peer: str):
    """Answer one HTTP request on a port serving `app`: agnhost.handle's results (netexec) or a Response."""
    what = name(app)
    if what == "netexec":
        return agnhost.handle(pod, method, path, query_string, headers, peer)
    if what == "serve-hostname":
        return Response(200, pod.name, close=bool(app.get("close")))  # Connection: close with --close
    if what == "porter":
        if app.get("json"):
            return Response(200, agnhost.go_json({"Method": method, "Body": app.get("value", "")}),
                            ctype="application/json")
        return Response(200, app.get("value", ""))
    if what == "http-echo":
        if path == "/health":
            return Response(200, '{"status":"ok"}\n')
        return Response(int(app.get("status", 200)), app.get("text", "") + "\n")
    if what == "hello-app":
        return Response(200, f"Hello, world!\nVersion: {app.get('version', '1.0.0')}\nHostname: {pod.name}\n")
    if what == "kube-proxy-health":   # the node's healthCheckNodePort (netlab/lb/healthcheck.py)
        from ..lb import healthcheck
        ns, svc = app.get("namespace", ""), app.get("name", "")
        status, text, extra = healthcheck.answer(ns, svc, healthcheck.read_count(app.get("state", ""), ns, svc))
        return Response(status, text, extra, ctype="application/json")
    if what == "nginx":
        server = [("Server", f"nginx/{NGINX_VERSION}")]
        if path in ("/", "/index.html"):
            if method not in ("GET", "HEAD"):
                return Response(405, nginx_error(405), server, ctype="text/html")
            return Response(200, NGINX_WELCOME, server, ctype="text/html")
        return Response(404, nginx_error(404), server, ctype="text/html")
    return Response(500, f"netlab: no built-in behaviour {what!r}\n")


def datagram(app: dict | None, pod, peer: str, data: bytes) -> str | None:
    """The answer to a UDP datagram on a port serving `app` (None: no answer)."""
    what = name(app)
    if what == "netexec":
        return agnhost.command(pod.name, peer, data)
    if what == "serve-hostname":
        return pod.name
    if what == "porter":
        return app.get("value", "")
    return None


def on_connect(app: dict | None, pod) -> str | None:
    """What a raw TCP server writes as a connection opens, before closing it (serve-hostname --tcp)."""
    if name(app) == "serve-hostname" and (app or {}).get("mode") == "tcp":
        return pod.name
    return None


def bad_request() -> bytes:
    """Go's net/http answer to bytes that are not an HTTP request (then it closes the connection)."""
    return (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
            b"400 Bad Request")



