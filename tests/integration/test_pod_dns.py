"""Pods resolve like pods (issue 13, part C): the kubelet-written /etc/resolv.conf and /etc/hosts seen
by a container's own process, by `netlab exec` (joining a running container, or a fresh sandbox of a
built-in one), by `netlab debug` and by a privileged container; real resolvers (getent, dig +search,
nslookup) through a pod's search path and ndots, answered by a dnsmasq this test runs in a pod behind
a Service; dnsPolicy Default and hostNetwork; the service environment variables; the host's own
/etc/resolv.conf and /etc/hosts never changed. Bad input: one line, exit 2, nothing built."""
from __future__ import annotations

import hashlib
import os
import shutil

import pytest

from netlab.workload.resolvconf import parse_resolv_conf

from .conftest import kubectl, netlab_cli, until

DNS_VIP = "10.96.0.53"

SCENARIO = f"""apiVersion: netlab.dev/v1alpha1
kind: Cluster
nodes: [{{name: n1, role: control-plane}}, {{name: n2}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: dnssrv, labels: {{app: dnssrv}}}}
spec:
  containers:
  - name: dnsmasq
    command: [dnsmasq, --no-daemon, --no-resolv, --no-hosts, --conf-file=/dev/null, --user=root,
              --pid-file=/tmp/dnsmasq.pid, --port=53, --log-queries, --log-facility=-,
              "--host-record=web.default.svc.cluster.local,1.2.3.4", "--host-record=web.default,9.9.9.9",
              --local=/cluster.local/, --local=/default/]
    ports: [{{containerPort: 53, protocol: UDP}}, {{containerPort: 53, protocol: TCP}}]
---
apiVersion: v1
kind: Service
metadata: {{name: mydns}}
spec:
  clusterIP: {DNS_VIP}
  selector: {{app: dnssrv}}
  ports: [{{name: dns, port: 53, protocol: UDP}}, {{name: dns-tcp, port: 53, protocol: TCP}}]
---
apiVersion: v1
kind: Service
metadata: {{name: redis-master}}
spec:
  selector: {{app: redis}}
  ports: [{{name: redis, port: 6379, targetPort: 6379}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80}}]
---
apiVersion: v1
kind: Service
metadata: {{name: headless}}
spec:
  clusterIP: None
  selector: {{app: web}}
  ports: [{{port: 80}}]
---
apiVersion: v1
kind: Service
metadata: {{name: ext}}
spec:
  type: ExternalName
  externalName: db.example.com
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  hostname: h1
  subdomain: sub
  nodeName: n2
  hostAliases:
  - ip: 10.1.2.3
    hostnames: [foo.remote, bar.remote]
  containers:
  - name: c
    command: [sh, -c, 'cat /etc/resolv.conf > /tmp/resolv; cat /etc/hosts > /tmp/hosts; env > /tmp/env; sleep 3600']
    env: [{{name: WEB_SERVICE_PORT, value: mine}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: nolinks}}
spec:
  enableServiceLinks: false
  containers:
  - name: c
    command: [sh, -c, 'env > /tmp/env; sleep 3600']
---
apiVersion: v1
kind: Pod
metadata: {{name: ndots2}}
spec:
  dnsPolicy: None
  dnsConfig:
    nameservers: [{DNS_VIP}]
    searches: [default.svc.cluster.local, svc.cluster.local]
    options: [{{name: ndots, value: "2"}}, {{name: timeout, value: "2"}}]
  containers: [{{name: c, command: [sleep, "3600"]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: ndots1}}
spec:
  dnsPolicy: None
  dnsConfig:
    nameservers: [{DNS_VIP}]
    searches: [default.svc.cluster.local, svc.cluster.local]
    options: [{{name: ndots, value: "1"}}, {{name: timeout, value: "2"}}]
  containers: [{{name: c, command: [sleep, "3600"]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: hostdefault}}
spec:
  dnsPolicy: Default
  containers: [{{name: c, command: [sleep, "3600"]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: priv}}
spec:
  containers:
  - name: c
    command: [sleep, "3600"]
    securityContext: {{privileged: true}}
---
apiVersion: v1
kind: Pod
metadata: {{name: builtin}}
spec:
  containers: [{{name: c, image: nginx}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: hostnet}}
spec:
  hostNetwork: true
  nodeName: n1
  hostAliases: [{{ip: 10.9.9.9, hostnames: [hn.alias]}}]
  containers: [{{name: c, command: [sleep, "3600"]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: hostnetcf}}
spec:
  hostNetwork: true
  dnsPolicy: ClusterFirstWithHostNet
  nodeName: n2
  containers: [{{name: c, command: [sleep, "3600"]}}]
"""


