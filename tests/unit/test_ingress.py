"""Ingress (issue 14): the kinds' validation, the Cluster document's `ingress:` map and the add-on's
objects, which Ingresses ingress-nginx serves, the nginx configuration (golden), status and events."""
from __future__ import annotations

import base64

import pytest

from netlab.errors import SpecError
from netlab.ingress import addon, config, status
from netlab.live.objects import scenario_objects
from netlab.workload.images import recognise

from . import golden
from .scenarios import cluster, load

# a structurally valid PEM pair (DER sequences); openssl is not asked in unit tests
_DER = base64.b64encode(b"\x30\x03\x02\x01\x00").decode()
CRT = f"-----BEGIN CERTIFICATE-----\n{_DER}\n-----END CERTIFICATE-----\n"
KEY = f"-----BEGIN PRIVATE KEY-----\n{_DER}\n-----END PRIVATE KEY-----\n"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def ingress(name="web", rules=(), ns="default", cls="nginx", created="2026-01-01T00:00:00Z", annotations=None,
            **spec):
    md = {"name": name, "namespace": ns, "uid": f"uid-{ns}-{name}", "creationTimestamp": created}
    if annotations:
        md["annotations"] = annotations
    s = dict(spec)
    if cls:
        s["ingressClassName"] = cls
    if rules:
        s["rules"] = list(rules)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": md, "spec": s}


def rule(host, *paths):
    r = {"http": {"paths": [{"path": p, "pathType": t, "backend": backend(s, port)} for p, t, s, port in paths]}}
    if host:
        r["host"] = host
    return r


def backend(svc, port=80):
    return {"service": {"name": svc, "port": {"number": port} if isinstance(port, int) else {"name": port}}}


def svc(name, ns="default", port=80, pname="http", type_="ClusterIP"):
    return {"kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"type": type_, "ports": [{"name": pname, "port": port, "targetPort": 8080}]}}


def eps(svc_name, *pods, ns="default", pname="http", ready=True):
    return {"kind": "EndpointSlice", "metadata": {"name": f"{svc_name}-x", "namespace": ns,
                                                  "labels": {"kubernetes.io/service-name": svc_name}},
            "ports": [{"name": pname, "port": 8080}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}, "targetRef": {"name": pod}}
                          for pod, ip in pods]}


