"""The default probe matrix's Service checks, without root: whether a check may expect its answer to name a
backend pod (every pod behind the Service port runs the built-in server there), decided once per Service port
for the whole plan, not once per source pod."""
from __future__ import annotations

from netlab.probe import plan

from .scenarios import cluster, cluster_of, container, pod, service


def lab(web2_runs_a_command: bool, clients: int = 3):
    web = [container(ports=[(8080, "http")])]
    other = [container(ports=[(8080, "http")], command=["sleep", "infinity"])] if web2_runs_a_command else web
    docs = [cluster(nodes=("control-plane", "worker")),
            pod("web1", {"app": "web"}, web, nodeName="t-worker"),
            pod("web2", {"app": "web"}, other, nodeName="t-control-plane"),
            service("web", ports=[{"name": "http", "port": 80, "targetPort": 8080}])]
    docs += [pod(f"client{i}", {"role": "client"}, [container()], nodeName="t-worker") for i in range(clients)]
    return cluster_of(*docs)


def service_checks_of(c):
    return [ch for ch in plan.default_matrix(c) if ch.group == "pod -> service"]


def test_every_source_expects_the_pods_behind_the_service_by_name_when_they_all_run_the_builtin_server():
    checks = service_checks_of(lab(web2_runs_a_command=False))
    assert len(checks) == 5   # every pod (2 backends, 3 clients) to the Service's one port
    assert all(ch.backends == {"web1", "web2"} for ch in checks)


def test_no_source_expects_names_when_a_pod_behind_the_service_runs_a_command_of_its_own():
    checks = service_checks_of(lab(web2_runs_a_command=True))
    assert len(checks) == 5 and all(ch.backends is None for ch in checks)


def test_the_plan_decides_it_once_per_service_port_and_as_each_call_alone_would():
    c = lab(web2_runs_a_command=False, clients=20)
    svc = next(s for s in c.services if s.name == "web")
    asked = []
    real = plan._builtin_serves
    try:
        plan._builtin_serves = lambda pods, port, proto: asked.append(sorted(p.name for p in pods)) or real(
            pods, port, proto)
        checks = service_checks_of(c)
    finally:
        plan._builtin_serves = real
    assert asked == [["web1", "web2"]] and len(checks) == 22
    alone = plan.service_checks(c, plan.pod_source(c.pods[0]), svc, svc.ports, "pod -> service")
    assert [ch.backends for ch in alone] == [{"web1", "web2"}]
