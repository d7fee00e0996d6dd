"""What the lab's ingress-nginx serves: a pure function of the store's objects (no root, no files).

`plan(objs, settings)` reads Ingresses, IngressClasses, Services, EndpointSlices and Secrets (dicts as
the store holds them) and decides, with ingress-nginx's semantics (learnt from its documentation and
source, not copied):

- which Ingresses are ours: the deprecated annotation kubernetes.io/ingress.class, when set, must
  name our class; else spec.ingressClassName must name an IngressClass whose spec.controller is
  k8s.io/ingress-nginx; an Ingress with neither is ours when such an IngressClass is the default one
  (ingressclass.kubernetes.io/is-default-class: "true"). Others are left alone.
- servers: one per host (rules without a host go to the catch-all server `_`), made by the oldest
  Ingress naming it (Ingresses in creationTimestamp order); a path defined twice: the oldest wins.
- locations: Exact `= /p`; Prefix element-wise (`/p` matches /p, /p/ and /p/x, not /px): `location
  /p/` plus `location = /p` unless an Exact /p exists; ImplementationSpecific a plain nginx prefix
  (`/p` matches /px too). A server's `/` without a rule: the Ingress's spec.defaultBackend (of the
  Ingress that made the server), else the 404 default backend; the catch-all's `/`: the defaultBackend
  of the oldest Ingress without rules, else 404.
- upstreams: the backend Service port's ready endpoints, pod IP and target port (from the
  EndpointSlices), not the ClusterIP. A Service or port that does not exist, an ExternalName Service,
  or no ready endpoint: that location answers 503, and the reason is kept for `describe ingress`.
- TLS: a host in spec.tls with a kubernetes.io/tls Secret holding a certificate and a key is served
  with them on 443 and redirected from 80 (308, ingress-nginx's ssl-redirect); a missing or invalid
  Secret: the host is served with the default (self-signed) certificate, as ingress-nginx does, and
  the reason kept. Every server listens on 443 with the default certificate unless it has its own
  (chosen by the handshake's server name, SNI: one map, not a certificate loaded per server).

`render(plan, conf_dir, run_dir)` writes nginx.conf's text; `render` never reads files: the
certificates' PEM texts are in `plan.certs`, published beside the configuration by the live loop.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field

from . import CLASS_ANNOTATION, CONTROLLER, DEFAULT_CLASS_ANNOTATION, POD_HEADER

DEFAULT_CERT = "default-fake-certificate.pem"
TLS_TYPE = "kubernetes.io/tls"
_PEM = re.compile(rb"-----BEGIN ([A-Z ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END \1-----")


@dataclass
class Settings:
    class_name: str = "nginx"
    controller: str = CONTROLLER
    worker_processes: int = 1


@dataclass
class Upstream:
    name: str
    servers: list[tuple[str, int, str]]   # (pod IP, port, pod name)
    origin: tuple = ()                    # (namespace, Service, port): names like ingress-nginx's can clash


@dataclass
class Location:
    path: str
    exact: bool
    ingress: str                 # ns/name of the Ingress it comes from ("" : the default backend)
    upstream: str | None         # None: answers `status`
    status: int = 404
    path_type: str = "Prefix"


@dataclass
class Server:
    host: str                    # "_": the catch-all server
    locations: dict[tuple[bool, str], Location] = field(default_factory=dict)
    cert: str | None = None      # file name of the certificate (None: the default one)
    tls: bool = False            # a TLS host: 80 redirects to 443


@dataclass
class Problem:
    ingress: str                 # ns/name
    reason: str                  # event reason
    message: str


@dataclass
class Plan:
    servers: list[Server]
    upstreams: dict[str, Upstream]
    certs: dict[str, bytes]                  # file name -> PEM (certificate, then key)
    problems: list[Problem]
    ours: list[str]                          # the Ingresses served (ns/name), oldest first
    backends: dict[str, list[str]] = field(default_factory=dict)   # ns/name -> "host path -> svc:port" lines


def _md(o: dict) -> dict:
    return o.get("metadata") or {}


def _key(o: dict) -> str:
    return f"{_md(o).get('namespace', 'default')}/{_md(o).get('name')}"


def ours(ing: dict, classes: list[dict], settings: Settings) -> bool:
    """Whether our ingress-nginx serves this Ingress (see the module's docstring)."""
    ann = (_md(ing).get("annotations") or {}).get(CLASS_ANNOTATION)
    if ann is not None:
        return ann == settings.class_name
    mine = [c for c in classes if (c.get("spec") or {}).get("controller") == settings.controller]
    name = (ing.get("spec") or {}).get("ingressClassName")
    if name is not None:
        return any(_md(c).get("name") == name for c in mine)
    return any((_md(c).get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true" for c in mine)


def pem_problem(crt: bytes, key: bytes) -> str | None:
    """Why a certificate/key pair is not usable (structure only: PEM blocks that decode to DER
    sequences), or None. The publisher also asks openssl (a key that does not match its certificate)."""
    certs = [m for m in _PEM.finditer(crt) if m.group(1) == b"CERTIFICATE"]
    if not certs:
        return "tls.crt holds no PEM certificate"
    keys = [m for m in _PEM.finditer(key) if m.group(1).endswith(b"PRIVATE KEY")]
    if not keys:
        return "tls.key holds no PEM private key"
    for m, what in ((certs[0], "tls.crt"), (keys[0], "tls.key")):
        try:
            der = base64.b64decode(re.sub(rb"\s", b"", m.group(2)), validate=True)
        except (binascii.Error, ValueError):
            return f"{what}'s PEM block is not base64"
        if not der or der[0] != 0x30:
            return f"{what}'s PEM block is not DER"
    return None


def _secret_pair(secret: dict) -> tuple[bytes, bytes] | None:
    data = secret.get("data") or {}
    try:
        return base64.b64decode(data.get("tls.crt") or ""), base64.b64decode(data.get("tls.key") or "")
    except (binascii.Error, ValueError):
        return None


def _ctime(o: dict) -> str:
    return _md(o).get("creationTimestamp") or ""


def _slices_of(slices: list[dict], ns: str, svc: str) -> list[dict]:
    return [s for s in slices if _md(s).get("namespace", "default") == ns
            and (_md(s).get("labels") or {}).get("kubernetes.io/service-name") == svc]


def _backend(b: dict, ns: str, services: dict, slices: list[dict], upstreams: dict[str, Upstream],
             ing: str, problems: list[Problem]) -> tuple[str | None, str]:
    """(upstream name or None for 503, "svc:port" text) of an Ingress backend; a reason when 503."""
    svc_ref = b.get("service") or {}
    name = svc_ref.get("name", "")
    port = svc_ref.get("port") or {}
    want = port.get("number") if port.get("number") is not None else port.get("name")
    text = f"{name}:{want}"
    svc = services.get((ns, name))
    if svc is None:
        problems.append(Problem(ing, "ServiceNotFound", f"Service \"{ns}/{name}\" not found: {text} answers 503"))
        return None, text
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        problems.append(Problem(ing, "ServiceNotSupported",
                                f"Service \"{ns}/{name}\" is ExternalName, which netlab's ingress does not proxy: "
                                f"{text} answers 503"))
        return None, text
    sp = next((p for p in spec.get("ports") or [] if (p.get("port") == want if isinstance(want, int)
                                                     else p.get("name") == want)), None)
    if sp is None:
        problems.append(Problem(ing, "PortNotFound", f"Service \"{ns}/{name}\" has no port {want}: {text} answers 503"))
        return None, text
    pname = sp.get("name") or ""
    uname = f"{ns}-{name}-{want}"   # ingress-nginx's name; a-b/c and a/b-c would share it: then a hash
    if uname in upstreams and upstreams[uname].origin != (ns, name, want):
        uname += "-" + hashlib.sha256(f"{ns}/{name}/{want}".encode()).hexdigest()[:8]
    servers: list[tuple[str, int, str]] = []
    for s in _slices_of(slices, ns, name):
        ports = [p for p in s.get("ports") or [] if (p.get("name") or "") == pname and p.get("port")]
        if not ports:
            continue
        for ep in s.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready") is False:
                continue
            pod = (ep.get("targetRef") or {}).get("name", "")
            for addr in ep.get("addresses") or []:
                servers.append((addr, int(ports[0]["port"]), pod))
    servers = sorted(set(servers))
    if not servers:
        problems.append(Problem(ing, "NoEndpoints", f"Service \"{ns}/{name}\" has no ready endpoints for port "
                                                    f"{want}: {text} answers 503"))
        return None, text
    upstreams[uname] = Upstream(uname, servers, (ns, name, want))
    return uname, text


def _location_keys(path: str, kind: str) -> list[tuple[bool, str]]:
    """The nginx locations (exact?, path) of one Ingress path (see the module's docstring)."""
    if kind == "Exact":
        return [(True, path)]
    if kind == "Prefix":
        base = path.rstrip("/")
        return [(False, "/")] if not base else [(False, base + "/"), (True, base)]
    return [(False, path or "/")]


def plan(objs: dict[str, list[dict]], settings: Settings, cert_problem=pem_problem) -> Plan:
    """What nginx serves (see the module's docstring). `objs`: kind -> store objects. `cert_problem(crt,
    key) -> str | None` says why a Secret's pair is unusable (default: a structural check)."""
    classes = objs.get("IngressClass") or []
    services = {(_md(s).get("namespace", "default"), _md(s).get("name")): s for s in objs.get("Service") or []}
    secrets = {(_md(s).get("namespace", "default"), _md(s).get("name")): s for s in objs.get("Secret") or []}
    slices = objs.get("EndpointSlice") or []
    ings = sorted((i for i in objs.get("Ingress") or [] if ours(i, classes, settings)),
                  key=lambda i: (_ctime(i), _key(i)))
    upstreams: dict[str, Upstream] = {}
    problems: list[Problem] = []
    certs: dict[str, bytes] = {}
    backends: dict[str, list[str]] = {}
    servers: dict[str, Server] = {"_": Server("_")}
    servers["_"].locations[(False, "/")] = Location("/", False, "", None, 404)
    for ing in ings:
        key, ns, spec = _key(ing), _md(ing).get("namespace", "default"), ing.get("spec") or {}
        lines = backends.setdefault(key, [])
        default = None
        if spec.get("defaultBackend"):
            up, text = _backend(spec["defaultBackend"], ns, services, slices, upstreams, key, problems)
            default = (up, text)
            lines.append(f"default backend -> {text}" + ("" if up else " (503)"))
            root = servers["_"].locations[(False, "/")]
            if not spec.get("rules") and root.ingress == "":
                servers["_"].locations[(False, "/")] = Location("/", False, key, up, 503, "default")
        for rule in spec.get("rules") or []:
            host = rule.get("host") or "_"
            if host not in servers:
                srv = servers[host] = Server(host)
                srv.locations[(False, "/")] = Location("/", False, key if default else "",
                                                       default[0] if default else None,
                                                       503 if default else 404, "default")
            srv = servers[host]
            for p in ((rule.get("http") or {}).get("paths") or []):
                kind, path = p.get("pathType", "ImplementationSpecific"), p.get("path") or "/"
                up, text = _backend(p.get("backend") or {}, ns, services, slices, upstreams, key, problems)
                lines.append(f"{rule.get('host') or '*'} {path} ({kind}) -> {text}" + ("" if up else " (503)"))
                for exact, lpath in _location_keys(path, kind):
                    have = srv.locations.get((exact, lpath))
                    implied = kind == "Prefix" and exact   # the exact location a Prefix path adds
                    if have is not None and have.path_type != "default" and not (
                            have.path_type == "Prefix" and have.exact and kind == "Exact"):
                        if not implied and have.ingress != key:
                            problems.append(Problem(key, "PathConflict",
                                                    f"{rule.get('host') or '*'} {path} is served by the older "
                                                    f"Ingress {have.ingress}"))
                        continue
                    srv.locations[(exact, lpath)] = Location(lpath, exact, key, up, 503, kind)
        for t in spec.get("tls") or []:
            hosts = t.get("hosts") or [r.get("host") for r in spec.get("rules") or [] if r.get("host")]
            name = t.get("secretName")
            cert = None
            if name:
                sec = secrets.get((ns, name))
                why = None
                if sec is None:
                    why = f"Secret \"{ns}/{name}\" not found"
                elif sec.get("type") != TLS_TYPE:
                    why = f"Secret \"{ns}/{name}\" is of type {sec.get('type')!r}, not {TLS_TYPE}"
                else:
                    pair = _secret_pair(sec)
                    why = "its data is not base64" if pair is None else cert_problem(*pair)
                    if why:
                        why = f"Secret \"{ns}/{name}\": {why}"
                if why:
                    problems.append(Problem(key, "InvalidCertificate",
                                            f"{why}; {', '.join(hosts) or 'its hosts'} served with the default "
                                            "(self-signed) certificate"))
                else:
                    crt, k = pair
                    pem = crt.rstrip(b"\n") + b"\n" + k.rstrip(b"\n") + b"\n"
                    cert = f"{ns}-{name}-{hashlib.sha256(pem).hexdigest()[:12]}.pem"
                    certs[cert] = pem
            for h in hosts:
                srv = servers.get(h)
                if srv is None:
                    srv = servers[h] = Server(h)
                    srv.locations[(False, "/")] = Location("/", False, "", None, 404, "default")
                if not srv.tls:
                    srv.tls, srv.cert = True, cert
        lines.extend(f"tls {', '.join(t.get('hosts') or []) or '*'} -> secret {t.get('secretName') or '(none)'}"
                     for t in spec.get("tls") or [])
    order = ["_"] + sorted(h for h in servers if h != "_")
    problems = list({(x.ingress, x.reason, x.message): x for x in problems}.values())
    return Plan([servers[h] for h in order], dict(sorted(upstreams.items())), certs, problems,
                [_key(i) for i in ings], backends)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _location_order(loc: Location) -> tuple:
    return (not loc.exact, -len(loc.path), loc.path)


def render(p: Plan, conf_dir: str, run_dir: str, settings: Settings | None = None) -> str:
    """nginx.conf's text for `p` (certificates under `conf_dir`/ssl, pid and temp files under `run_dir`)."""
    settings = settings or Settings()
    ssl = f"{conf_dir}/ssl"
    out = [
        "# rendered by netlab (netlab/ingress/config.py) from the lab's store; published by the control loop",
        "daemon off;",
        "master_process on;",
        # the workers load certificates at the handshake from the lab's 0600 files: root of the pod's
        # sandbox, as the master
        "user root root;",
        f"worker_processes {settings.worker_processes};",
        f"pid {run_dir}/nginx.pid;",
        "error_log stderr notice;",
        "events {",
        "    worker_connections 16384;",
        "}",
        "http {",
        f"    client_body_temp_path {run_dir}/client-body;",
        f"    proxy_temp_path {run_dir}/proxy;",
        f"    fastcgi_temp_path {run_dir}/fastcgi;",
        f"    uwsgi_temp_path {run_dir}/uwsgi;",
        f"    scgi_temp_path {run_dir}/scgi;",
        "    access_log off;",
        "    default_type text/html;",
        "    keepalive_timeout 75s;",
        "    keepalive_requests 1000;",
        "    server_names_hash_bucket_size 256;",
        "    server_names_hash_max_size 65536;",
        "    map_hash_bucket_size 256;",
        "    map_hash_max_size 65536;",
        "    ssl_protocols TLSv1.2 TLSv1.3;",
        # the certificate by the name the client asked for (SNI), loaded at the handshake: one SSL
        # context per server would load every certificate for every server at each reload (about 1 ms
        # a server); hosts without a certificate of their own, and clients without SNI, get the default
        "    map $ssl_server_name $netlab_certificate {",
        "        hostnames;",
        f"        default {ssl}/{DEFAULT_CERT};",
        *[f"        {srv.host} {ssl}/{srv.cert};" for srv in p.servers if srv.cert and srv.host != "_"],
        "    }",
        "    ssl_certificate $netlab_certificate;",
        "    ssl_certificate_key $netlab_certificate;",
        "    ssl_session_cache shared:SSL:10m;",
        "    proxy_connect_timeout 5s;",
        "    proxy_send_timeout 60s;",
        "    proxy_read_timeout 60s;",
        "    proxy_next_upstream error timeout;",
        "    proxy_http_version 1.1;",
        "    proxy_set_header Connection \"\";",
        "    proxy_set_header Host $host;",
        "    proxy_set_header X-Request-ID $request_id;",
        "    proxy_set_header X-Real-IP $remote_addr;",
        "    proxy_set_header X-Forwarded-For $remote_addr;",
        "    proxy_set_header X-Forwarded-Host $host;",
        "    proxy_set_header X-Forwarded-Port $server_port;",
        "    proxy_set_header X-Forwarded-Proto $scheme;",
        "    proxy_set_header X-Forwarded-Scheme $scheme;",
        "    proxy_set_header X-Scheme $scheme;",
        f"    add_header {POD_HEADER} $netlab_pod always;",
        "    map $upstream_addr $netlab_pod {",
        "        default \"\";",
    ]
    pods = {f"{ip}:{port}": pod for u in p.upstreams.values() for ip, port, pod in u.servers if pod}
    out += [f"        {_quote(addr)} {_quote(pod)};" for addr, pod in sorted(pods.items())]
    out.append("    }")
    for u in p.upstreams.values():
        out.append(f"    upstream {u.name} {{")
        out += [f"        server {ip}:{port} max_fails=0;" for ip, port, _ in u.servers]
        out += ["        keepalive 32;", "    }"]
    for srv in p.servers:
        catch_all = srv.host == "_"
        flags = " default_server reuseport" if catch_all else ""
        out += ["    server {",
                f"        server_name {srv.host};",
                f"        listen 80{flags};",
                f"        listen 443 ssl{flags};"]
        if srv.tls:
            out += ["        if ($scheme = http) {", "            return 308 https://$host$request_uri;", "        }"]
        for loc in sorted(srv.locations.values(), key=_location_order):
            text = _quote(loc.path) if re.search(r"[\s;{}\"'\\]", loc.path) else loc.path
            out.append(f"        location {'= ' if loc.exact else ''}{text} {{")
            if loc.ingress:
                out.append(f"            # {loc.ingress} ({loc.path_type})")
            if loc.upstream:
                out.append(f"            proxy_pass http://{loc.upstream};")
            else:
                out.append(f"            return {loc.status};")
            out.append("        }")
        out.append("    }")
    out.append("}")
    return "\n".join(out) + "\n"


def route(p: Plan, host: str, path: str) -> tuple[Server, Location]:
    """The server and location nginx picks for a request (pure): the server whose name is the host, else
    the longest wildcard (`*.suffix`) matching it, else the catch-all; then an exact location equal to
    the path, else the longest prefix location the path starts with."""
    servers = {s.host: s for s in p.servers}
    srv = servers.get(host)
    if srv is None:
        wild = [s for h, s in servers.items() if h.startswith("*.") and host.endswith(h[1:])]
        srv = max(wild, key=lambda s: len(s.host)) if wild else servers["_"]
    path = path.split("?", 1)[0] or "/"
    exact = srv.locations.get((True, path))
    if exact is not None:
        return srv, exact
    prefixes = [loc for (ex, lp), loc in srv.locations.items() if not ex and path.startswith(lp)]
    return srv, max(prefixes, key=lambda loc: len(loc.path))
