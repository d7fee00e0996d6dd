"""Limits derived from the machine's readings (netlab/spec/capacity.py) and the parser's one-line errors
when a scenario exceeds one: fixed readings, no kernel."""
from __future__ import annotations

import pytest

from netlab.errors import SpecError
from netlab.spec import capacity
from netlab.spec.capacity import BR_MAX_PORTS, NODE_KIB, POD_KIB, RESERVE_KIB, MachineLimits, Readings
from netlab.spec.parse import check_scenario_machine, load_text

GIB = 2**20   # KiB

# this machine as the benchmark saw it: 24 GiB, Debian's defaults
BIG = Readings(mem_available_kib=22 * GIB, pid_max=32768, threads_max=192729, tasks=250,
               max_net_namespaces=96364, max_uts_namespaces=96364, net_namespaces=3, mount_max=100000, mounts=40)


def scenario(nodes: int = 2, replicas: int = 1, name: str = "cap", pods: int = 0, command: bool = False) -> str:
    container = "{name: c, command: [sleep, infinity]}" if command else "{name: c, ports: [{containerPort: 8080}]}"
    text = (f"apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nname: {name}\n"
            f"nodes: [{', '.join(['{role: worker}'] * nodes)}]\n"
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n"
            f"  replicas: {replicas}\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n"
            f"    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers: [{container}]\n")
    for i in range(pods):
        text += f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}}}\nspec:\n  containers: [{container}]\n"
    return text


def refused(text: str, readings: Readings) -> str:
    with pytest.raises(SpecError) as info:
        load_text(text, limits=MachineLimits(readings))
    assert info.value.exit_code == 2
    line = str(info.value)
    assert "\n" not in line
    return line