def _digest(path: str) -> tuple[str, float]:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest(), os.stat(path).st_mtime


def _host_files():
    return {p: _digest(p) for p in ("/etc/resolv.conf", "/etc/hosts")}


def _ok(r) -> str:
    assert r.returncode == 0, (r.args[-3:], r.stdout, r.stderr)
    return r.stdout


@pytest.fixture(scope="module")
def dns_lab():
    """One lab for the module's tests (each test only reads from it)."""
    import secrets

    from netlab.dataplane import lab as labmod

    from .conftest import Lab
    handle = Lab(f"t-{secrets.token_hex(4)}")
    before = _host_files()
    try:
        handle.up(SCENARIO)
        handle.host_before = before
        yield handle
    finally:
        labmod.down(handle.name)
        assert not labmod.lab_namespaces(handle.name)
    assert _host_files() == before, "the host's /etc/resolv.conf or /etc/hosts changed"


def _cluster_first(lab, namespace: str = "default") -> str:
    host = parse_resolv_conf(open("/etc/resolv.conf").read())
    domain = lab.cluster.networking.dns_domain
    searches = [f"{namespace}.svc.{domain}", f"svc.{domain}", domain]
    searches += [s for s in host.searches if s not in searches]
    svc = lab.cluster.networking.service_subnet
    return f"search {' '.join(searches)}\nnameserver {svc.network_address + 10}\noptions ndots:5\n"


def test_a_pod_resolv_conf_and_hosts_as_the_kubelet_writes_them(dns_lab):
    lab = dns_lab
    want = _cluster_first(lab)
    ip = str(lab.pod("client").ip)
    # the container's own process saw them (it copied them at its start), and `netlab exec` sees them
    until("the client container to have copied its files",
          lambda: lab.pod_exec("client", ["cat", "/tmp/hosts"]).returncode == 0)
    assert _ok(lab.pod_exec("client", ["cat", "/tmp/resolv"])) == want
    assert _ok(lab.pod_exec("client", ["cat", "/etc/resolv.conf"])) == want
    hosts = _ok(lab.pod_exec("client", ["cat", "/tmp/hosts"]))
    assert hosts == _ok(lab.pod_exec("client", ["cat", "/etc/hosts"]))
    lines = hosts.splitlines()
    assert lines[0] == "# Kubernetes-managed hosts file."
    assert "127.0.0.1\tlocalhost" in lines
    assert f"{ip}\th1.sub.default.svc.cluster.local\th1" in lines
    assert lines[-3:] == ["", "# Entries added by HostAliases.", "10.1.2.3\tfoo.remote\tbar.remote"]
    # real lookups through /etc/hosts (files before dns in nsswitch); IPv4 only: `getent hosts` asks for
    # IPv6 first, which /etc/hosts does not have for these names, so it would wait on the cluster DNS
    # (arriving with the cluster DNS server, not in this test)
    assert _ok(lab.pod_exec("client", ["getent", "ahostsv4", "h1"])).split()[0] == ip
    assert _ok(lab.pod_exec("client", ["getent", "ahostsv4", "h1.sub.default.svc.cluster.local"])).split()[0] == ip
    assert _ok(lab.pod_exec("client", ["getent", "ahostsv4", "bar.remote"])).split()[0] == "10.1.2.3"
    # the CLI's exec and debug (the lab's model loaded from its state) too
    r = netlab_cli("exec", "--lab", lab.name, "client", "--", "cat", "/etc/resolv.conf")
    assert (r.returncode, r.stdout) == (0, want), r.stderr
    r = netlab_cli("debug", "--lab", lab.name, "client", "--", "cat", "/etc/hosts")
    assert r.returncode == 0 and f"{ip}\th1.sub.default.svc.cluster.local\th1" in r.stdout.splitlines(), r.stderr
    r = netlab_cli("exec", "--lab", lab.name, "client", "--", "sh", "-c", "echo $REDIS_MASTER_SERVICE_PORT")
    assert (r.returncode, r.stdout) == (0, "6379\n"), r.stderr
    # debug (a fresh sandbox) sees them too
    assert _ok(lab.pod_debug("client", ["cat", "/etc/resolv.conf"], profile="general")) == want
    assert "h1.sub.default.svc.cluster.local" in _ok(lab.pod_debug("client", ["cat", "/etc/hosts"], "sysadmin"))