NGINX_CLASS = {"kind": "IngressClass", "metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}}
OTHER_CLASS = {"kind": "IngressClass", "metadata": {"name": "traefik"}, "spec": {"controller": "traefik.io/ingress"}}


def store_objs():
    return {
        "IngressClass": [NGINX_CLASS, OTHER_CLASS],
        "Service": [svc("foo"), svc("bar"), svc("empty"), svc("dflt")],
        "EndpointSlice": [eps("foo", ("foo-1", "10.244.1.2"), ("foo-2", "10.244.2.2")),
                          eps("bar", ("bar-1", "10.244.1.3")), eps("dflt", ("dflt-1", "10.244.1.9"))],
        "Secret": [{"kind": "Secret", "metadata": {"name": "tls", "namespace": "default"}, "type": "kubernetes.io/tls",
                    "data": {"tls.crt": b64(CRT), "tls.key": b64(KEY)}},
                   {"kind": "Secret", "metadata": {"name": "junk", "namespace": "default"}, "type": "kubernetes.io/tls",
                    "data": {"tls.crt": b64("not a certificate"), "tls.key": b64(KEY)}}],
        "Ingress": [
            ingress("web", [rule("foo.example", ("/", "Prefix", "foo", 80), ("/api", "Prefix", "bar", "http"),
                                 ("/exact", "Exact", "bar", 80), ("/impl", "ImplementationSpecific", "bar", 80),
                                 ("/gone", "Exact", "nothere", 80), ("/noport", "Exact", "foo", 81),
                                 ("/none", "Exact", "empty", 80))],
                    tls=[{"hosts": ["foo.example"], "secretName": "tls"}]),
            # newer: its /api on foo.example loses to web's; its own host is served
            ingress("later", [rule("foo.example", ("/api", "Prefix", "foo", 80)),
                              rule("bar.example", ("/", "Prefix", "bar", 80))], created="2026-01-02T00:00:00Z",
                    tls=[{"hosts": ["bar.example"], "secretName": "junk"}], defaultBackend=backend("dflt")),
            ingress("catchall", [], defaultBackend=backend("dflt"), created="2026-01-03T00:00:00Z"),
            ingress("theirs", [rule("t.example", ("/", "Prefix", "foo", 80))], cls="traefik"),
            ingress("annotated", [rule("a.example", ("/", "Prefix", "foo", 80))], cls=None,
                    annotations={"kubernetes.io/ingress.class": "nginx"}),
            ingress("annotated-other", [rule("o.example", ("/", "Prefix", "foo", 80))], cls=None,
                    annotations={"kubernetes.io/ingress.class": "haproxy"}),
            ingress("classless", [rule("c.example", ("/", "Prefix", "foo", 80))], cls=None),
        ],
    }


def test_nginx_conf_golden():
    p = config.plan(store_objs(), config.Settings())
    golden.check("ingress_nginx_conf", config.render(p, "/etc/ingress-controller", "/tmp/nginx"), "nginx.conf differs")


def test_which_ingresses_are_ours():
    p = config.plan(store_objs(), config.Settings())
    assert p.ours == ["default/annotated", "default/web", "default/later", "default/catchall"]
    objs = store_objs()
    objs["IngressClass"][0] = dict(NGINX_CLASS, metadata={"name": "nginx", "annotations": {
        "ingressclass.kubernetes.io/is-default-class": "true"}})
    assert "default/classless" in config.plan(objs, config.Settings()).ours


def test_locations_follow_ingress_nginx_semantics():
    p = config.plan(store_objs(), config.Settings())
    foo = next(s for s in p.servers if s.host == "foo.example")
    locs = {(exact, path): (loc.upstream, loc.ingress) for (exact, path), loc in foo.locations.items()}
    # Prefix /api: element-wise (a prefix location /api/ and the exact /api); the older Ingress wins
    assert locs[(False, "/api/")] == ("default-bar-http", "default/web")
    assert locs[(True, "/api")] == ("default-bar-http", "default/web")
    assert locs[(True, "/exact")] == ("default-bar-80", "default/web")
    assert locs[(False, "/impl")] == ("default-bar-80", "default/web")     # a plain nginx prefix
    assert locs[(True, "/gone")] == (None, "default/web")                   # 503
    assert locs[(True, "/noport")] == (None, "default/web")
    assert locs[(True, "/none")] == (None, "default/web")
    # the upstreams are the pods' addresses and target ports, not the ClusterIP
    assert p.upstreams["default-foo-80"].servers == [("10.244.1.2", 8080, "foo-1"), ("10.244.2.2", 8080, "foo-2")]
    # later's defaultBackend serves its own host's "/" only if it made the server; the catch-all's is
    # the defaultBackend of the Ingress without rules
    bar = next(s for s in p.servers if s.host == "bar.example")
    assert bar.locations[(False, "/")].upstream == "default-bar-80"
    assert p.servers[0].host == "_" and p.servers[0].locations[(False, "/")].upstream == "default-dflt-80"


def test_exact_wins_over_the_exact_location_a_prefix_adds():
    objs = store_objs()
    objs["Ingress"] = [ingress("a", [rule("h", ("/p", "Prefix", "foo", 80))]),
                       ingress("b", [rule("h", ("/p", "Exact", "bar", 80))], created="2026-02-01T00:00:00Z")]
    srv = next(s for s in config.plan(objs, config.Settings()).servers if s.host == "h")
    assert srv.locations[(True, "/p")].upstream == "default-bar-80"
    assert srv.locations[(False, "/p/")].upstream == "default-foo-80"


def test_problems_name_the_reason():
    p = config.plan(store_objs(), config.Settings())
    got = {(x.ingress, x.reason) for x in p.problems}
    assert ("default/web", "ServiceNotFound") in got
    assert ("default/web", "PortNotFound") in got
    assert ("default/web", "NoEndpoints") in got
    assert ("default/later", "PathConflict") in got
    bad = next(x for x in p.problems if x.reason == "InvalidCertificate")
    assert bad.ingress == "default/later" and "tls.crt holds no PEM certificate" in bad.message
    # the bad Secret's host is served with the default certificate; the good one with its own
    servers = {s.host: s for s in p.servers}
    assert servers["bar.example"].tls and servers["bar.example"].cert is None
    assert servers["foo.example"].cert.startswith("default-tls-") and servers["foo.example"].cert in p.certs


def test_a_secret_that_is_not_tls_or_missing():
    objs = store_objs()
    objs["Secret"][0]["type"] = "Opaque"
    objs["Ingress"][1]["spec"]["tls"] = [{"hosts": ["bar.example"], "secretName": "nope"}]
    msgs = [x.message for x in config.plan(objs, config.Settings()).problems if x.reason == "InvalidCertificate"]
    assert any("is of type 'Opaque'" in m for m in msgs)
    assert any('Secret "default/nope" not found' in m for m in msgs)


def test_status_addresses_and_events():
    p = config.plan(store_objs(), config.Settings())
    pods = [{"metadata": {"name": "c"}, "spec": {"nodeName": "w1"}, "status": {"phase": "Running"}}]
    nodes = [{"metadata": {"name": n}, "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}
             for n, ip in (("cp", "172.18.0.2"), ("w1", "172.18.0.3"))]
    addr = status.addresses("NodePort", [], pods, nodes)
    assert addr == [{"ip": "172.18.0.3"}]
    assert status.addresses("LoadBalancer", ["172.18.255.200"], pods, nodes) == [{"ip": "172.18.255.200"}]
    ings = store_objs()["Ingress"]
    updates, events = status.decide(ings, p, addr, [])
    assert {u["metadata"]["name"] for u in updates} == {"web", "later", "catchall", "annotated"}
    assert all(u["status"] == {"loadBalancer": {"ingress": [{"ip": "172.18.0.3"}]}} for u in updates)
    reasons = {(e[0]["metadata"]["name"], e[2]) for e in events}
    assert ("web", "ServiceNotFound") in reasons and ("web", "Sync") in reasons
    assert not any(r == "NoEndpoints" for _, r in reasons)
    assert not any(n == "theirs" for n, _ in reasons)
    # an event the Ingress already has is not repeated
    have = [{"involvedObject": {"kind": "Ingress", "uid": e[0]["metadata"]["uid"]}, "reason": e[2], "message": e[3]}
            for e in events]
    assert status.decide(ings, p, addr, have)[1] == []


BAD = [
    ({"rules": [{"host": "h", "http": {"paths": [{"path": "/", "backend": backend("s")}]}}]},
     "spec.rules[0].http.paths[0].pathType is required; add pathType: one of Exact, Prefix, ImplementationSpecific"),
    ({"rules": [{"http": {"paths": [{"path": "/", "pathType": "Regex", "backend": backend("s")}]}}]},
     "spec.rules[0].http.paths[0].pathType 'Regex' is not supported; use one of: Exact, Prefix, ImplementationSpecific"),
    ({"rules": [{"http": {"paths": [{"path": "api", "pathType": "Prefix", "backend": backend("s")}]}}]},
     "spec.rules[0].http.paths[0].path 'api' must be an absolute path; start it with '/'"),
    ({"rules": [{"http": {"paths": [{"path": "/a//b", "pathType": "Exact", "backend": backend("s")}]}}]},
     "spec.rules[0].http.paths[0].path '/a//b' must not contain '//'; write the path in its plain form"),
    ({"rules": [{"host": "10.0.0.1", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend("s")}]}}]},
     "spec.rules[0].host '10.0.0.1' is an IP address; use a host name (rules match the Host header)"),
    ({"rules": [{"host": "Foo_bar", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend("s")}]}}]},
     "spec.rules[0].host 'Foo_bar' is not a valid host name; use lowercase letters, digits, '-' and '.' (a leading "
     "'*.' for a wildcard)"),
    ({"defaultBackend": {"resource": {"apiGroup": "k8s.example.com", "kind": "Bucket", "name": "b"}}},
     "spec.defaultBackend.resource is a resource backend: ingress-nginx serves Service backends only; use service: "
     "{name: NAME, port: {number: PORT}}"),
    ({"defaultBackend": {"service": {"name": "s", "port": {"number": 80, "name": "http"}}}},
     "spec.defaultBackend.service.port.name is set with number; give one of port.number and port.name"),
    ({"defaultBackend": {"service": {"name": "s", "port": {"number": "80"}}}},
     "spec.defaultBackend.service.port.number must be an integer, not the string '80'; write the number without quotes"),
    ({"defaultBackend": {"service": {"name": "s", "port": {"number": 70000}}}},
     "spec.defaultBackend.service.port.number 70000 is out of range 1-65535; use a number from 1 to 65535"),
    ({"defaultBackend": {"service": {"name": "s"}}},
     "spec.defaultBackend.service.port.number is required (or port.name); add port: {number: 80}"),
    ({"ingressClassName": "nginx"},
     "spec.rules must list a rule (or give a defaultBackend); add rules: [{host: foo.example.com, http: {paths: "
     "[...]}}] or defaultBackend"),
    ({"defaultBackend": backend("s"), "tls": [{"hosts": ["a.example"], "secretName": 5}]},
     "spec.tls[0].secretName must be a string, not an integer; quote it, e.g. \"5\""),
    ({"defaultBackend": backend("s"), "rulez": []},
     "unknown field spec.rulez; did you mean rules?"),
]