def test_memory_bounds_pods_after_the_nodes_cost():
    r = Readings(mem_available_kib=4 * GIB)
    (mem,) = capacity.pod_limits(r, nodes=10)
    assert mem.what == "memory"
    assert mem.value == (4 * GIB - RESERVE_KIB - 10 * NODE_KIB) // POD_KIB
    assert "MemAvailable 4.0 GiB in /proc/meminfo" in mem.source and f"{POD_KIB} KiB a pod" in mem.source
    assert capacity.pod_limits(Readings(mem_available_kib=RESERVE_KIB // 2), 1)[0].value == 0


def test_this_machine_holds_the_issues_10000_pods():
    limits = MachineLimits(BIG)
    assert limits.nodes_over("cap", 100) is None
    assert limits.pods_over("cap", 10_000, 100) is None
    load_text(scenario(nodes=100, replicas=10_000), limits=limits)   # and the parser agrees


def test_the_binding_limit_is_the_lowest_one_exceeded():
    r = Readings(mem_available_kib=64 * GIB, max_net_namespaces=1000, max_uts_namespaces=5000, mount_max=100000)
    over = MachineLimits(r).pods_over("cap", 2000, 2)
    assert over.what == "namespaces" and over.value == 1000 - 2 - 2
    assert "user.max_net_namespaces 1000" in over.source and "sysctl -w user.max_net_namespaces=N" in over.fix
    r = Readings(mem_available_kib=64 * GIB, mount_max=1000, mounts=100)
    over = MachineLimits(r).pods_over("cap", 500, 2)
    assert (over.what, over.value) == ("mounts", (1000 - 100 - 2) // 2)
    assert "fs.mount-max 1000, 100 mounts in use" in over.source


def test_processes_count_only_pods_that_run_programs():
    r = Readings(pid_max=5000, threads_max=100000, tasks=1000)
    assert MachineLimits(r).pods_over("cap", 10_000, 10) is None    # built-in server pods: no process each
    over = MachineLimits(r).pods_over("cap", 10_000, 10, processes_per_pod=1.0)
    assert over.what == "processes" and over.value == 5000 - 1000 - 1000 - 10 * capacity.PROCS_PER_NODE
    assert "kernel.pid_max 5000" in over.source and "sysctl -w kernel.pid_max=N" in over.fix


def test_nodes_are_bound_by_the_underlay_bridge_without_readings():
    (ports,) = capacity.node_limits(Readings())
    assert ports.value == BR_MAX_PORTS - capacity.UNDERLAY_EXTRA_PORTS
    assert "BR_MAX_PORTS 1024" in ports.source


def test_pods_per_node_podcidr_then_bridge_ports():
    assert capacity.pods_per_node(256).value == 253
    assert capacity.pods_per_node(256).what == "podCIDR"
    assert capacity.pods_per_node(4096).value == BR_MAX_PORTS
    assert capacity.pods_per_node(4096).what == "cni0 bridge ports"


def test_a_lab_that_is_up_is_counted_back():
    r = Readings(mem_available_kib=2 * GIB, net_namespaces=5003, max_net_namespaces=10000, max_uts_namespaces=10000,
                 labs=(("cap", 5000, 3), ("other", 10, 1)))
    assert MachineLimits(r).pods_over("other", 5000, 3) is not None   # another lab's pods are in use
    assert MachineLimits(r).pods_over("cap", 5000, 3) is None         # reconciling `cap`: its own are not
    assert r.without("cap").net_namespaces == 0 and r.without("cap").labs == (("other", 10, 1),)
    assert r.without("none") is r


def test_error_names_the_document_field_limit_source_and_fix():
    r = Readings(mem_available_kib=2 * GIB)
    line = refused(scenario(nodes=2, replicas=5000), r)
    assert line.startswith("Deployment default/web: spec.replicas 5000 brings the scenario to 5000 pods, but this "
                           "machine holds at most ")
    most = (2 * GIB - RESERVE_KIB - 2 * NODE_KIB) // POD_KIB
    assert f"at most {most} pods (memory: MemAvailable 2.0 GiB in /proc/meminfo" in line
    assert line.endswith("; use fewer replicas, or free memory on this machine")


def test_the_document_that_crosses_the_limit_is_named():
    r = Readings(max_net_namespaces=20, max_uts_namespaces=1000)   # 20 - 2 nodes - 2 = 16 pods
    line = refused(scenario(nodes=2, replicas=0, pods=20), r)
    assert line.startswith("Pod default/p16: brings the scenario to 20 pods, but this machine holds at most 16 pods "
                           "(namespaces: user.max_net_namespaces 20, 4 in use or taken by the nodes)")
    # Pods are counted first, then Deployments, ReplicaSets and StatefulSets
    line = refused(scenario(nodes=2, replicas=10, pods=10), r)
    assert line.startswith("Deployment default/web: spec.replicas 10 brings the scenario to 20 pods")
    assert load_text(scenario(nodes=2, replicas=10, pods=6), limits=MachineLimits(r)).name == "cap"


def test_too_many_nodes_names_the_cluster_nodes_field():
    r = Readings(mem_available_kib=RESERVE_KIB + 10 * NODE_KIB + 100)
    line = refused(scenario(nodes=11, replicas=0), r)
    assert line.startswith("Cluster (document 1): nodes lists 11 nodes, but this machine holds at most 10 nodes "
                           "(memory: ")
    assert line.endswith("; use fewer nodes, or free memory on this machine")


def test_without_readings_the_parser_stays_pure_and_uncapped():
    sc = load_text(scenario(nodes=70, replicas=20_000))     # the old caps were 64 nodes and 5,000 pods
    assert len(sc.nodes) == 70 and sc.deployments[0].replicas == 20_000


def test_a_parsed_scenario_is_checked_as_the_parser_does():
    sc = load_text(scenario(nodes=2, replicas=5000))
    with pytest.raises(SpecError, match="^Deployment default/web: spec.replicas 5000 brings the scenario to 5000 pods"):
        check_scenario_machine(sc, MachineLimits(Readings(mem_available_kib=2 * GIB)))
    check_scenario_machine(sc, MachineLimits(BIG))


def test_neighbour_note_names_the_host_settings():
    assert capacity.neighbour_note(100, 1024) is None
    note = capacity.neighbour_note(10_000, 1024)
    assert "gc_thresh3=1024" in note and "gc_thresh2=32768 net.ipv4.neigh.default.gc_thresh3=65536" in note