def test_built_in_and_privileged_containers_see_the_pod_files(dns_lab):
    lab = dns_lab
    want = _cluster_first(lab)
    # a built-in container: exec gets a fresh sandbox with the files bound
    assert _ok(lab.pod_exec("builtin", ["cat", "/etc/resolv.conf"])) == want
    ip = str(lab.pod("builtin").ip)
    assert _ok(lab.pod_exec("builtin", ["getent", "ahostsv4", "builtin"])).split()[0] == ip
    # a privileged container keeps the host's tree, with the pod's files bound over the host's
    assert _ok(lab.pod_exec("priv", ["cat", "/etc/resolv.conf"])) == want
    assert f"{lab.pod('priv').ip}\tpriv" in _ok(lab.pod_exec("priv", ["cat", "/etc/hosts"])).splitlines()
    assert _host_files() == lab.host_before


@pytest.mark.skipif(not shutil.which("dnsmasq") or not shutil.which("dig"),
                    reason="needs dnsmasq (dnsmasq-base: the benchmark's setup installs it) and dig (dnsutils)")
def test_search_path_and_ndots_answered_by_a_dns_server_in_the_lab(dns_lab):
    lab = dns_lab
    conf = _ok(lab.pod_exec("ndots2", ["cat", "/etc/resolv.conf"]))
    assert conf == (f"search default.svc.cluster.local svc.cluster.local\nnameserver {DNS_VIP}\n"
                    "options ndots:2 timeout:2\n")
    until("the pod's DNS server to answer", lambda: lab.pod_exec(
        "ndots2", ["getent", "hosts", "web"]).stdout.split()[:1] == ["1.2.3.4"], timeout=30)
    # dig +search and nslookup read the pod's resolv.conf
    assert _ok(lab.pod_exec("ndots2", ["dig", "+search", "+short", "web"])).split() == ["1.2.3.4"]
    assert _ok(lab.pod_exec("ndots2", ["dig", "+search", "+short", "+tcp", "web"])).split() == ["1.2.3.4"]
    assert "1.2.3.4" in _ok(lab.pod_exec("ndots2", ["nslookup", "web"]))
    # a name with one dot: under ndots:2 the search path comes first (web.default.svc.cluster.local);
    # under ndots:1 the name as given is asked first (the server answers web.default itself)
    assert _ok(lab.pod_exec("ndots2", ["getent", "hosts", "web.default"])).split()[0] == "1.2.3.4"
    assert _ok(lab.pod_exec("ndots1", ["getent", "hosts", "web.default"])).split()[0] == "9.9.9.9"
    # a name outside the server's records: no answer
    assert lab.pod_exec("ndots2", ["getent", "hosts", "nothere"]).returncode != 0


