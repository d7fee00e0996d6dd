"""MetalLB's BGP mode on real namespaces (issue 17): BGPPeer and BGPAdvertisement as written, the nodes' BIRD
speakers announcing the LoadBalancer IP to the lab's external router, which installs one ECMP route over
them; the external host's connections (new ones, different source ports) reach the pods through at least
two nodes (each node's own conntrack table shows the connections it forwarded); externalTrafficPolicy
Local announces only from the nodes with a ready local endpoint; deleting the BGPAdvertisement withdraws
the route; `netlab probe lb/NAME` passes. The pod network is VXLAN's (the default backend): MetalLB's
sessions are the only BGP there; one test runs it over the BGP backend's sessions.

One lab (module scope, a unique name, removed whatever happens)."""
from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import time

import pytest

from netlab import names
from netlab.bgp import bird
from netlab.dataplane import bgp
from netlab.dataplane import lab as labmod
from netlab.dataplane import layout
from netlab.dataplane import procs

from .conftest import Lab, kubectl, netlab_cli, until

pytestmark = pytest.mark.skipif(shutil.which("bird") is None or shutil.which("conntrack") is None,
                                reason="bird2 and conntrack are needed (scripts/setup)")

LB_IP = "172.18.200.10"      # the Cluster policy Service
LOCAL_IP = "172.18.200.11"   # the Local policy Service, its one pod on n2
ROUTER = "172.18.255.254"    # the external host: the lab's BGP router
NODES = ("n1", "n2", "n3")

SCENARIO = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: NAME
nodes: [{name: n1, role: control-plane}, {name: n2}, {name: n3}]
networking: {nodeSubnet: 172.18.0.0/16BACKEND}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lab-pool, namespace: metallb-system}
spec: {addresses: [172.18.200.0/28]}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: dc-router, namespace: metallb-system}
spec: {myASN: 64512, peerASN: 64513, peerAddress: 172.18.255.254, holdTime: 9s, keepaliveTime: 3s}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: lab-bgp, namespace: metallb-system}
spec: {ipAddressPools: [lab-pool], communities: ["64512:100"]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      tolerations: [{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}]
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        args: [netexec, --http-port=8080]
        ports: [{containerPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: local}
spec:
  replicas: 1
  selector: {matchLabels: {app: local}}
  template:
    metadata: {labels: {app: local}}
    spec:
      nodeSelector: {kubernetes.io/hostname: n2}
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        args: [netexec, --http-port=8080]
        ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: LoadBalancer
  loadBalancerIP: 172.18.200.10
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: local}
spec:
  type: LoadBalancer
  loadBalancerIP: 172.18.200.11
  externalTrafficPolicy: Local
  selector: {app: local}
  ports: [{port: 80, targetPort: 8080}]
"""


def scenario(name: str, backend: str = "") -> str:
    return SCENARIO.replace("NAME", name).replace("BACKEND", f", backend: {backend}" if backend else "")


def remove(handle: Lab) -> None:
    labmod.down(handle.name)
    assert not labmod.lab_namespaces(handle.name), f"down left namespaces of {handle.name}"
    left = procs.tagged([names.lab_owner_prefix(handle.name)], host=True)
    assert not left, f"down left processes of {handle.name}: {left}"


@pytest.fixture(scope="module")
def mlab():
    handle = Lab(f"mlbgp-{secrets.token_hex(3)}")
    try:
        handle.up(scenario(handle.name))
        yield handle
    finally:
        remove(handle)


def nexthops(handle: Lab, ip: str) -> set[str]:
    """The external host's route to `ip` (BIRD's, from BGP): the gateways of its nexthops."""
    r = handle.ext_exec(["ip", "-4", "route", "show", f"{ip}/32"])
    return set(re.findall(r"via (\S+)", r.stdout)) if "proto bird" in r.stdout else set()


def bgp_state(handle: Lab) -> str:
    """What a failed wait on the routes shows: the speakers' sessions (the router's and each node's), the
    router's BGP routes, the published plan, the speaker pods and the nodes."""
    out = []
    for where in (["--external"], *(["--node", n] for n in NODES)):
        r = netlab_cli("exec", "--lab", handle.name, *where, "--", "birdc", "show", "protocols")
        out.append(f"{' '.join(where)}: birdc show protocols\n{r.stdout}{r.stderr}")
    r = handle.ext_exec(["ip", "-4", "route", "show", "proto", "bird"])
    out.append(f"router: ip route show proto bird\n{r.stdout}{r.stderr}")
    try:
        with open(os.path.join(layout.lb_dir(handle.name), "bgp.json"), encoding="utf-8") as f:
            out.append("bgp.json: " + f.read())
    except OSError as e:
        out.append(f"bgp.json: {e}")
    for args in (("get", "pods", "-n", "metallb-system", "-o", "wide"), ("get", "nodes")):
        r = netlab_cli(*args, "--lab", handle.name)
        out.append(f"netlab {' '.join(args)}\n{r.stdout}{r.stderr}")
    return "\n".join(out)


