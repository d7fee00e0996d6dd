"""The kubelet's /etc/resolv.conf and /etc/hosts of a pod (netlab/workload/resolvconf.py), the service
environment variables (netlab/workload/podenv.py service_env), and the API server's checks of dnsPolicy,
dnsConfig, hostAliases and ExternalName (netlab/spec/dnsparts.py, kinds/service.py): pure, no root."""
from __future__ import annotations

import os

import pytest

from netlab.dataplane import sandbox
from netlab.errors import SpecError
from netlab.spec.parse import load_text
from netlab.workload.podenv import Runtime, container_env, service_env
from netlab.workload.resolvconf import (DnsOption, PodDns, ResolvConf, fit_limits, parse_resolv_conf, pod_files,
                                        pod_resolv_conf, render_resolv_conf)

from . import golden

HOST = "# the host's\nnameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch corp.example. lab.example\n" \
       "options edns0 ndots:1\n"
HOSTS = "127.0.0.1 localhost\n192.0.2.1 gw\n"


def files(dns: PodDns, host_network: bool = False, ns: str = "shop", hostname: str = "web-0") -> str:
    got = pod_files(dns, ns, hostname, "10.244.1.7", host_network, "cluster.local", "10.96.0.10", HOST, HOSTS)
    return f"--- resolv.conf\n{got['resolv.conf']}--- hosts\n{got['hosts']}"


CASES = {
    "clusterfirst": (PodDns(), False),
    "clusterfirst_subdomain_aliases": (PodDns(subdomain="web", host_aliases=(
        ("10.1.2.3", ("foo.remote", "bar.remote")), ("127.0.0.1", ("foo.local",)))), False),
    "default": (PodDns(policy="Default"), False),
    "hostnet_clusterfirst": (PodDns(host_aliases=(("10.9.9.9", ("hn.alias",)),)), True),
    "hostnet_withhostnet": (PodDns(policy="ClusterFirstWithHostNet"), True),
    "none_dnsconfig": (PodDns(policy="None", nameservers=("1.1.1.1",), searches=("a.example",),
                              options=(DnsOption("ndots", "2"), DnsOption("edns0")), has_config=True), False),
    "clusterfirst_dnsconfig": (PodDns(nameservers=("1.1.1.1", "10.96.0.10"),
                                      searches=("svc.cluster.local", "extra.example"),
                                      options=(DnsOption("ndots", "2"), DnsOption("single-request-reopen")),
                                      has_config=True), False),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_pod_files_golden(case):
    dns, host_network = CASES[case]
    golden.check(f"poddns_{case}", files(dns, host_network), "pod files differ")


def test_cluster_first_is_the_kubelets_line_by_line():
    got = pod_files(PodDns(), "default", "client", "10.244.1.3", False, "cluster.local", "10.96.0.10",
                    "nameserver 10.255.255.53\n", "")
    assert got["resolv.conf"] == ("search default.svc.cluster.local svc.cluster.local cluster.local\n"
                                  "nameserver 10.96.0.10\noptions ndots:5\n")
    assert got["hosts"].splitlines()[0] == "# Kubernetes-managed hosts file."
    assert got["hosts"].splitlines()[-1] == "10.244.1.3\tclient"
    assert "HostAliases" not in got["hosts"]


def test_dns_config_merges_as_the_kubelet_does():
    conf = pod_resolv_conf(PodDns(nameservers=("10.96.0.10", "1.1.1.1"), searches=("svc.cluster.local", "x.example"),
                                  options=(DnsOption("ndots", "2"), DnsOption("rotate")), has_config=True),
                           "ns1", False, "cluster.local", "10.96.0.10", parse_resolv_conf(HOST))
    assert conf.nameservers == ["10.96.0.10", "1.1.1.1"]                    # appended, duplicates dropped
    assert conf.searches == ["ns1.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example",
                             "lab.example", "x.example"]
    assert conf.options == ["ndots:2", "rotate"]                            # the pod's value wins


def test_policy_none_without_config_is_empty_and_default_takes_the_hosts_last_lines():
    assert render_resolv_conf(pod_resolv_conf(PodDns(policy="None"), "d", False, "cluster.local", "10.96.0.10",
                                              parse_resolv_conf(HOST))) == ""
    parsed = parse_resolv_conf("search a.example\nsearch b.example.\noptions x\noptions y:1\nnameserver\n")
    assert (parsed.nameservers, parsed.searches, parsed.options) == ([], ["b.example"], ["y:1"])


def test_the_kubelets_limits_when_writing():
    many = ResolvConf([f"10.0.0.{i}" for i in range(5)], [f"d{i}.example" for i in range(40)], [])
    got = fit_limits(many)
    assert got.nameservers == ["10.0.0.0", "10.0.0.1", "10.0.0.2"]
    assert got.searches == [f"d{i}.example" for i in range(32)]
    long = ResolvConf([], ["x" * 254, *(("a" * 250 + f".e{i}") for i in range(12))], [])
    got = fit_limits(long)
    assert "x" * 254 not in got.searches                                       # longer than 253: dropped
    assert len(" ".join(got.searches)) <= 2048 and len(got.searches) == 8   # cut from the end


# ---- service environment variables

def svc(name, ip, ports, ns="default", stype="ClusterIP"):
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"type": stype, "clusterIP": ip, "ports": ports}}


