"""The lab's cluster DNS, pure parts (issue 13): the Cluster document's `dns:` map, the add-on objects
`up` writes (netlab/dns/addon.py), the reserved ClusterIPs, the zone's inputs (live/dnszone.py), the
well-known image netlab.dev/cluster-dns, and `probe dns/NAME`'s search rule."""
from __future__ import annotations

import ipaddress

import pytest

from netlab.errors import SpecError
from netlab.live.objects import scenario_objects
from netlab.store.meta import key_of
from netlab.workload import images

from ..builders import cluster, service, text
from .scenarios import cluster_of, load

SUBNET = ipaddress.IPv4Network("10.96.0.0/16")


def with_dns(dns, **networking) -> dict:
    return cluster(**networking) | {"dns": dns}


def refused(*docs) -> str:
    with pytest.raises(SpecError) as e:
        load(*docs)
    return str(e.value)


# ------------------------------------------------------------------ the Cluster document

def test_dns_defaults():
    d = load(cluster()).networking.dns
    assert (d.pods, d.ttl, d.upstreams, d.replicas) == ("insecure", 30, None, 2)


def test_dns_settings_are_read():
    d = load(with_dns({"pods": "verified", "ttl": 0, "upstreamNameservers": ["192.0.2.53"], "replicas": 0})).networking.dns
    assert (d.pods, d.ttl, d.upstreams, d.replicas) == ("verified", 0, ("192.0.2.53",), 0)
    assert load(with_dns({"upstreamNameservers": []})).networking.dns.upstreams == ()


@pytest.mark.parametrize("dns, line", [
    ({"pods": "open"}, "dns.pods 'open' is not supported"),
    ({"ttl": 3601}, "dns.ttl 3601 is out of range 0-3600"),
    ({"ttl": -1}, "dns.ttl -1 is out of range 0-3600"),
    ({"replicas": -1}, "dns.replicas -1 is out of range"),
    ({"upstreamNameservers": ["1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4"]}, "lists 4 nameservers, more than 3"),
    ({"upstreamNameservers": ["dns.example"]}, "dns.upstreamNameservers[0] 'dns.example' is not an IPv4 address"),
    ({"upstreamNameservers": ["2001:db8::1"]}, "is not an IPv4 address"),
    ({"upstreamNameservers": ["0.0.0.0"]}, "0.0.0.0 cannot be a nameserver"),
    ({"upstreamNameservers": "1.1.1.1"}, "dns.upstreamNameservers must be a list"),
    ({"search": ["x"]}, "unknown field dns.search"),
    ("yes", "dns must be a mapping"),
])
def test_bad_dns_settings_are_one_line(dns, line):
    msg = refused(with_dns(dns))
    assert line in msg and "\n" not in msg and msg.startswith("Cluster (document 1): ")


@pytest.mark.parametrize("domain", ["Cluster.Local", "-x.local", "a..b", "cluster.local.", "x-.local", "a_b.local",
                                    "a" * 64 + ".local", ""])
def test_a_cluster_domain_that_is_not_a_dns_name_is_refused(domain):
    msg = refused(cluster(dnsDomain=domain))
    assert "networking.dnsDomain" in msg and "\n" not in msg


@pytest.mark.parametrize("domain", ["cluster.local", "k8s", "a-b.example.org", "a" * 63 + ".local"])
def test_a_valid_cluster_domain_is_taken(domain):
    assert load(cluster(dnsDomain=domain)).networking.dns_domain == domain


# ------------------------------------------------------------------ the add-on objects

