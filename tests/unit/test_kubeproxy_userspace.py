"""kube-proxy's userspace mode: the rendered rules and proxy config (golden), the listeners' ports, and the
proxy's pure parts (round-robin, the retry order, ClientIP affinity, the config parser); then the proxy
process itself on loopback (no root): a refused endpoint is retried on the next one, and a reload
changes the endpoints without dropping an established relay.

Goldens: tests/unit/golden/userspace_*.txt; after an intended change regenerate them with
    NETLAB_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_kubeproxy_userspace.py
and review the diff.
"""
from __future__ import annotations

import asyncio
import json

import pytest

from netlab.render import kubeproxy_userspace as ku
from netlab.render.iptables import node_rules, to_restore
from netlab.workload.userspace_proxy import DIAL_TIMEOUTS, Balancer, ConfigError, Proxy, parse_config

from . import golden
from .test_kubeproxy_iptables import SCENARIOS
from .test_kubeproxy_iptables import cluster_of as _cluster_of
from .test_netexec import free_port as _free_port  # never the same port twice


def cluster_of(name: str):
    c = _cluster_of(name)
    c.networking.proxy_mode = "userspace"
    return c


def golden_text(name: str) -> str:
    c = cluster_of(name)
    return "".join(f"# ---- node {n.name}\n" + to_restore(node_rules(c, n)) + ku.describe(c, n) for n in c.nodes)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_golden(name):
    golden.check(f"userspace_{name}", golden_text(name), "userspace rules and config differ")


def _listener(c, node, name: str, proto: str = "TCP") -> ku.Listener:
    return next(ln for ln in ku.listeners(c, node) if ln.info.name == name and ln.protocol == proto)


def test_every_entry_of_a_service_port_goes_to_its_listener():
    c = cluster_of("external")
    node = c.nodes[1]
    nat = ku.userspace_tables(c, node)["nat"]
    lb = _listener(c, node, "default/lb:https")
    redirect, dnat = f"REDIRECT --to-ports {lb.port}", f"DNAT --to-destination {node.ip}:{lb.port}"
    container = [r for r in nat.chains["KUBE-PORTALS-CONTAINER"] if '"default/lb:https"' in r]
    host = [r for r in nat.chains["KUBE-PORTALS-HOST"] if '"default/lb:https"' in r]
    # ClusterIP and the LB IP, from pods/outside (REDIRECT) and from the node itself (DNAT to its address)
    assert [r.split()[3] for r in container] == ["10.96.0.122/32", "192.0.2.60/32"]
    assert all(r.endswith(redirect) and "--dport 443" in r for r in container)
    assert [r.split()[3] for r in host] == ["10.96.0.122/32", "192.0.2.60/32"]
    assert all(r.endswith(dnat) for r in host)
    assert any("--dport 30443" in r and r.endswith(redirect) for r in nat.chains["KUBE-NODEPORT-CONTAINER"])
    assert any("--dport 30443" in r and r.endswith(dnat) for r in nat.chains["KUBE-NODEPORT-HOST"])
    ext = _listener(c, node, "apps/ext:http")
    assert any("-d 192.0.2.50/32" in r and r.endswith(f"--to-ports {ext.port}")
               for r in nat.chains["KUBE-PORTALS-CONTAINER"])
    # the NodePort chains are entered for local destinations only, after the portals
    assert [j for j in nat.jumps if j[0] == "PREROUTING"][1][1].startswith("-m addrtype --dst-type LOCAL")
    # headless, ExternalName and Services handed to another proxy have no listener
    names = {ln.info.name for ln in ku.listeners(c, node)}
    assert not [n for n in names if n.split("/")[1].split(":")[0] in ("headless", "extname")]


def test_userspace_ignores_the_traffic_policies_and_keeps_affinity():
    c = cluster_of("policies")
    cp, worker = c.nodes
    # the echo pods are on the worker only: kube-proxy's userspace mode sends every entry's traffic to
    # every endpoint (it never had traffic policies), from either node
    for node in (cp, worker):
        assert len(_listener(c, node, "default/etp-local:http").endpoints) == 2
        assert len(_listener(c, node, "default/itp-local:http").endpoints) == 2
    cfg = ku.proxy_config(c, cp)
    sticky = next(e for e in cfg["listeners"] if e["service"] == "default/sticky:http")
    assert sticky["affinitySeconds"] == 600
    assert next(e for e in cfg["listeners"] if e["service"] == "default/etp-local:http")["affinitySeconds"] is None