SERVICES = [
    svc("kubernetes", "10.96.0.1", [{"name": "https", "port": 443, "protocol": "TCP"}]),
    svc("redis-master", "10.96.3.4", [{"name": "redis", "port": 6379, "protocol": "TCP"},
                                      {"name": "metrics", "port": 9121, "protocol": "UDP"}]),
    svc("headless", "None", [{"port": 80}]),
    svc("ext", None, [], stype="ExternalName"),
    svc("other", "10.96.5.5", [{"port": 80}], ns="elsewhere"),
]


def test_service_variables_docker_link_style():
    env = service_env("default", True, SERVICES)
    assert env == {
        "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
        "KUBERNETES_SERVICE_PORT_HTTPS": "443", "KUBERNETES_PORT": "tcp://10.96.0.1:443",
        "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
        "KUBERNETES_PORT_443_TCP_PORT": "443", "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1",
        "REDIS_MASTER_SERVICE_HOST": "10.96.3.4", "REDIS_MASTER_SERVICE_PORT": "6379",
        "REDIS_MASTER_SERVICE_PORT_REDIS": "6379", "REDIS_MASTER_SERVICE_PORT_METRICS": "9121",
        "REDIS_MASTER_PORT": "tcp://10.96.3.4:6379",
        "REDIS_MASTER_PORT_6379_TCP": "tcp://10.96.3.4:6379", "REDIS_MASTER_PORT_6379_TCP_PROTO": "tcp",
        "REDIS_MASTER_PORT_6379_TCP_PORT": "6379", "REDIS_MASTER_PORT_6379_TCP_ADDR": "10.96.3.4",
        "REDIS_MASTER_PORT_9121_UDP": "udp://10.96.3.4:9121", "REDIS_MASTER_PORT_9121_UDP_PROTO": "udp",
        "REDIS_MASTER_PORT_9121_UDP_PORT": "9121", "REDIS_MASTER_PORT_9121_UDP_ADDR": "10.96.3.4"}


def test_enable_service_links_false_keeps_only_the_kubernetes_service():
    assert set(service_env("default", False, SERVICES)) == {k for k in service_env("default", True, SERVICES)
                                                            if k.startswith("KUBERNETES_")}
    # another namespace: its own Services and default/kubernetes
    env = service_env("elsewhere", True, SERVICES)
    assert env["OTHER_SERVICE_HOST"] == "10.96.5.5" and env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert "REDIS_MASTER_SERVICE_HOST" not in env
    assert service_env("elsewhere", False, SERVICES[1:]) == {}