def test_up_writes_the_addons_as_kubeadm_makes_them():
    sc = load(cluster(), service("web"))
    objs = {key_of(o): o for o in scenario_objects(sc, "/run/netlab/t/dns", ["172.18.0.2"])}
    dns = objs[("Service", "kube-system", "kube-dns")]
    assert dns["spec"]["clusterIP"] == "10.96.0.10" and dns["spec"]["selector"] == {"k8s-app": "kube-dns"}
    assert [(p["name"], p["port"], p["protocol"]) for p in dns["spec"]["ports"]] == [
        ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")]
    k8s = objs[("Service", "default", "kubernetes")]
    assert k8s["spec"]["clusterIP"] == "10.96.0.1" and "selector" not in k8s["spec"]
    assert k8s["spec"]["ports"] == [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]
    eps = objs[("EndpointSlice", "default", "kubernetes")]
    assert [e["addresses"] for e in eps["endpoints"]] == [["172.18.0.2"]] and eps["ports"][0]["port"] == 6443
    dep = objs[("Deployment", "kube-system", "coredns")]
    assert dep["spec"]["replicas"] == 2
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert (c["name"], c["image"].split(":")[0]) == ("coredns", "netlab.dev/cluster-dns")
    assert c["args"][:2] == ["--zone", "/etc/coredns/zone.json"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 8181, "scheme": "HTTP"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": 8080, "scheme": "HTTP"}
    assert pod["dnsPolicy"] == "Default"
    assert pod["volumes"][0]["hostPath"]["path"] == "/run/netlab/t/dns"
    assert c["volumeMounts"] == [{"name": "config-volume", "mountPath": "/etc/coredns", "readOnly": True}]


def test_no_addons_without_a_dns_dir_and_no_server_with_zero_replicas():
    sc = load(cluster(), service("web"))
    assert {key_of(o) for o in scenario_objects(sc)} == {("Service", "default", "web")}   # (kubectl apply)
    sc0 = load(with_dns({"replicas": 0}), service("web"))
    kinds = {key_of(o)[0] for o in scenario_objects(sc0, "/x")}
    assert "Deployment" not in kinds and "Service" in kinds


def test_the_users_own_object_wins():
    mine = service("kube-dns", [{"name": "dns", "port": 53, "protocol": "UDP"}], namespace="kube-system",
                   selector={"k8s-app": "kube-dns"}, clusterIP="10.96.0.10")
    sc = load(cluster(), mine)
    objs = [o for o in scenario_objects(sc, "/x", ["172.18.0.2"]) if key_of(o) == ("Service", "kube-system", "kube-dns")]
    assert len(objs) == 1 and len(objs[0]["spec"]["ports"]) == 1
    c = cluster_of(cluster(), mine)   # and the model takes it at .10
    assert next(s for s in c.services if s.key == "kube-system/kube-dns").cluster_ip == ipaddress.IPv4Address("10.96.0.10")


def test_the_model_has_the_addon_services_at_1_and_10():
    c = cluster_of(cluster(), service("web"))
    ips = {s.key: str(s.cluster_ip) for s in c.services}
    assert ips["default/kubernetes"] == "10.96.0.1" and ips["kube-system/kube-dns"] == "10.96.0.10"
    assert ips["default/web"] not in ("10.96.0.1", "10.96.0.10")


@pytest.mark.parametrize("ns, name, ip", [("default", "web", "10.96.0.10"), ("default", "web", "10.96.0.1"),
                                          ("kube-system", "kube-dns", "10.96.0.1"),
                                          ("default", "kubernetes", "10.96.0.10"),
                                          ("other", "kube-dns", "10.96.0.10")])
def test_a_users_service_cannot_take_a_reserved_address(ns, name, ip):
    docs = [cluster(), service(name, namespace=ns, clusterIP=ip)]
    if ns == "other":
        docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    with pytest.raises(SpecError) as e:
        cluster_of(*docs)
    assert f"spec.clusterIP {ip} is reserved for" in str(e.value)


def test_the_users_kube_dns_without_a_cluster_ip_gets_10():
    c = cluster_of(cluster(), service("kube-dns", namespace="kube-system", selector={"k8s-app": "kube-dns"}))
    assert next(s for s in c.services if s.key == "kube-system/kube-dns").cluster_ip == ipaddress.IPv4Address("10.96.0.10")


# ------------------------------------------------------------------ the zone's inputs

def test_host_upstreams():
    from netlab.live.dnszone import host_upstreams
    assert host_upstreams("nameserver 10.0.0.2\nnameserver 10.0.0.3\n") == ("10.0.0.2", "10.0.0.3")
    stub = "# systemd-resolved\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n"
    assert host_upstreams(stub, "nameserver 192.168.1.1\nnameserver fe80::1\nnameserver 1.1.1.1\n") == \
        ("192.168.1.1", "1.1.1.1")
    assert host_upstreams(stub, None) == ()                      # loopback and nothing behind it: dropped
    assert host_upstreams("nameserver ::1\nnameserver 9.9.9.9\n#nameserver 8.8.8.8\n") == ("9.9.9.9",)
    many = "".join(f"nameserver 10.0.0.{i}\n" for i in range(1, 6)) + "nameserver 10.0.0.1\n"
    assert host_upstreams(many) == ("10.0.0.1", "10.0.0.2", "10.0.0.3")


def test_zone_settings_and_objects():
    from netlab.live.dnszone import settings, zone_objects
    net = load(with_dns({"pods": "verified", "ttl": 7}, dnsDomain="corp.example", serviceSubnet="10.100.0.0/16")).networking
    s = settings(net, ("192.0.2.1",))
    assert (s.domain, s.pods, s.ttl, s.upstreams, s.dns_ip) == ("corp.example", "verified", 7, ("192.0.2.1",),
                                                                 "10.100.0.10")
    assert s.reverse_cidrs == ("10.100.0.0/16", "10.244.0.0/16")
    net2 = load(with_dns({"upstreamNameservers": []})).networking
    assert settings(net2, ("192.0.2.1",)).upstreams == ()     # written: no upstream at all
    svc = {"kind": "Service", "metadata": {"name": "web", "namespace": "default"}, "spec": {"ports": []}}
    out = zone_objects({"Service": [svc], "Namespace": [{"metadata": {"name": "team"}}]}, {"default/web": "10.96.3.4"})
    assert out["Service"][0]["spec"]["clusterIP"] == "10.96.3.4" and "clusterIP" not in svc["spec"]
    assert [n["metadata"]["name"] for n in out["Namespace"]] == ["default", "kube-system", "kube-public",
                                                                  "kube-node-lease", "team"]


def test_the_zone_renders_the_addon_services():
    from netlab.dns.zone import render_zone
    from netlab.live.dnszone import settings, zone_objects
    sc = load(cluster(), service("web"))
    objs = [o for o in scenario_objects(sc, "/x", ["172.18.0.2"])]
    by_kind: dict = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    zone = render_zone(zone_objects(by_kind, {"default/web": "10.96.3.4"}), settings(sc.networking, ()))
    recs = {(r[0], r[2], r[3]) for r in zone["records"]}
    assert ("kubernetes.default.svc.cluster.local.", "A", "10.96.0.1") in recs
    assert ("kube-dns.kube-system.svc.cluster.local.", "A", "10.96.0.10") in recs
    assert ("web.default.svc.cluster.local.", "A", "10.96.3.4") in recs


# ------------------------------------------------------------------ the image, the probe

def test_the_cluster_dns_image_runs_the_server():
    got = images.recognise("netlab.dev/cluster-dns:1.0", [], ["--zone", "/etc/coredns/zone.json", "--port=5353"], {})
    assert got.command[:3] == [images.netlab_python(), "-m", "netlab.dns.server"]
    assert got.command[3:] == ["--zone", "/etc/coredns/zone.json", "--listen", "0.0.0.0", "--port", "5353",
                               "--health-port", "8080", "--ready-port", "8181"]
    for args, msg in ((["--port", "53"], "has no --zone"), (["--zone", "z", "--port", "0"], "--port=0"),
                      (["--zone", "z", "--bogus"], "cluster-dns:")):
        with pytest.raises(images.ImageError) as e:
            images.recognise("netlab.dev/cluster-dns", [], args, {})
        assert msg in e.value.msg


def test_a_kubelet_launched_well_known_container_runs_its_own_program():
    """A container with a volume is started by the kubelet's Launch: a well-known image's program (not
    its manifest args as a command line)."""
    from netlab.workload.podenv import Runtime
    from netlab.workload.volumes import launches
    pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u1"},
           "spec": {"containers": [{"name": "coredns", "image": "netlab.dev/cluster-dns",
                                    "args": ["--zone", "/etc/coredns/zone.json"],
                                    "volumeMounts": [{"name": "v", "mountPath": "/etc/coredns"}]}],
                    "volumes": [{"name": "v", "hostPath": {"path": "/tmp"}}]}}
    _, out = launches(pod, "/tmp/netlab-test-volumes", {}, Runtime("10.244.0.2", "172.18.0.2", {}))
    assert out["coredns"].argv[:3] == [images.netlab_python(), "-m", "netlab.dns.server"]


def test_netlab_programs_run_with_one_spelling_of_the_interpreter(monkeypatch):
    """However netlab was started (python, python3, the netlab script), a container running netlab's own
    program gets the same command line: a different one would make the next `up` rebuild the pod."""
    import os
    import sys
    spellings = {images.netlab_python()}
    for exe in ("python", "python3"):
        monkeypatch.setattr(sys, "executable", os.path.join(sys.prefix, "bin", exe))
        spellings.add(images.netlab_python())
        spellings.add(images.recognise("netlab.dev/cluster-dns", [], ["--zone", "z"], {}).command[0])
    assert len(spellings) == 1, spellings


def test_probe_search_rule():
    from netlab.probe.dnsname import candidates, search_path
    s = search_path("team", "cluster.local")
    assert s == ["team.svc.cluster.local", "svc.cluster.local", "cluster.local"]
    assert candidates("web", s) == ["web.team.svc.cluster.local.", "web.svc.cluster.local.", "web.cluster.local.", "web."]
    assert candidates("web.default.svc.cluster.local.", s) == ["web.default.svc.cluster.local."]
    assert candidates("a.b.c.d.e.f", s)[0] == "a.b.c.d.e.f."    # 5 dots: as it is first


def test_the_default_probe_matrix_leaves_the_addon_services_out():
    """Nothing serves kubernetes' 443 or kube-dns' metrics, and the probes' payloads are not DNS: the
    matrix would fail on them; `probe dns/NAME` checks the cluster DNS."""
    from netlab.probe.plan import default_matrix
    from ..builders import container, deployment
    c = cluster_of(cluster(), deployment("web", 2, containers=[container(ports=[80])]), service("web"))
    targets = {ch.target for ch in default_matrix(c)}
    assert any(t.startswith("svc/web") for t in targets)
    assert not any("kubernetes" in t or "kube-dns" in t for t in targets)
