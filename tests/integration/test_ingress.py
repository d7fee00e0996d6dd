"""Ingress served by a real nginx (issue 14): the ingress-nginx add-on of a lab, real clients (curl, wrk)
on the external host through the controller Service's NodePort.

One lab for the module (its controller pod runs the real /usr/sbin/nginx): host and path routing to
the right backends (serve-hostname backends answer their pod's name on any path), Exact vs Prefix,
the default backend, TLS with a self-signed certificate made here with the openssl CLI (curl --cacert
--resolve), a TLS Secret that is not a certificate (the default certificate and an event), a missing
backend Service or port (503, and `describe ingress` says why), X-Forwarded-For as the backend sees
it, an Ingress change applied under load without a failed request, bad input refused (exit 2,
nothing stored), `get ingress`, `netlab probe ingress/...`."""
from __future__ import annotations

import base64
import os
import re
import secrets
import subprocess
import tempfile

import pytest

from netlab.dataplane import lab as labmod

from .conftest import Lab, kubectl, netlab_cli, until

HTTP, HTTPS = 30080, 30443

SCENARIO = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
nodes: [{name: cp, role: control-plane}, {name: w1}]
dns: {replicas: 0}
ingress: {httpNodePort: 30080, httpsNodePort: 30443, externalTrafficPolicy: Local}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: foo}
spec:
  replicas: 2
  selector: {matchLabels: {app: foo}}
  template:
    metadata: {labels: {app: foo}}
    spec:
      containers: [{name: c, image: registry.k8s.io/e2e-test-images/agnhost:2.39, args: [serve-hostname],
                    ports: [{containerPort: 9376}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: bar}
spec:
  replicas: 1
  selector: {matchLabels: {app: bar}}
  template:
    metadata: {labels: {app: bar}}
    spec:
      containers: [{name: c, image: registry.k8s.io/e2e-test-images/agnhost:2.39, args: [serve-hostname],
                    ports: [{containerPort: 9376}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo}
spec:
  replicas: 1
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers: [{name: c, image: registry.k8s.io/e2e-test-images/agnhost:2.39, args: [netexec, --http-port=8080],
                    ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: foo}
spec: {selector: {app: foo}, ports: [{name: http, port: 80, targetPort: 9376}]}
---
apiVersion: v1
kind: Service
metadata: {name: bar}
spec: {selector: {app: bar}, ports: [{name: http, port: 80, targetPort: 9376}]}
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec: {selector: {app: echo}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Secret
metadata: {name: secure-tls}
type: kubernetes.io/tls
data: {tls.crt: CRT, tls.key: KEY}
---
apiVersion: v1
kind: Secret
metadata: {name: junk-tls}
type: kubernetes.io/tls
data: {tls.crt: bm90IGEgY2VydGlmaWNhdGU=, tls.key: bm90IGEga2V5}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  ingressClassName: nginx
  tls:
  - {hosts: [secure.example], secretName: secure-tls}
  - {hosts: [badtls.example], secretName: junk-tls}
  rules:
  - host: foo.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: foo, port: {number: 80}}}}
      - {path: /bar, pathType: Prefix, backend: {service: {name: bar, port: {name: http}}}}
      - {path: /exact, pathType: Exact, backend: {service: {name: bar, port: {number: 80}}}}
      - {path: /header, pathType: Exact, backend: {service: {name: echo, port: {number: 80}}}}
      - {path: /missing, pathType: Exact, backend: {service: {name: nothere, port: {number: 80}}}}
      - {path: /wrongport, pathType: Exact, backend: {service: {name: foo, port: {number: 8888}}}}
  - host: secure.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: foo, port: {number: 80}}}}
  - host: badtls.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: bar, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: fallback}