def test_only_ready_endpoints_else_the_serving_terminating_ones():
    c = cluster_of("basic")
    svc = next(s for s in c.services if s.name == "web")
    eps = svc.endpoints["http"]
    eps[0].ready = False
    node = c.nodes[0]
    assert f"{eps[0].ip}:{eps[0].port}" not in _listener(c, node, "default/web:http").endpoints
    for e in eps:
        e.ready, e.serving, e.terminating = False, True, True
    assert len(_listener(c, node, "default/web:http").endpoints) == len(eps)
    eps[1].serving = False
    assert len(_listener(c, node, "default/web:http").endpoints) == len(eps) - 1


def test_listener_ports_are_stable_and_distinct():
    names = [(f"default/svc-{i}:http", "TCP") for i in range(300)] + [("default/svc-0:http", "UDP")]
    ports = ku.listener_ports(names)
    assert ports == ku.listener_ports(list(reversed(names)))          # whatever the order
    tcp = [p for (n, proto), p in ports.items() if proto == "TCP"]
    assert len(set(tcp)) == len(tcp)
    assert all(ku.PORT_BASE <= p < ku.PORT_BASE + ku.PORT_SPAN for p in ports.values())
    # one more Service does not move the others (but for the one it would collide with, if any)
    more = ku.listener_ports(names + [("default/new:http", "TCP")])
    moved = [k for k in ports if more[k] != ports[k]]
    assert len(moved) <= 1
    # a port something else listens on (a hostNetwork pod) is skipped
    first = ports[("default/svc-0:http", "TCP")]
    assert ku.listener_ports(names, {("TCP", first)})[("default/svc-0:http", "TCP")] == \
        ku.PORT_BASE + (first - ku.PORT_BASE + 1) % ku.PORT_SPAN


def test_the_config_is_what_the_proxy_reads():
    c = cluster_of("basic")
    for node in c.nodes:
        parsed = parse_config(ku.config_text(c, node))
        assert parsed.pop(("", 0)) == {"udpIdleSeconds": ku.UDP_IDLE_SECONDS}
        assert {k: v["endpoints"] for k, v in parsed.items()} == \
            {(ln.protocol, ln.port): list(ln.endpoints) for ln in ku.listeners(c, node)}


# ---------------------------------------------------------------- the proxy's pure parts

class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


EPS = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]


def test_round_robin():
    b = Balancer(EPS)
    assert [b.next("1.1.1.1") for _ in range(7)] == EPS + EPS + EPS[:1]
    assert Balancer([]).next("1.1.1.1") is None
    assert list(Balancer([]).tries("1.1.1.1")) == []


def test_a_failed_connect_is_retried_on_the_next_endpoint_with_longer_timeouts():
    b = Balancer(EPS)
    tries = b.tries("1.1.1.1")
    assert next(tries) == (EPS[0], DIAL_TIMEOUTS[0])
    assert next(tries) == (EPS[1], DIAL_TIMEOUTS[1])       # EPS[0] refused: the next one
    assert b.next("2.2.2.2") == EPS[2]                    # another connection meanwhile moves the round-robin
    assert next(tries) == (EPS[0], DIAL_TIMEOUTS[2])
    assert [t for _, t in tries] == list(DIAL_TIMEOUTS[3:])   # four attempts in all
    assert len(list(Balancer(EPS[:1]).tries("x"))) == len(DIAL_TIMEOUTS)   # one endpoint: tried again


def test_client_ip_affinity():
    clock = Clock()
    b = Balancer(EPS, affinity_seconds=10, clock=clock)
    first = b.next("1.1.1.1")
    assert b.next("2.2.2.2") != first
    for _ in range(5):
        clock.now += 9                                    # each use renews it
        assert b.next("1.1.1.1") == first
    clock.now += 11                                       # idle longer than the timeout: forgotten
    b.forget_idle()
    assert "1.1.1.1" not in b.affinity
    # a failed connect moves the client to another endpoint, which it then keeps
    tries = b.tries("3.3.3.3")
    stuck, _ = next(tries)
    moved, _ = next(tries)
    assert moved != stuck
    assert b.next("3.3.3.3") == moved
    # an endpoint that is gone drops its clients; a changed setting drops them all
    b.update([e for e in EPS if e != moved], 10)
    assert "3.3.3.3" not in b.affinity
    b.next("4.4.4.4")
    b.update(b.endpoints, 20)
    assert b.affinity == {}


def test_without_affinity_every_connection_moves_on():
    b = Balancer(EPS)
    assert len({b.next("1.1.1.1") for _ in range(3)}) == 3 and b.affinity == {}


def test_bad_configs_are_refused():
    for text in ("{", '{"listeners": [{"protocol": "SCTP", "port": 1}]}',
                 '{"listeners": [{"protocol": "TCP", "port": 0}]}',
                 '{"listeners": [{"protocol": "TCP", "port": 80, "endpoints": ["nope"]}]}', "[]"):
        with pytest.raises(ConfigError):
            parse_config(text)