def test_dns_policy_default_and_host_network(dns_lab):
    lab = dns_lab
    host = open("/etc/resolv.conf").read()
    parsed = parse_resolv_conf(host)
    got = parse_resolv_conf(_ok(lab.pod_exec("hostdefault", ["cat", "/etc/resolv.conf"])))
    assert (got.nameservers, got.searches, got.options) == (parsed.nameservers, parsed.searches, parsed.options)
    # hostNetwork + ClusterFirst falls back to Default; its hosts file is the node's (the host's) + aliases
    got = parse_resolv_conf(_ok(lab.pod_exec("hostnet", ["cat", "/etc/resolv.conf"])))
    assert got.nameservers == parsed.nameservers
    hosts = _ok(lab.pod_exec("hostnet", ["cat", "/etc/hosts"]))
    assert hosts.startswith(open("/etc/hosts").read())
    assert hosts.endswith("\n# Entries added by HostAliases.\n10.9.9.9\thn.alias\n")
    assert _ok(lab.pod_exec("hostnet", ["getent", "ahostsv4", "hn.alias"])).split()[0] == "10.9.9.9"
    # ClusterFirstWithHostNet: the cluster DNS for a hostNetwork pod
    assert _ok(lab.pod_exec("hostnetcf", ["cat", "/etc/resolv.conf"])) == _cluster_first(lab)
    assert _host_files() == lab.host_before


def _env(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_service_environment_variables(dns_lab):
    lab = dns_lab
    svc = {s.name: s for s in lab.cluster.services}
    rip = str(svc["redis-master"].cluster_ip)
    until("the containers to have written their env", lambda: all(
        lab.pod_exec(p, ["cat", "/tmp/env"]).returncode == 0 for p in ("client", "nolinks")))
    own = _env(_ok(lab.pod_exec("client", ["cat", "/tmp/env"])))   # the container's own process
    via_exec = _env(_ok(lab.pod_exec("client", ["env"])))           # `netlab exec` gets the container's env
    for env in (own, via_exec):
        assert env["REDIS_MASTER_SERVICE_HOST"] == rip              # guestbook's GET_HOSTS_FROM=env
        assert env["REDIS_MASTER_SERVICE_PORT"] == "6379"
        assert env["REDIS_MASTER_SERVICE_PORT_REDIS"] == "6379"
        assert env["REDIS_MASTER_PORT"] == f"tcp://{rip}:6379"
        assert env["REDIS_MASTER_PORT_6379_TCP"] == f"tcp://{rip}:6379"
        assert env["REDIS_MASTER_PORT_6379_TCP_PROTO"] == "tcp"
        assert env["REDIS_MASTER_PORT_6379_TCP_PORT"] == "6379"
        assert env["REDIS_MASTER_PORT_6379_TCP_ADDR"] == rip
        assert env["MYDNS_PORT_53_UDP"] == f"udp://{DNS_VIP}:53"
        assert env["MYDNS_SERVICE_PORT_DNS_TCP"] == "53"
        assert env["WEB_SERVICE_HOST"] == str(svc["web"].cluster_ip)
        assert env["WEB_SERVICE_PORT"] == "mine"                    # the container's own env wins
        assert not any(k.startswith(("HEADLESS_", "EXT_")) for k in env)   # no ClusterIP: no variables
    assert "NETLAB_OWNER" in own and "NETLAB_OWNER" not in via_exec   # exec is not the container itself
    nolinks = _env(_ok(lab.pod_exec("nolinks", ["cat", "/tmp/env"])))
    assert not any(k.startswith(("REDIS_MASTER_", "WEB_", "MYDNS_")) for k in nolinks), nolinks
    if "kubernetes" in svc:   # the `kubernetes` Service of default: in every pod, links or not
        for env in (own, nolinks):
            assert env["KUBERNETES_SERVICE_HOST"] == str(svc["kubernetes"].cluster_ip)


LATE = """apiVersion: v1
kind: Service
metadata: {name: late}
spec:
  selector: {app: late}
  ports: [{port: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: latepod}
spec:
  containers: [{name: c, command: [sh, -c, 'env > /tmp/env; sleep 3600']}]
"""

BAD_LIVE = """apiVersion: v1
kind: Pod
metadata: {name: badpod}
spec:
  dnsConfig: {nameservers: [1.1.1.1, 1.1.1.2, 1.1.1.3, 1.1.1.4]}
  containers: [{name: c}]
"""


def test_a_container_started_after_a_service_sees_it_and_bad_input_is_refused_live(dns_lab, tmp_path):
    """Runs last: it adds objects to the module's lab."""
    lab = dns_lab
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_LIVE)
    r = kubectl(lab, "apply", "-f", str(bad), check=False)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "more than 3" in lines[0], r.stderr
    assert "badpod" not in kubectl(lab, "get", "pods").stdout
    late = tmp_path / "late.yaml"
    late.write_text(LATE)
    kubectl(lab, "apply", "-f", str(late))

    def late_env():
        r = netlab_cli("exec", "--lab", lab.name, "latepod", "--", "cat", "/tmp/env")
        return _env(r.stdout) if r.returncode == 0 else None
    env = until("latepod's container to write its env", late_env)
    ip = next(line.split()[2] for line in kubectl(lab, "get", "svc").stdout.splitlines() if line.startswith("late "))
    assert env["LATE_SERVICE_HOST"] == ip and env["LATE_PORT_8080_TCP"] == f"tcp://{ip}:8080"
    # the client's container started before `late` existed: it does not have it (as on a kubelet)
    assert "LATE_SERVICE_HOST" not in _env(_ok(lab.pod_exec("client", ["cat", "/tmp/env"])))