@pytest.mark.parametrize("spec, line", BAD)
def test_bad_ingress_is_one_line(spec, line):
    doc = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"}, "spec": spec}
    with pytest.raises(SpecError) as e:
        load(cluster(), doc)
    assert str(e.value) == f"Ingress web: {line}"
    assert e.value.exit_code == 2


def test_class_annotation_and_field_must_agree():
    doc = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": "web", "annotations": {"kubernetes.io/ingress.class": "haproxy"}},
           "spec": {"ingressClassName": "nginx", "defaultBackend": backend("s")}}
    with pytest.raises(SpecError, match="spec.ingressClassName 'nginx' differs from annotation kubernetes.io/"
                                        "ingress.class 'haproxy'; drop the deprecated annotation"):
        load(cluster(), doc)


def test_ingressclass_needs_a_controller():
    with pytest.raises(SpecError) as e:
        load(cluster(), {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "x"},
                         "spec": {}})
    assert str(e.value) == "IngressClass x: spec.controller is required; add controller: k8s.io/ingress-nginx"
    with pytest.raises(SpecError, match="is not a domain-prefixed path"):
        load(cluster(), {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "x"},
                         "spec": {"controller": "nginx"}})


def test_cluster_ingress_map_and_addon_objects():
    c = cluster()
    c["ingress"] = {"httpNodePort": 30080, "httpsNodePort": 30443, "defaultClass": True}
    s = load(c)
    cfg = s.networking.ingress
    assert (cfg.class_name, cfg.service_type, cfg.http_node_port, cfg.https_node_port) == ("nginx", "NodePort", 30080, 30443)
    objs = scenario_objects(s, "/run/netlab/t/dns")
    by = {(o["kind"], o["metadata"]["name"]): o for o in objs}
    assert by[("IngressClass", "nginx")]["metadata"]["annotations"] == {"ingressclass.kubernetes.io/is-default-class": "true"}
    d = by[("Deployment", "ingress-nginx-controller")]
    assert d["metadata"]["namespace"] == "ingress-nginx"
    vols = d["spec"]["template"]["spec"]["volumes"]
    assert vols[0]["hostPath"]["path"] == "/run/netlab/t/ingress"
    ports = by[("Service", "ingress-nginx-controller")]["spec"]["ports"]
    assert [(p["port"], p["nodePort"]) for p in ports] == [(80, 30080), (443, 30443)]
    assert ("Namespace", "ingress-nginx") in by
    c2 = cluster()
    assert not any(o["kind"] == "IngressClass" for o in scenario_objects(load(c2), "/run/netlab/t/dns"))
    # the controller's image runs netlab's supervisor of the real nginx
    cont = d["spec"]["template"]["spec"]["containers"][0]
    r = recognise(cont["image"], cont.get("command") or [], cont["args"], {})
    assert r.command[1:4] == ["-m", "netlab.ingress.controller", "--conf-dir"]