# ---------------------------------------------------------------- the process, on loopback


def test_the_proxy_retries_and_reloads_without_dropping_a_relay(tmp_path):
    async def scenario() -> None:
        async def serve(name: bytes):
            async def handle(r, w):
                while data := await r.readline():
                    w.write(name + b" " + data)
                    await w.drain()
                w.close()
            return await asyncio.start_server(handle, "127.0.0.1", 0)
        a, b = await serve(b"a"), await serve(b"b")
        pa, pb = (s.sockets[0].getsockname()[1] for s in (a, b))
        dead = _free_port()                        # nothing listens there: connects are refused
        port = _free_port()
        cfg, pidfile = tmp_path / "proxy.json", tmp_path / "proxy.pid"

        def write(eps: list[int]) -> None:
            cfg.write_text(json.dumps({"listeners": [{"service": "t/web", "protocol": "TCP", "port": port,
                                                      "endpoints": [f"127.0.0.1:{p}" for p in eps]}]}))
        write([dead, pa])
        proxy = Proxy(str(cfg), str(pidfile))
        await proxy.load()
        assert pidfile.read_text().split()[1] == "0"

        async def ask(msg: bytes) -> tuple:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(msg + b"\n")
            await w.drain()
            return r, w, await r.readline()
        answers = [(await ask(b"hi"))[2] for _ in range(4)]
        assert answers == [b"a hi\n"] * 4          # the refused endpoint never fails a request
        # an established relay, then a reload to other endpoints: the relay goes on, new ones go to b
        r, w, first = await ask(b"one")
        assert first == b"a one\n"
        write([pb])
        await proxy.load()
        assert pidfile.read_text().split()[1] == "1"
        w.write(b"two\n")
        await w.drain()
        assert await r.readline() == b"a two\n"
        assert (await ask(b"new"))[2] == b"b new\n"
        w.close()
        # no endpoints: the listener closes, connections are refused
        write([])
        await proxy.load()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
        for s in (a, b):
            s.close()
    asyncio.run(scenario())


def test_the_probe_expects_no_traffic_policy_in_userspace_mode():
    from netlab.probe.plan import node_source, service_checks
    for mode, want in (("iptables", "timeout"), ("userspace", "reachable")):
        c = cluster_of("policies")
        c.networking.proxy_mode = mode
        cp = c.nodes[0]                        # the echo pods are on the worker only
        svc = next(s for s in c.services if s.name == "etp-local")
        checks = service_checks(c, node_source(cp), svc, svc.ports, "t", via="nodeport", nodes=[cp])
        assert [ch.expect for ch in checks] == [want], mode


USERSPACE_WITH_PROTECTIONS = """\
apiVersion: netlab.dev/v1alpha1
kind: Cluster
networking: {kubeProxyMode: MODE}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: default}
spec: {podSelector: {}}
---
apiVersion: v1
kind: Service
metadata: {name: lb}
spec:
  type: LoadBalancer
  selector: {app: x}
  loadBalancerSourceRanges: [10.0.0.0/8]
  ports: [{port: 80}]
"""


@pytest.mark.parametrize("as_scenario", [False, True])
def test_what_userspace_cannot_enforce_is_refused_not_dropped(as_scenario):
    """A NetworkPolicy (the proxy connects from the node, which policies always allow) and
    loadBalancerSourceRanges (no firewall chain): each is an error naming the object, in validate, up and
    apply (a built Cluster or the parsed Scenario), and only in the modes that cannot enforce them."""
    from netlab.errors import SpecProblems
    from netlab.model.build import build
    from netlab.model.preflight import check_proxy_mode
    from netlab.spec.parse import load_text
    sc = load_text(USERSPACE_WITH_PROTECTIONS.replace("MODE", "userspace"), "lab.yaml")
    target = sc if as_scenario else build(sc)
    with pytest.raises(SpecProblems) as e:
        check_proxy_mode(target)
    lines = str(e.value).splitlines()
    assert lines[0].startswith("NetworkPolicy default/deny: kubeProxyMode userspace cannot enforce it")
    assert lines[1].startswith("Service default/lb: kubeProxyMode userspace cannot enforce "
                               "spec.loadBalancerSourceRanges")
    for mode in ("iptables", "nftables", "ipvs"):
        sc = load_text(USERSPACE_WITH_PROTECTIONS.replace("MODE", mode), "lab.yaml")
        check_proxy_mode(sc if as_scenario else build(sc))
    # `mode` overrides the document's: a lab switched with `up --proxy-mode`, or applied to
    check_proxy_mode(sc, "iptables")
    with pytest.raises(SpecProblems):
        check_proxy_mode(sc, "userspace")