def node_ips(handle: Lab) -> dict[str, str]:
    return {n: str(handle.node(n).ip) for n in NODES}


def forwarded(handle: Lab, node: str, ip: str) -> int:
    """The connections to ip:80 in the node's own conntrack table (those it forwarded)."""
    r = handle.node_exec(node, ["conntrack", "-L", "-p", "tcp", "-d", ip, "--dport", "80"])
    return len([line for line in r.stdout.splitlines() if line.startswith("tcp")])


def test_the_sessions_and_one_ecmp_route_over_every_node(mlab):
    ips = node_ips(mlab)
    until("the router's route to the LB IP over the three nodes",
          lambda: nexthops(mlab, LB_IP) == set(ips.values()), timeout=90, detail=lambda: bgp_state(mlab))
    # the router's sessions, as a user reads them (birdc through netlab exec)
    r = netlab_cli("exec", "--lab", mlab.name, "--external", "--", "birdc", "show", "protocols")
    assert r.returncode == 0, r.stderr
    protos = bird.parse_protocols(r.stdout)
    assert sum(1 for p in protos.values() if p.established) == 3, r.stdout
    r = netlab_cli("exec", "--lab", mlab.name, "--external", "--", "birdc", "show", "route", "all", f"{LB_IP}/32")
    assert r.returncode == 0 and r.stdout.count("BGP.as_path: 64512") >= 3, r.stdout
    assert "(64512,100)" in r.stdout, r.stdout   # the advertisement's community
    r = netlab_cli("exec", "--lab", mlab.name, "--node", "n1", "--", "birdc", "show", "route", "protocol", "lb_ips")
    assert r.returncode == 0 and f"{LB_IP}/32" in r.stdout, r.stdout + r.stderr
    r = netlab_cli("get", "nodes", "-o", "wide", "--lab", mlab.name)
    assert r.returncode == 0 and r.stdout.count("1/1") == 3, r.stdout


def test_requests_from_outside_reach_the_pods_through_at_least_two_nodes(mlab):
    until("EXTERNAL-IP answers", lambda: mlab.ext_exec(["curl", "-sS", "--max-time", "2",
                                                        f"http://{LB_IP}/hostname"]).returncode == 0, timeout=30)
    before = {n: forwarded(mlab, n, LB_IP) for n in NODES}
    hosts = []
    for _ in range(40):   # new connections, each from a new source port: the router hashes them over its nexthops
        r = mlab.ext_exec(["curl", "-sS", "--max-time", "3", f"http://{LB_IP}/hostname"])
        assert r.returncode == 0, r.stderr
        hosts.append(r.stdout.strip())
    through = {n: forwarded(mlab, n, LB_IP) - before[n] for n in NODES}
    assert sum(1 for c in through.values() if c > 0) >= 2, through
    assert all(h.startswith("web-") for h in hosts) and len(set(hosts)) >= 2, hosts
    # and the pods see the nodes, not the external host (policy Cluster: kube-proxy's masquerade)
    clients = {mlab.ext_exec(["curl", "-sS", "--max-time", "3", f"http://{LB_IP}/clientip"]).stdout.split(":")[0]
               for _ in range(10)}
    assert "172.18.255.254" not in clients, clients


def test_policy_local_announces_only_from_the_node_with_a_local_endpoint(mlab):
    ips = node_ips(mlab)
    until("the Local Service's route via n2 only", lambda: nexthops(mlab, LOCAL_IP) == {ips["n2"]}, timeout=60,
          detail=lambda: bgp_state(mlab))
    r = mlab.ext_exec(["curl", "-sS", "--max-time", "3", f"http://{LOCAL_IP}/clientip"])
    assert r.returncode == 0 and r.stdout.startswith(f"{ROUTER}:"), r.stdout + r.stderr   # the client IP is kept
    # the endpoint gone: the route goes (the control loop re-renders n2's BIRD and reloads it); back: it comes back
    kubectl(mlab, "scale", "deployment", "local", "--replicas=0")
    until("the Local Service's route withdrawn", lambda: not nexthops(mlab, LOCAL_IP), timeout=30)
    assert nexthops(mlab, LB_IP) == set(ips.values())   # the other Service's route untouched
    kubectl(mlab, "scale", "deployment", "local", "--replicas=1")
    until("the Local Service's route back via n2", lambda: nexthops(mlab, LOCAL_IP) == {ips["n2"]}, timeout=60,
          detail=lambda: bgp_state(mlab))