def test_the_containers_own_env_wins_and_may_refer_to_service_variables():
    pod = {"metadata": {"name": "p", "namespace": "default"},
           "spec": {"containers": [{"name": "c", "command": ["echo", "$(REDIS_MASTER_SERVICE_HOST)"],
                                    "env": [{"name": "REDIS_MASTER_SERVICE_PORT", "value": "1"},
                                            {"name": "URL", "value": "redis://$(REDIS_MASTER_SERVICE_HOST)"}]}]}}
    env, command, _ = container_env(pod, "c", {}, Runtime("10.244.0.5", "172.18.0.2"), SERVICES)
    assert env["REDIS_MASTER_SERVICE_PORT"] == "1"
    assert env["URL"] == "redis://10.96.3.4"
    assert command == ["echo", "10.96.3.4"]
    pod["spec"]["enableServiceLinks"] = False
    env, command, _ = container_env(pod, "c", {}, Runtime("10.244.0.5", "172.18.0.2"), SERVICES)
    assert "REDIS_MASTER_SERVICE_HOST" not in env and command == ["echo", "$(REDIS_MASTER_SERVICE_HOST)"]


# ---- the sandbox binds the files in every mode

def test_sandbox_binds_the_pod_files_privileged_or_not():
    files = [sandbox.Mount("/run/netlab/x/resolv.conf", "/etc/resolv.conf")]
    plain = sandbox.init_config(sandbox.Sandbox(files=files))
    assert ["/run/netlab/x/resolv.conf", "/etc/resolv.conf", False] in plain["mounts"] and "files" not in plain
    priv = sandbox.init_config(sandbox.Sandbox(files=files, privileged=True))
    assert priv["files"] == [["/run/netlab/x/resolv.conf", "/etc/resolv.conf", False]]
    assert sandbox.env_argv({"A": "1"}, ["env"]) == ["env", "-i", "A=1", "env"]


# ---- the API server's checks

POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c}]\n"


def refused(spec_lines: str) -> str:
    with pytest.raises(SpecError) as e:
        load_text(POD + spec_lines)
    return str(e.value)


@pytest.mark.parametrize("lines,expected", [
    ("  dnsPolicy: None\n", "spec.dnsConfig must list at least one nameserver when dnsPolicy is None"),
    ("  dnsPolicy: None\n  dnsConfig: {searches: [a.example]}\n",
     "spec.dnsConfig.nameservers must list at least one nameserver when dnsPolicy is None"),
    ("  dnsPolicy: clusterfirst\n", "spec.dnsPolicy 'clusterfirst' is not supported"),
    ("  dnsConfig: {nameservers: [1.1.1.1, 1.1.1.2, 1.1.1.3, 1.1.1.4]}\n", "lists 4 nameservers, more than 3"),
    ("  dnsConfig: {nameservers: [fe80::1]}\n", "spec.dnsConfig.nameservers[0] 'fe80::1' is not an IPv4 address"),
    ("  dnsConfig: {searches: [" + ",".join(f"s{i}.e" for i in range(33)) + "]}\n",
     "spec.dnsConfig.searches lists 33 search domains, more than 32"),
    ("  dnsConfig: {searches: [" + ",".join(("a" * 60 + "." + "b" * 60 + f".c{i}") for i in range(20)) + "]}\n",
     "characters long in all, more than 2048"),
    ("  dnsConfig: {searches: [under_score.example]}\n", "'under_score.example' is not a valid DNS name"),
    ("  dnsConfig: {options: [{value: '2'}]}\n", "spec.dnsConfig.options[0].name is required"),
    ("  dnsConfig: {nameserver: [1.1.1.1]}\n", "unknown field spec.dnsConfig.nameserver"),
    ("  hostAliases: [{ip: 10.0.0.300, hostnames: [a]}]\n", "spec.hostAliases[0].ip '10.0.0.300' is not an IPv4"),
    ("  hostAliases: [{ip: 10.0.0.3, hostnames: ['-bad']}]\n", "spec.hostAliases[0].hostnames[0] '-bad' is not"),
    ("  hostAliases: [{hostnames: [a]}]\n", "spec.hostAliases[0].ip is required"),
    ("  enableServiceLinks: 'no'\n", "spec.enableServiceLinks must be true or false"),
])
def test_bad_dns_fields_are_refused_in_one_line(lines, expected):
    msg = refused(lines)
    assert expected in msg and "Pod default/p" in msg and "\n" not in msg, msg


