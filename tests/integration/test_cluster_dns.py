"""The lab's cluster DNS (issue 13): the coredns pods behind kube-system/kube-dns at the service subnet's
.10, answering from the lab's live state. Real `dig` in a pod, over UDP and TCP, through the kube-dns
ClusterIP (kube-proxy's rules, the DNS pods' real server); a real upstream (dnsmasq in the lab's
external host) for names outside the cluster domain."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time

import pytest

from netlab.dataplane import lab as labmod

from .conftest import kubectl, until

EXTERNAL = "172.18.255.254"   # the lab's external host (the node subnet's last host address)
DNS = "10.96.0.10"

SCENARIO = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: dns
nodes: [{name: n1, role: control-plane}, {name: n2}]
dns: DNSCONF
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: n2
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
metadata: {name: hl}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: ext}
spec:
  type: ExternalName
  externalName: www.outside.test
---
apiVersion: v1
kind: Service
metadata: {name: sub}
spec:
  clusterIP: None
  selector: {app: sub}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Pod
metadata: {name: member, labels: {app: sub}}
spec:
  hostname: m1
  subdomain: sub
  containers: [{name: web, image: nginx}]
"""

EXT_AS_CLUSTERIP = """apiVersion: v1
kind: Service
metadata: {name: ext}
spec:
  type: ClusterIP
  selector: {app: web}
  ports: [{name: http, port: 80}]
"""


def scenario(dnsconf: str) -> str:
    return SCENARIO.replace("DNSCONF", dnsconf)


def dig(lab, *args: str, tcp: bool = False, pod: str = "client", server: str = DNS):
    """`dig @SERVER ARGS` in the pod (`netlab exec`: the pod's own namespace and sandbox); the server is
    kube-dns's ClusterIP unless given (a DNS pod's own IP)."""
    argv = ["dig", f"@{server}", "+time=2", "+tries=1", *(["+tcp"] if tcp else []), *args]
    return lab.pod_exec(pod, argv, timeout=20)


def answer(lab, name: str, rtype: str = "A", tcp: bool = False, server: str = DNS) -> list[str]:
    r = dig(lab, "+short", name, rtype, tcp=tcp, server=server)
    return sorted(x for x in r.stdout.split() if x and not x.startswith(";;")) if r.returncode == 0 else []


def status(lab, name: str, rtype: str = "A") -> tuple[str, int]:
    """(rcode, number of answers) of a query."""
    out = dig(lab, name, rtype).stdout
    rcode = out.split("status: ", 1)[1].split(",", 1)[0] if "status: " in out else "NONE"
    n = int(out.split("ANSWER: ", 1)[1].split(",", 1)[0]) if "ANSWER: " in out else -1
    return rcode, n


def svc_ip(lab, name: str, ns: str = "default") -> str:
    """The Service's ClusterIP as `netlab get svc` shows it."""
    rows = kubectl(lab, "get", "svc", name, "-n", ns).stdout.splitlines()
    return rows[1].split()[2]


def upstream(lab, tmp: str) -> subprocess.Popen:
    """A real DNS server (dnsmasq) in the lab's external host: www.outside.test -> 192.0.2.77."""
    conf = os.path.join(tmp, "dnsmasq.conf")
    with open(conf, "w") as f:
        f.write(f"no-resolv\nno-hosts\nbind-interfaces\nlisten-address={EXTERNAL}\nport=53\n"
                "address=/www.outside.test/192.0.2.77\nuser=root\npid-file=\n")
    argv = labmod.netns_exec_argv(lab.cluster.external_netns, ["dnsmasq", "--keep-in-foreground", f"--conf-file={conf}"])
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def ready(lab, want: int = 2) -> bool:
    """The DNS pods ready and kube-dns answering through its ClusterIP."""
    out = kubectl(lab, "get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", check=False).stdout
    return out.count("1/1") >= want and answer(lab, "kubernetes.default.svc.cluster.local") == ["10.96.0.1"]


def wait_ready(lab, want: int = 2) -> None:
    try:
        until("the cluster DNS answering", lambda: ready(lab, want), timeout=60)
    except AssertionError as e:
        pods = kubectl(lab, "get", "pods", "-A", check=False).stdout
        raise AssertionError(f"{e}\n{pods}\n{dig(lab, 'kubernetes.default.svc.cluster.local').stdout}") from None


@pytest.fixture
def dns_lab(lab):
    lab.up(scenario(f"{{upstreamNameservers: [{EXTERNAL}], ttl: 5}}"))
    wait_ready(lab)
    return lab