spec:
  ingressClassName: nginx
  defaultBackend: {service: {name: bar, port: {number: 80}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: theirs}
spec:
  ingressClassName: traefik
  rules:
  - host: foo.example
    http:
      paths:
      - {path: /other, pathType: Prefix, backend: {service: {name: bar, port: {number: 80}}}}
"""


def make_cert(d: str, host: str) -> tuple[str, str]:
    """A self-signed certificate for `host` and its key, made with the openssl CLI: (cert path, key path)."""
    crt, key = os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={host}",
                    "-addext", f"subjectAltName=DNS:{host}", "-keyout", key, "-out", crt],
                   check=True, capture_output=True, timeout=60)
    return crt, key


@pytest.fixture(scope="module")
def ing():
    lab = Lab(f"t-{secrets.token_hex(4)}")
    tmp = tempfile.mkdtemp(prefix="ingress-test-")
    try:
        crt, key = make_cert(tmp, "secure.example")
        b64 = [base64.b64encode(open(p, "rb").read()).decode() for p in (crt, key)]
        lab.up(SCENARIO.replace("CRT", b64[0]).replace("KEY", b64[1]))
        lab.tmp, lab.ca = tmp, crt
        # the controller's node: what the Ingress's status publishes (NodePort, as ingress-nginx does)
        lab.addr = until("the Ingress's address", lambda: _address(lab), timeout=60)
        until("nginx serving foo.example", lambda: curl(lab, "foo.example", "/").stdout.startswith("foo-"), timeout=60)
        yield lab
    finally:
        labmod.down(lab.name)
        subprocess.run(["rm", "-rf", tmp])


def _address(lab) -> str | None:
    rows = kubectl(lab, "get", "ingress", "web").stdout.splitlines()
    cols = rows[1].split()
    return cols[3] if len(cols) >= 7 and re.match(r"\d+\.\d+\.\d+\.\d+$", cols[3]) else None


def curl(lab, host: str, path: str, *extra: str, port: int = HTTP, scheme: str = "http"):
    """curl from the external host to the controller's node port with Host: `host`; stdout is the body,
    then a line with the status code."""
    url = f"{scheme}://{host}:{port}{path}"
    argv = ["curl", "-sS", "--max-time", "5", "--resolve", f"{host}:{port}:{lab.addr}", *extra, url]
    r = lab.ext_exec(argv)
    return r


def status(lab, host: str, path: str, *extra: str, **kw) -> tuple[int, str]:
    r = curl(lab, host, path, *extra, "-o", "/dev/stderr", "-w", "%{http_code}", **kw)
    return int(r.stdout or 0), r.stderr


def test_host_and_path_routing_to_the_backends(ing):
    foo = {p.name for p in ing.pods("foo-")}
    bar = {p.name for p in ing.pods("bar-")}
    assert len(foo) == 2 and len(bar) == 1
    seen = {curl(ing, "foo.example", "/").stdout for _ in range(12)}
    assert seen <= foo and seen, seen
    # Prefix is element-wise: /bar, /bar/ and /bar/x go to bar, /barx does not
    for path in ("/bar", "/bar/", "/bar/x/y"):
        assert curl(ing, "foo.example", path).stdout in bar, path
    assert curl(ing, "foo.example", "/barx").stdout in foo
    # Exact: /exact only
    assert curl(ing, "foo.example", "/exact").stdout in bar
    assert curl(ing, "foo.example", "/exact/x").stdout in foo
    # another class's Ingress is not served (its /other falls to foo's "/")
    assert curl(ing, "foo.example", "/other").stdout in foo
    # an unknown host: the catch-all server, the defaultBackend of the Ingress without rules
    assert curl(ing, "unknown.example", "/anything").stdout in bar


def test_default_404_without_a_default_backend(ing):
    kubectl(ing, "delete", "ingress", "fallback")
    try:
        until("the catch-all 404", lambda: status(ing, "unknown.example", "/")[0] == 404, timeout=30)
    finally:
        ing_text = SCENARIO.split("---\n")[-2]
        path = os.path.join(ing.tmp, "fallback.yaml")
        with open(path, "w") as f:
            f.write(ing_text)
        kubectl(ing, "apply", "-f", path)
    until("the default backend again", lambda: curl(ing, "unknown.example", "/").stdout.startswith("bar-"), timeout=30)


def test_annotate_with_another_class_takes_the_ingress_from_nginx_and_back(ing):
    """`netlab annotate` on a live Ingress: the deprecated class annotation, when set, decides whose it is (as
    ingress-nginx reads it, before spec.ingressClassName); naming another class takes its hosts from nginx (the
    catch-all's default backend answers instead), and removing the annotation gives them back."""
    foo = {p.name for p in ing.pods("foo-")}
    bar = {p.name for p in ing.pods("bar-")}
    r = kubectl(ing, "annotate", "ingress", "web", "kubernetes.io/ingress.class=traefik")
    assert r.stdout.strip() == "ingress.networking.k8s.io/web annotated", r.stdout
    try:
        until("foo.example left to the catch-all", lambda: curl(ing, "foo.example", "/").stdout in bar, timeout=30)
        assert curl(ing, "foo.example", "/bar").stdout in bar
    finally:
        kubectl(ing, "annotate", "ingress", "web", "kubernetes.io/ingress.class-")
    until("foo.example served by nginx again", lambda: curl(ing, "foo.example", "/").stdout in foo, timeout=30)
    annotations = kubectl(ing, "get", "ingress", "web", "-o", "json").stdout
    assert "kubernetes.io/ingress.class" not in annotations


def test_missing_backend_answers_503_and_describe_says_why(ing):
    assert status(ing, "foo.example", "/missing")[0] == 503
    assert status(ing, "foo.example", "/wrongport")[0] == 503
    out = kubectl(ing, "describe", "ingress", "web").stdout
    assert 'nothere:80 (<error: Service "default/nothere" not found' in out
    assert 'foo:8888 (<error: Service "default/foo" has no port 8888' in out
    assert re.search(r"Warning\s+ServiceNotFound\s+.*nginx-ingress-controller", out), out
    # the other rules are not broken by it
    assert curl(ing, "foo.example", "/exact").stdout.startswith("bar-")


def test_tls_with_the_test_certificate(ing):
    r = curl(ing, "secure.example", "/", "--cacert", ing.ca, "-v", port=HTTPS, scheme="https")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("foo-")
    assert "CN=secure.example" in r.stderr and "SSL certificate verify ok" in r.stderr
    # plain HTTP to a TLS host: ingress-nginx's ssl-redirect
    code, err = status(ing, "secure.example", "/x", "-v")
    assert code == 308 and "location: https://secure.example/x" in err.lower()


def test_a_secret_that_is_not_a_certificate_gets_the_default_one(ing):
    r = curl(ing, "badtls.example", "/", "-k", "-v", port=HTTPS, scheme="https")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("bar-")
    assert "Kubernetes Ingress Controller Fake Certificate" in r.stderr
    ev = kubectl(ing, "get", "events").stdout
    assert re.search(r"InvalidCertificate\s+ingress/web\s+Secret \"default/junk-tls\": tls.crt holds no PEM "
                     r"certificate; badtls.example served with the default", ev), ev


def test_x_forwarded_for_is_the_client(ing):
    ext = str(ing.cluster.external_ip)
    assert curl(ing, "foo.example", "/header?key=X-Forwarded-For").stdout == ext
    assert curl(ing, "foo.example", "/header?key=X-Real-IP").stdout == ext
    assert curl(ing, "foo.example", "/header?key=X-Forwarded-Proto").stdout == "http"
    assert curl(ing, "foo.example", "/header?key=Host").stdout in ("foo.example", "")


def test_get_ingress_columns(ing):
    rows = [r.split() for r in kubectl(ing, "get", "ingress").stdout.splitlines()]
    assert rows[0] == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    by = {r[0]: r for r in rows[1:]}
    assert by["web"][1:6] == ["nginx", "foo.example,secure.example,badtls.example", ing.addr, "80,", "443"]
    assert by["fallback"][1:5] == ["nginx", "*", ing.addr, "80"]
    assert by["theirs"][1:4] == ["traefik", "foo.example", "80"]   # not ours: no address
    node_ips = {str(n.ip) for n in ing.cluster.nodes}
    assert ing.addr in node_ips
    classes = kubectl(ing, "get", "ingressclass").stdout.split()
    assert classes[:4] == ["NAME", "CONTROLLER", "PARAMETERS", "AGE"] and "k8s.io/ingress-nginx" in classes


CHANGED = """apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: extra}
spec:
  ingressClassName: nginx
  rules:
  - host: foo.example
    http:
      paths:
      - {path: /new, pathType: Prefix, backend: {service: {name: bar, port: {number: 80}}}}
"""

LOAD = r"""
import sys, time, urllib.request, http.client
host, addr, port, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
ok = failed = 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    c = http.client.HTTPConnection(addr, port, timeout=5)
    try:
        c.request("GET", "/", headers={"Host": host})
        r = c.getresponse(); r.read()
        if r.status == 200: ok += 1
        else: failed += 1; print("status", r.status, file=sys.stderr)
    except Exception as e:
        failed += 1; print("error", e, file=sys.stderr)
    finally:
        c.close()
print(ok, failed)
"""


def test_an_ingress_change_under_load_fails_no_request(ing):
    """A counted client (a new connection per request, every one counted) runs through the apply of a
    new Ingress and nginx's reload: every request is answered 200, none fails; the new path serves."""
    import sys
    path = os.path.join(ing.tmp, "extra.yaml")
    with open(path, "w") as f:
        f.write(CHANGED)
    argv = labmod.netns_exec_argv(ing.cluster.external_netns,
                                  [sys.executable, "-c", LOAD, "foo.example", ing.addr, str(HTTP), "8"])
    client = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        import time
        time.sleep(1.5)
        kubectl(ing, "apply", "-f", path)
        until("the new path", lambda: curl(ing, "foo.example", "/new").stdout.startswith("bar-"), timeout=20)
        out, err = client.communicate(timeout=30)
    finally:
        if client.poll() is None:
            client.kill()
    ok, failed = map(int, out.split())
    assert failed == 0 and ok > 50, (ok, failed, err[-2000:])
    pod = [p for p in kubectl(ing, "get", "pods", "-n", "ingress-nginx").stdout.split() if p.startswith("ingress-nginx-")][0]
    logs = kubectl(ing, "logs", "-n", "ingress-nginx", pod).stdout
    kubectl(ing, "delete", "ingress", "extra")
    # the change went through nginx -t and nginx's own graceful reload (SIGHUP), not a restart
    assert "nginx reloaded" in logs and logs.count("nginx started") == 1, logs[-2000:]


@pytest.mark.parametrize("doc, line", [
    ("spec: {rules: [{host: a.example, http: {paths: [{path: /, backend: {service: {name: foo, port: {number: 80}}}}]}}]}",
     "Ingress bad: spec.rules[0].http.paths[0].pathType is required; add pathType: one of Exact, Prefix, "
     "ImplementationSpecific"),
    ("spec: {rules: [{host: a.example, http: {paths: [{path: x, pathType: Prefix, backend: {service: {name: foo, "
     "port: {number: 80}}}}]}}]}",
     "Ingress bad: spec.rules[0].http.paths[0].path 'x' must be an absolute path; start it with '/'"),
    ("spec: {defaultBackend: {service: {name: foo, port: {number: 80}}}, tls: [{hosts: [a.example], secretNam: x}]}",
     "Ingress bad: unknown field spec.tls[0].secretNam; did you mean secretName?"),
])
def test_bad_ingress_is_refused_and_nothing_stored(ing, doc, line):
    path = os.path.join(ing.tmp, "bad.yaml")
    with open(path, "w") as f:
        f.write("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: bad}\n" + doc + "\n")
    r = kubectl(ing, "apply", "-f", path, check=False)
    assert r.returncode == 2
    assert line in r.stderr, r.stderr
    assert "bad" not in kubectl(ing, "get", "ingress").stdout.split()


def test_probe_ingress_target_reports_the_pod(ing):
    r = kubectl(ing, "probe", "ingress/web/foo.example/bar", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    bar = [p.name for p in ing.pods("bar-")][0]
    assert bar in r.stdout, r.stdout


def test_exec_external_curl_with_a_host_header(ing):
    r = netlab_cli("exec", "--lab", ing.name, "--external", "--", "curl", "-s", "--max-time", "5", "-H", "Host: foo.example",
                f"http://{ing.addr}:{HTTP}/bar/x")
    assert r.stdout.strip() in {p.name for p in ing.pods("bar-")}, r.stdout + r.stderr


def test_kinds_ingress_guide_as_written(lab, tmp_path):
    """kind's Ingress guide (tests/data/corpus/kind-ingress-http-echo.yaml, its Ingress without a class)
    with the add-on's class made the default one: /foo and /bar reach their http-echo pods, as the guide's
    `curl localhost/foo/hostname` shows."""
    from pathlib import Path
    corpus = Path(__file__).resolve().parents[1] / "data" / "corpus" / "kind-ingress-http-echo.yaml"
    head = ("apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nnodes: [{name: cp, role: control-plane}, {name: w1}]\n"
            "dns: {replicas: 0}\ningress: {defaultClass: true, httpNodePort: 30080}\n---\n")
    lab.up(head + corpus.read_text())
    node = str(lab.cluster.nodes[0].ip)

    def get(path):
        r = lab.ext_exec(["curl", "-s", "--max-time", "3", f"http://{node}:30080{path}"])
        return r.stdout.strip()
    until("the guide's /foo/hostname", lambda: get("/foo/hostname") == "foo", timeout=60)
    # bar's pod may be Ready a moment after foo's: nginx answers 503 for /bar until its upstream has an endpoint
    until("the guide's /bar/hostname", lambda: get("/bar/hostname") == "bar", timeout=30,
          detail=lambda: f"/bar/hostname answered: {get('/bar/hostname')[:200]}")
    assert get("/foo") == "foo" and get("/foox") != "foo"
    rows = kubectl(lab, "get", "ingress").stdout.splitlines()
    assert rows[1].split()[:3] == ["example-ingress", "<none>", "*"]


def test_upstreams_are_the_pods_and_follow_their_endpoints(ing):
    """(Last of the module's tests on the shared lab: bar's pod is made anew here.)
    nginx proxies to the ready endpoints' pod IPs and target port (not the ClusterIP); scaled to zero
    the backend answers 503, scaled back it serves again (the configuration follows the EndpointSlices)."""
    from netlab.dataplane import layout
    with open(os.path.join(layout.ingress_dir(ing.name), "nginx.conf")) as f:
        conf = f.read()
    ips = {str(p.ip) for p in ing.pods("foo-")}
    block = re.search(r"upstream default-foo-80 \{(.*?)\}", conf, re.S).group(1)
    assert set(re.findall(r"server (\S+):9376", block)) == ips
    svc_ip = str(next(s for s in ing.cluster.services if s.key == "default/foo").cluster_ip)
    assert svc_ip not in conf
    kubectl(ing, "scale", "deployment", "bar", "--replicas=0")
    try:
        until("503 without endpoints", lambda: status(ing, "foo.example", "/bar")[0] == 503, timeout=60)
        assert "no ready endpoints" in kubectl(ing, "describe", "ingress", "web").stdout
    finally:
        kubectl(ing, "scale", "deployment", "bar", "--replicas=1")
    until("bar again", lambda: curl(ing, "foo.example", "/bar").stdout.startswith("bar-"), timeout=60)
