"""Pods resolve like pods, end to end (issue 13): the kubelet-written /etc/resolv.conf (search path,
ndots:5) and the lab's cluster DNS (the coredns pods behind kube-dns) together, through the programs a
user runs in a pod, unmodified: getent (glibc), dig +search, nslookup, curl by Service name. Nothing
in these tests points a client at the DNS server by hand."""
from __future__ import annotations

import json
import re

import pytest

from .conftest import kubectl, until

SCENARIO = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: e2e
nodes: [{name: n1, role: control-plane}, {name: n2}]
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: n2
  containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata: {name: tight}
spec:
  nodeName: n1
  dnsPolicy: None
  dnsConfig:
    nameservers: [10.96.0.10]
    searches: [default.svc.cluster.local, svc.cluster.local]
    options: [{name: ndots, value: "1"}]
  containers: [{name: c, image: busybox}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx, ports: [{name: http, containerPort: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: other}
spec:
  selector: {app: nothing}
  ports: [{port: 80}]
"""


def cluster_ip(lab, name: str, namespace: str = "default") -> str:
    svc = json.loads(kubectl(lab, "get", "svc", name, "-n", namespace, "-o", "json").stdout)
    return svc["spec"]["clusterIP"]


def getent(lab, pod: str, name: str) -> str:
    """The address glibc's resolver gives `name` in `pod` (getent ahostsv4: A only, as a v4 client asks)."""
    r = lab.pod_exec(pod, ["getent", "ahostsv4", name])
    return r.stdout.split()[0] if r.returncode == 0 and r.stdout.split() else ""


@pytest.fixture
def e2e(lab):
    lab.up(SCENARIO)
    # the cluster DNS answers once its pods are Ready (their readiness probe: /ready on 8181)
    until("kubernetes.default resolves in the client", lambda: getent(lab, "client", "kubernetes.default"), timeout=90)
    return lab


def test_short_partly_qualified_and_absolute_names_through_the_search_path(e2e):
    lab = e2e
    web, other = cluster_ip(lab, "web"), cluster_ip(lab, "web", "other")
    assert web != other
    for name in ("web", "web.default", "web.default.svc", "web.default.svc.cluster.local",
                 "web.default.svc.cluster.local."):
        assert getent(lab, "client", name) == web, name
    assert getent(lab, "client", "web.other") == other
    assert getent(lab, "client", "kubernetes.default") == "10.96.0.1"
    # a name that exists nowhere: glibc's "not found" (exit 2), after the whole search path
    r = lab.pod_exec("client", ["getent", "ahostsv4", "nosuch"])
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)


def test_dig_search_nslookup_and_curl_by_name(e2e):
    lab = e2e
    web = cluster_ip(lab, "web")
    for extra in ([], ["+tcp"]):
        r = lab.pod_exec("client", ["dig", "+search", "+short", *extra, "web"])
        assert r.stdout.split() == [web], (extra, r.stdout, r.stderr)
    r = lab.pod_exec("client", ["nslookup", "web"])
    assert r.returncode == 0 and re.search(rf"Name:\s+web\.default\.svc\.cluster\.local\s+Address:\s+{re.escape(web)}",
                                           r.stdout), r.stdout + r.stderr
    r = lab.pod_exec("client", ["curl", "-sS", "--max-time", "5", "http://web/"])
    assert "Welcome to nginx!" in r.stdout, r.stdout + r.stderr
    r = lab.pod_exec("client", ["curl", "-sS", "--max-time", "5", "http://web.default.svc.cluster.local./"])
    assert "Welcome to nginx!" in r.stdout, r.stdout + r.stderr


def test_dns_config_ndots_1_tries_a_dotted_name_as_given_first(e2e):
    """ndots:1 (dnsConfig): `web.other` has a dot, so it is asked as given first: NXDOMAIN at the root,
    then the search list (default.svc... -> web.other.default.svc.cluster.local does not exist, then
    svc.cluster.local -> web.other.svc.cluster.local: the Service in `other`). dig shows the order."""
    lab = e2e
    other = cluster_ip(lab, "web", "other")
    assert getent(lab, "tight", "web.other") == other
    r = lab.pod_exec("tight", ["cat", "/etc/resolv.conf"])
    assert "options ndots:1" in r.stdout and "nameserver 10.96.0.10" in r.stdout, r.stdout
    # and the plain name through the first search domain
    assert getent(lab, "tight", "web") == cluster_ip(lab, "web")


def test_service_links_include_the_kubernetes_service(e2e):
    lab = e2e
    r = lab.pod_exec("client", ["env"])
    env = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    assert env.get("KUBERNETES_SERVICE_HOST") == "10.96.0.1" and env.get("KUBERNETES_SERVICE_PORT") == "443", r.stdout
    assert env.get("WEB_SERVICE_HOST") == cluster_ip(lab, "web") and env.get("WEB_SERVICE_PORT_HTTP") == "80", r.stdout


def test_probe_resolves_through_the_pods_own_resolv_conf(e2e):
    """`netlab probe dns/NAME` asks as the pod's resolver would: its nameserver, search list and ndots
    (ndots:1 here: `web.other` is asked as given first, then through its two search domains)."""
    lab = e2e
    r = kubectl(lab, "probe", "--from", "pod/tight", "dns/web.other", "-o", "json", check=False)
    row = json.loads(r.stdout)["dns"][0]
    assert row["ok"] and row["answers"] == [cluster_ip(lab, "web", "other")], row
    assert row["tried"] == ["web.other.", "web.other.default.svc.cluster.local.", "web.other.svc.cluster.local."], row