def test_dns_answers_when_up_returns(lab, monkeypatch):
    """`up` of a new lab probes the DNS pods' readiness itself and follows it before it returns (no kubelet
    runs before its control loop starts): kube-dns has its endpoints and answers at once, no waiting. The
    probes run in up's one pass, once the DNS servers run, and that pass writes kube-dns's endpoints: no
    second pass is made for them (it was the last 5 s of a 10,000-pod bring-up)."""
    from netlab.live import sync
    passes = []
    whole = sync.LiveLab.sync

    def counted(self, *args, **kw):
        passes.append("scoped" if kw.get("scoped") else "whole")
        return whole(self, *args, **kw)
    monkeypatch.setattr(sync.LiveLab, "sync", counted)
    lab.up(scenario("{replicas: 2}"))
    assert passes == ["whole"], passes
    dep = json.loads(kubectl(lab, "get", "deployment", "coredns", "-n", "kube-system", "-o", "json").stdout)
    assert dep["status"].get("availableReplicas") == 2, dep["status"]
    assert ready(lab), dig(lab, "kubernetes.default.svc.cluster.local").stdout


def test_cluster_names_over_udp_and_tcp(dns_lab):
    lab = dns_lab
    web = svc_ip(lab, "web")
    out = kubectl(lab, "get", "svc", "-n", "kube-system").stdout
    assert "kube-dns" in out and DNS in out and "53/UDP,53/TCP,9153/TCP" in out
    assert "coredns-" in kubectl(lab, "get", "pods", "-A").stdout
    for tcp in (False, True):
        assert answer(lab, "kubernetes.default.svc.cluster.local", tcp=tcp) == ["10.96.0.1"]
        assert answer(lab, "web.default.svc.cluster.local.", tcp=tcp) == [web]
    # SRV of a named port: ClusterIP -> the Service's name; headless -> one per endpoint
    srv = answer(lab, "_http._tcp.web.default.svc.cluster.local", "SRV")
    assert srv == sorted(["0", "100", "80", "web.default.svc.cluster.local."])
    pods = sorted(str(p.ip) for p in lab.pods("web-"))
    assert answer(lab, "hl.default.svc.cluster.local") == pods
    hsrv = dig(lab, "+short", "_http._tcp.hl.default.svc.cluster.local", "SRV").stdout.splitlines()
    assert sorted(line.split()[3] for line in hsrv) == sorted(
        f"{ip.replace('.', '-')}.hl.default.svc.cluster.local." for ip in pods)
    # PTR of a ClusterIP
    rev = ".".join(reversed(web.split("."))) + ".in-addr.arpa"
    assert answer(lab, rev, "PTR") == ["web.default.svc.cluster.local."]
    # pod records (insecure: any address with dashes in an existing namespace)
    assert answer(lab, "10-1-2-3.default.pod.cluster.local") == ["10.1.2.3"]
    # hostname.subdomain behind a headless Service
    member = str(lab.pod("member").ip)
    assert until("m1.sub", lambda: answer(lab, "m1.sub.default.svc.cluster.local") == [member], timeout=20)
    # NXDOMAIN vs NODATA
    assert status(lab, "nosuch.default.svc.cluster.local") == ("NXDOMAIN", 0)
    assert status(lab, "web.default.svc.cluster.local", "AAAA") == ("NOERROR", 0)
    assert status(lab, "web.nosuchns.svc.cluster.local") == ("NXDOMAIN", 0)
    # dns-version TXT
    assert answer(lab, "dns-version.cluster.local", "TXT") == ['"1.1.0"']
    # netlab probe dns/NAME: the short name through the pod's search path, the answer and the latency
    r = kubectl(lab, "probe", "--from", "pod/client", "dns/web", "dns/kubernetes.default")
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and len(lines) == 2, r.stdout
    assert f"NOERROR web.default.svc.cluster.local. {web} (" in lines[0] and lines[0].endswith(" ms)"), lines
    assert "kubernetes.default.svc.cluster.local. 10.96.0.1" in lines[1], lines
    r = kubectl(lab, "probe", "--from", "pod/client", "dns/nosuch.default.svc.cluster.local.", check=False)
    assert r.returncode == 1 and "NXDOMAIN" in r.stdout, r.stdout


def test_headless_follows_scaling_and_endpoint_changes(dns_lab):
    lab = dns_lab
    kubectl(lab, "scale", "deployment", "web", "--replicas=3")

    def three():
        got = answer(lab, "hl.default.svc.cluster.local")
        return len(got) == 3 and got
    got = until("3 addresses for the headless Service", three, timeout=45)
    kubectl(lab, "scale", "deployment", "web", "--replicas=1")
    until("1 address", lambda: len(answer(lab, "hl.default.svc.cluster.local")) == 1, timeout=45)
    # a deleted pod: its address leaves the answer within a few seconds of its endpoint going
    kubectl(lab, "scale", "deployment", "web", "--replicas=0")

    def slice_empty():
        doc = json.loads(kubectl(lab, "get", "endpointslices", "-o", "json").stdout)
        mine = [s for s in doc["items"] if s["metadata"]["labels"].get("kubernetes.io/service-name") == "hl"]
        return all(not (e.get("conditions") or {}).get("ready") for s in mine for e in s.get("endpoints") or [])
    until("hl's EndpointSlice without a ready endpoint", slice_empty, timeout=45, every=0.1)
    t0 = time.monotonic()
    until("no ready endpoint: NXDOMAIN", lambda: status(lab, "hl.default.svc.cluster.local")[0] == "NXDOMAIN",
          timeout=10, every=0.1)
    assert got and time.monotonic() - t0 < 5