def test_good_dns_fields_are_read_not_ignored():
    s = load_text(POD + "  dnsPolicy: None\n  enableServiceLinks: false\n"
                  "  dnsConfig: {nameservers: [1.1.1.1], searches: [a.example.],\n"
                  "              options: [{name: ndots, value: '2'}]}\n"
                  "  hostAliases: [{ip: 10.1.2.3, hostnames: [foo.remote]}]\n  subdomain: web\n")
    assert s.ignored == []
    dns = s.pods[0].template.dns
    assert dns == PodDns("None", ("1.1.1.1",), ("a.example",), (DnsOption("ndots", "2"),), True,
                         (("10.1.2.3", ("foo.remote",)),), "web", service_links=False)


def test_external_name_must_be_a_dns_name():
    base = "apiVersion: v1\nkind: Service\nmetadata: {name: e}\nspec: {type: ExternalName, externalName: NAME}\n"
    with pytest.raises(SpecError) as e:
        load_text(base.replace("NAME", "'bad name'"))
    assert "Service default/e: spec.externalName 'bad name' is not a valid DNS name" in str(e.value)
    assert load_text(base.replace("NAME", "db.example.com.")).services[0].external_name == "db.example.com."


def test_a_mount_point_that_is_a_symbolic_link_is_replaced_not_followed(tmp_path):
    """/etc/resolv.conf is a link on a systemd-resolved host: the bind must land on the sandbox's own
    file, not on the link's target (the host's file)."""
    from netlab.dataplane import sandbox_init
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    target = tmp_path / "hosts-own-resolv.conf"
    target.write_text("nameserver 192.0.2.1\n")
    (root / "etc" / "resolv.conf").symlink_to(target)
    path = sandbox_init.make_point(str(root), "/etc/resolv.conf", False, None, ())
    assert path == str(root / "etc" / "resolv.conf")
    assert not os.path.islink(path) and os.path.isfile(path)
    assert target.read_text() == "nameserver 192.0.2.1\n"          # the link's target untouched
    plain = root / "etc" / "hosts"
    plain.write_text("x")
    assert sandbox_init.make_point(str(root), "/etc/hosts", False, None, ()) == str(plain)
    assert plain.read_text() == "x"


def test_pod_files_are_written_once_and_rewritten_in_place_when_their_inputs_change(tmp_path, monkeypatch):
    """dataplane/podfiles.py: no write when nothing changed; a change (here the host's resolv.conf, which
    a Default pod copies) rewrites the same inode, so a container that has it bound sees it."""
    from netlab.dataplane import layout, podfiles
    from netlab.model.build import build
    host = tmp_path / "resolv.conf"
    host.write_text("nameserver 192.0.2.53\n")
    monkeypatch.setattr(podfiles, "HOST_RESOLV", str(host))
    monkeypatch.setattr(podfiles, "HOST_HOSTS", str(tmp_path / "none"))
    monkeypatch.setattr(layout, "volumes_dir", lambda lab: str(tmp_path / "volumes"))
    cluster = build(load_text(POD + "  dnsPolicy: Default\n"))
    pod = cluster.pods[0]
    assert podfiles.write_all(cluster) == ["default/p"]
    path = os.path.join(podfiles.etc_dir(cluster.name, pod), "resolv.conf")
    inode = os.stat(path).st_ino
    assert open(path).read() == "nameserver 192.0.2.53\n"
    assert podfiles.write_all(cluster) == []
    host.write_text("nameserver 192.0.2.54\n")
    assert podfiles.write_all(cluster) == ["default/p"]
    assert open(path).read() == "nameserver 192.0.2.54\n" and os.stat(path).st_ino == inode
    assert [m.target for m in podfiles.mounts(cluster.name, pod)] == ["/etc/resolv.conf", "/etc/hosts"]
    # whatever the umask: the files 0644 (a container's user reads them), their directories root's only
    old = os.umask(0o077)
    try:
        other = build(load_text(POD.replace("name: p", "name: q") + "  dnsPolicy: Default\n"))
        assert podfiles.write_all(other) == ["default/q"]
    finally:
        os.umask(old)
    where = podfiles.etc_dir(other.name, other.pods[0])
    assert oct(os.stat(os.path.join(where, "hosts")).st_mode & 0o777) == "0o644"
    assert oct(os.stat(where).st_mode & 0o777) == oct(os.stat(os.path.dirname(where)).st_mode & 0o777) == "0o700"