@pytest.mark.parametrize("ing, line", [
    ({"serviceType": "ClusterIP"}, "ingress.serviceType 'ClusterIP' is not supported; use one of: NodePort, LoadBalancer"),
    ({"httpNodePort": 80}, "ingress.httpNodePort 80 is out of range 30000-32767; use a number from 30000 to 32767"),
    ({"httpNodePort": 30080, "httpsNodePort": 30080}, "ingress.httpsNodePort 30080 is httpNodePort too; give the two "
     "node ports different numbers"),
    ({"loadBalancerIP": "172.18.255.200"}, "ingress.loadBalancerIP is set but serviceType is NodePort; set "
     "serviceType: LoadBalancer"),
    ({"replica": 2}, "unknown field ingress.replica; did you mean replicas?"),
])
def test_bad_ingress_map(ing, line):
    c = cluster()
    c["ingress"] = ing
    with pytest.raises(SpecError) as e:
        load(c)
    assert str(e.value).endswith(line)


def test_addon_objects_leave_the_users_own():
    from netlab.spec.types import IngressConfig
    mine = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "nginx"},
            "spec": {"controller": "k8s.io/ingress-nginx"}}
    out = addon.objects(IngressConfig(), "/x", [mine])
    assert not any(o["kind"] == "IngressClass" for o in out)