def test_netlab_probe_lb_passes(mlab):
    r = netlab_cli("probe", "--lab", mlab.name, "lb/web:80", "lb/local:80", timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr


def test_deleting_the_advertisement_withdraws_the_route(mlab, tmp_path):
    ips = node_ips(mlab)
    until("the route over every node", lambda: nexthops(mlab, LB_IP) == set(ips.values()), timeout=60,
          detail=lambda: bgp_state(mlab))
    kubectl(mlab, "delete", "bgpadvertisement", "lab-bgp", "-n", "metallb-system")
    until("the route withdrawn", lambda: not nexthops(mlab, LB_IP) and not nexthops(mlab, LOCAL_IP), timeout=30)
    r = mlab.ext_exec(["ip", "-4", "route", "get", LB_IP])
    assert "via" not in r.stdout, r.stdout   # back to the connected subnet
    # applied again, with another community: announced again, every path carrying it from its first update
    # (the router's table sampled as it fills: a path seen without its community is a failure)
    ad = tmp_path / "ad.yaml"
    ad.write_text("apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\n"
                  "metadata: {name: lab-bgp, namespace: metallb-system}\n"
                  "spec: {ipAddressPools: [lab-pool], communities: ['64512:300']}\n")
    kubectl(mlab, "apply", "-f", str(ad))
    seen = router_paths_until(mlab, LB_IP, lambda paths: len(paths) == 3)
    assert all(c == ["(64512,300)"] for c in seen), seen
    until("the route back", lambda: nexthops(mlab, LB_IP) == set(ips.values()), timeout=30,
          detail=lambda: bgp_state(mlab))
    # the community changed in place: each path goes from the old one to the new one, never through none
    ad.write_text(ad.read_text().replace("64512:300", "64512:400"))
    kubectl(mlab, "apply", "-f", str(ad))
    seen = router_paths_until(mlab, LB_IP, lambda paths: paths == [["(64512,400)"]] * 3)
    assert all(c in (["(64512,300)"], ["(64512,400)"]) for c in seen), seen


def router_paths_until(handle: Lab, ip: str, done, timeout: float = 30.0) -> list[list[str]]:
    """The router's BGP paths to ip/32 (each path's communities), read through its BIRD's socket as often as
    birdc answers until `done(paths)`: every path seen on the way, one list of communities each."""
    sock = bgp.socket_path(handle.name, None)
    seen: list[list[str]] = []
    paths: list[list[str]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["birdc", "-s", sock, "show", "route", "all", f"{ip}/32"], capture_output=True,
                             text=True, timeout=5).stdout
        paths = [re.findall(r"\(\d+,\d+\)", "".join(re.findall(r"BGP\.community: (.*)", p)))
                 for p in re.split(r"\n(?=\S*\s+unicast \[)", out.split("Table master4:", 1)[-1]) if "unicast [" in p]
        seen += paths
        if done(paths):
            return seen
        time.sleep(0.01)
    raise AssertionError(f"the router's paths to {ip} were {paths} after {timeout:.0f} s; seen on the way: {seen}")


def test_with_the_bgp_backend_the_lb_routes_travel_on_the_nodes_sessions(lab_factory):
    handle = lab_factory()
    handle.name = f"mlbgp-{secrets.token_hex(3)}"
    try:
        handle.up(scenario(handle.name, "bgp"))
        ips = node_ips(handle)
        until("the LB IP over every node", lambda: nexthops(handle, LB_IP) == set(ips.values()), timeout=90,
              detail=lambda: bgp_state(handle))
        r = handle.ext_exec(["ip", "-4", "route"])
        assert r.stdout.count("proto bird") >= 4, r.stdout   # the three podCIDRs and the LB IP
        r = handle.ext_exec(["curl", "-sS", "--max-time", "3", f"http://{LB_IP}/hostname"])
        assert r.returncode == 0 and r.stdout.startswith("web-"), r.stdout + r.stderr
    finally:
        remove(handle)