def test_externalname_and_its_switch_to_clusterip(dns_lab):
    lab = dns_lab
    with tempfile.TemporaryDirectory() as tmp:
        server = upstream(lab, tmp)
        try:
            # the CNAME, and its target chased through the upstream
            until("the upstream up", lambda: "192.0.2.77" in answer(lab, "www.outside.test"), timeout=20)
            # each DNS pod checks its upstream on its own (kube-dns balances between them): both, in turn
            chase = lambda: dig(lab, "+short", "ext.default.svc.cluster.local").stdout.split()  # noqa: E731
            until("the CNAME chased by every DNS pod", lambda: all(chase() == ["www.outside.test.", "192.0.2.77"]
                                                                   for _ in range(6)), timeout=20)
            for tcp in (False, True):
                assert answer(lab, "www.outside.test", tcp=tcp) == ["192.0.2.77"]
        finally:
            server.terminate()
            server.wait(5)
    path = os.path.join(tempfile.mkdtemp(), "ext.yaml")
    with open(path, "w") as f:
        f.write(EXT_AS_CLUSTERIP)
    kubectl(lab, "apply", "-f", path)
    cip = svc_ip(lab, "ext")
    assert cip not in ("<none>", "None"), cip
    # each DNS pod reloads its zone on its own (within a second): asked straight, each answers the
    # ClusterIP and no CNAME; then kube-dns (either pod, as kube-proxy picks) answers only that
    servers = [str(p.ip) for p in lab.cluster.pods if p.namespace == "kube-system" and p.name.startswith("coredns-")]
    assert len(servers) == 2, servers

    def straight(server: str) -> list[str]:
        return answer(lab, "ext.default.svc.cluster.local", server=server)
    until("ext a ClusterIP Service in every DNS pod", lambda: all(straight(s) == [cip] for s in servers), timeout=20,
          detail=lambda: {s: straight(s) for s in servers})
    for tcp in (False, True, False):
        assert answer(lab, "ext.default.svc.cluster.local", tcp=tcp) == [cip]


def test_no_upstream_is_servfail_at_once(lab):
    lab.up(scenario("{upstreamNameservers: [], replicas: 1}"))
    wait_ready(lab, 1)
    t0 = time.monotonic()
    assert status(lab, "www.example.org") == ("SERVFAIL", 0)
    assert time.monotonic() - t0 < 2.0
    # pods disabled/verified are the Cluster document's: insecure here
    assert answer(lab, "10-1-2-3.default.pod.cluster.local") == ["10.1.2.3"]


def test_verified_pod_records(lab):
    lab.up(scenario("{pods: verified, replicas: 1}"))
    wait_ready(lab, 1)
    client = str(lab.pod("client").ip)
    name = client.replace(".", "-") + ".default.pod.cluster.local"
    assert until("the client's pod record", lambda: answer(lab, name) == [client], timeout=20)
    assert status(lab, "10-1-2-3.default.pod.cluster.local")[0] == "NXDOMAIN"   # no such pod


def test_a_killed_dns_server_is_restarted(dns_lab):
    lab = dns_lab
    pods = [p for p in lab.cluster.pods if p.namespace == "kube-system" and p.name.startswith("coredns-")]
    assert len(pods) == 2
    victim = pods[0]
    # the server process of that pod (its container's process, found by the pod's network namespace)
    out = subprocess.run(["ip", "netns", "pids", victim.netns], capture_output=True, text=True).stdout.split()
    mine = [int(p) for p in out if "netlab.dns.server" in open(f"/proc/{p}/cmdline").read().replace("\0", " ")]
    assert mine
    for pid in mine:
        os.kill(pid, signal.SIGKILL)

    def restarted():
        rows = kubectl(lab, "get", "pods", "-n", "kube-system", check=False).stdout.splitlines()
        row = next((r.split() for r in rows if r.startswith(victim.name)), None)
        return row is not None and row[1] == "1/1" and int(row[3]) >= 1
    until("the DNS pod restarted and ready", restarted, timeout=60)
    # it answers again, itself (straight to its pod IP)

    def answers():
        r = lab.pod_exec("client", ["dig", f"@{victim.ip}", "+short", "+time=1", "+tries=1",
                                    "kubernetes.default.svc.cluster.local"])
        return r.stdout.split() == ["10.96.0.1"]
    until("the restarted server answering", answers, timeout=20)