@pytest.mark.skipif(not __import__("os").path.exists("/usr/sbin/nginx"), reason="nginx is not installed")
def test_the_rendered_configuration_passes_nginx_t(tmp_path):
    """The golden configuration, with real certificate files, is one that nginx itself accepts."""
    import subprocess

    from netlab.live.ingresspub import fake_certificate
    p = config.plan(store_objs(), config.Settings())
    (tmp_path / "ssl").mkdir()
    pem = fake_certificate()
    for name in [config.DEFAULT_CERT, *p.certs]:
        (tmp_path / "ssl" / name).write_bytes(pem)
    (tmp_path / "run").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(config.render(p, str(tmp_path), str(tmp_path / "run")))
    r = subprocess.run(["/usr/sbin/nginx", "-t", "-q", "-c", str(conf), "-p", f"{tmp_path}/run/", "-e", "stderr"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_route_picks_the_server_and_location_nginx_picks():
    p = config.plan(store_objs(), config.Settings())
    assert config.route(p, "foo.example", "/api")[1].upstream == "default-bar-http"        # = /api
    assert config.route(p, "foo.example", "/api/v1?x=1")[1].upstream == "default-bar-http"  # /api/
    assert config.route(p, "foo.example", "/apix")[1].upstream == "default-foo-80"          # element-wise: not /api
    assert config.route(p, "foo.example", "/implx")[1].upstream == "default-bar-80"         # plain prefix
    assert config.route(p, "foo.example", "/exact/x")[1].upstream == "default-foo-80"
    assert config.route(p, "nobody.example", "/")[0].host == "_"


def test_probe_target_expects_the_backend_pods():
    from netlab.probe.ingress import _split
    ings = store_objs()["Ingress"]
    ing, host, path = _split("web/foo.example/api/v1", ings)
    assert (ing["metadata"]["name"], host, path) == ("web", "foo.example", "/api/v1")
    assert _split("web/foo.example", ings)[2] == "/"
    with pytest.raises(Exception, match="no Ingress 'nope'"):
        _split("nope/h/p", ings)


def test_an_ingress_without_the_addon_is_stored_and_said_to_be_unserved():
    doc = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"},
           "spec": {"defaultBackend": backend("s")}}
    s = load(cluster(), doc)
    assert s.inert == ["Ingress web (no ingress controller: add an `ingress:` map to the Cluster document)"]
    c = cluster()
    c["ingress"] = {}
    assert load(c, doc).inert == []


def test_upstream_names_that_would_clash_are_kept_apart():
    objs = {"IngressClass": [NGINX_CLASS],
            "Service": [svc("b-c", ns="a"), svc("c", ns="a-b")],
            "EndpointSlice": [eps("b-c", ("p1", "10.244.1.2"), ns="a"), eps("c", ("p2", "10.244.1.3"), ns="a-b")],
            "Ingress": [ingress("x", [rule("h1", ("/", "Prefix", "b-c", 80))], ns="a"),
                        ingress("y", [rule("h2", ("/", "Prefix", "c", 80))], ns="a-b")]}
    p = config.plan(objs, config.Settings())
    h1 = config.route(p, "h1", "/")[1].upstream
    h2 = config.route(p, "h2", "/")[1].upstream
    assert h1 != h2
    assert p.upstreams[h1].servers[0][2] == "p1" and p.upstreams[h2].servers[0][2] == "p2"


def test_a_loadbalancer_controller_service():
    c = cluster()
    c["ingress"] = {"serviceType": "LoadBalancer", "loadBalancerIP": "172.18.255.200", "replicas": 2}
    objs = scenario_objects(load(c), "/run/netlab/t/dns")
    svc_ = next(o for o in objs if o["kind"] == "Service" and o["metadata"]["name"] == "ingress-nginx-controller")
    assert svc_["spec"]["type"] == "LoadBalancer" and svc_["spec"]["loadBalancerIP"] == "172.18.255.200"
    assert all("nodePort" not in p for p in svc_["spec"]["ports"])
    dep = next(o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "ingress-nginx-controller")
    assert dep["spec"]["replicas"] == 2


@pytest.mark.skipif(not __import__("os").path.exists("/usr/sbin/nginx"), reason="nginx is not installed")
def test_the_supervisor_checks_then_reloads_and_keeps_serving_a_refused_change(tmp_path):
    """netlab.ingress.controller: the first configuration starts nginx, a changed one is checked with
    `nginx -t` and loaded with SIGHUP (same master), one nginx refuses is never loaded."""
    import socket
    import time
    import urllib.request

    from netlab.ingress.controller import Supervisor
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    conf_dir, run_dir = tmp_path / "conf", tmp_path / "run"
    conf_dir.mkdir()

    def conf(body: str) -> str:
        return (f"daemon off; pid {run_dir}/nginx.pid; error_log stderr notice;\nevents {{}}\nhttp {{ access_log off;\n"
                f"client_body_temp_path {run_dir}/cb; proxy_temp_path {run_dir}/p; fastcgi_temp_path {run_dir}/f;\n"
                f"uwsgi_temp_path {run_dir}/u; scgi_temp_path {run_dir}/s;\n"
                f"server {{ listen 127.0.0.1:{port}; location / {{ {body} }} }} }}\n")

    def get() -> str:
        err = None
        for _ in range(50):
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read().decode()
            except OSError as e:
                err = e
                time.sleep(0.1)
        return f"no answer: {err}"

    sup = Supervisor(str(conf_dir), str(run_dir))
    run_dir.mkdir()
    try:
        (conf_dir / "nginx.conf").write_text(conf('return 200 "one";'))
        sup.step()
        got = get()
        assert got == "one", (got, sup.proc and sup.proc.poll())
        pid = sup.proc.pid
        (conf_dir / "nginx.conf").write_text(conf('return 200 "two"; no_such_directive;'))
        sup.step()
        assert get() == "one" and sup.reloads == 0           # refused by nginx -t: not loaded
        (conf_dir / "nginx.conf").write_text(conf('return 200 "three";'))
        sup.step()
        assert sup.reloads == 1 and sup.proc.pid == pid      # SIGHUP to the same master
        # (for a moment after SIGHUP a worker of the old configuration may still accept a connection,
        # until it reads the master's order to finish: then only the new configuration answers)
        seen = []
        for _ in range(100):
            seen.append(get())
            if seen[-5:] == ["three"] * 5:
                break
            time.sleep(0.05)
        assert seen[-5:] == ["three"] * 5, seen
    finally:
        sup.stop()
        if sup.proc is not None:
            sup.proc.wait(timeout=10)