BAD = {
    "policy-none": ("spec: {dnsPolicy: None, containers: [{name: c}]}",
                    "Pod default/p: spec.dnsConfig must list at least one nameserver when dnsPolicy is None"),
    "four-ns": ("spec: {dnsConfig: {nameservers: [1.1.1.1, 1.1.1.2, 1.1.1.3, 1.1.1.4]}, containers: [{name: c}]}",
                "Pod default/p: spec.dnsConfig.nameservers lists 4 nameservers, more than 3"),
    "searches": ("spec: {dnsConfig: {searches: [" + ", ".join(f"s{i}.example" for i in range(33))
                 + "]}, containers: [{name: c}]}", "spec.dnsConfig.searches lists 33 search domains, more than 32"),
    "bad-search": ("spec: {dnsConfig: {searches: [Bad_Name]}, containers: [{name: c}]}",
                   "spec.dnsConfig.searches[0] 'Bad_Name' is not a valid DNS name"),
    "policy": ("spec: {dnsPolicy: Cluster, containers: [{name: c}]}", "spec.dnsPolicy 'Cluster' is not supported"),
    "alias": ("spec: {hostAliases: [{ip: nope, hostnames: [a]}], containers: [{name: c}]}",
              "spec.hostAliases[0].ip 'nope' is not an IPv4 address"),
}


@pytest.mark.parametrize("verb", ["validate", "up"])
@pytest.mark.parametrize("case", sorted(BAD) + ["externalname"])
def test_bad_dns_input_is_one_line_exit_2_nothing_built(tmp_path, case, verb):
    if case == "externalname":
        text = ("apiVersion: v1\nkind: Service\nmetadata: {name: e}\n"
                "spec: {type: ExternalName, externalName: 'not a name'}\n")
        expected = "Service default/e: spec.externalName 'not a name' is not a valid DNS name"
    else:
        body, expected = BAD[case]
        text = f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\n{body}\n"
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    r = netlab_cli(verb, str(path), *(["--lab", "t-baddns"] if verb == "up" else []))
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(lines) == 1 and expected in lines[0], (r.returncode, r.stderr)
    assert not os.path.exists("/run/netlab/t-baddns")
