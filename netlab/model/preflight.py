"""Checks of a built cluster that `up` and `validate` share, so `validate` refuses what `up` refuses,
with the same message: the containers' commands.

netlab runs a container's command from the host's filesystem (there are no images): `check_commands`
is pure; `check_host_commands` looks for each program on this machine (PATH, or the path given), and
reads nothing else. Neither needs root; neither changes anything.
"""
from __future__ import annotations

import os
import shutil

from ..errors import SpecError, SpecProblems
from ..spec.limits import MAX_PROBLEMS
from ..spec.types import Scenario
from .objects import Cluster  # noqa: F401 - what the checks take (or a Scenario)

BUILTIN_SERVER = "drop command and args to get the built-in test server"


def _containers(cluster):
    """(where, path, container) once per pod template: a Deployment's replicas are one template. `cluster`
    is a built Cluster (its pods), or a parsed Scenario (its pods and workloads' templates: `apply` checks
    what it is about to write to a live lab, whose controllers make the pods)."""
    if isinstance(cluster, Scenario):
        yield from _templates(cluster)
        return
    seen = set()
    for pod in cluster.pods:
        if pod.owner:
            where, spec = f"{pod.owner.split('/', 1)[0]} {pod.namespace}/{pod.owner.split('/', 1)[1]}", \
                "spec.template.spec"
        else:
            where, spec = f"Pod {pod.key}", "spec"
        if where in seen:
            continue
        seen.add(where)
        for i, c in enumerate(pod.containers):
            if c.command or c.args:
                yield where, f"{spec}.containers[{i}]", c
    yield from _workload_templates(cluster.templates)


def _workload_templates(templates):
    for where, spec, template in templates:
        for i, c in enumerate(template.containers):
            if c.command or c.args:
                yield where, f"{spec}.containers[{i}]", c


def _templates(sc: Scenario):
    made = [(f"Pod {p.namespace}/{p.name}", "spec", p.template) for p in sc.pods if not p.owner]
    made += [(f"Deployment {d.namespace}/{d.name}", "spec.template.spec", d.template) for d in sc.deployments]
    made += [(f"ReplicaSet {r.namespace}/{r.name}", "spec.template.spec", r.template) for r in sc.replicasets]
    made += [(f"StatefulSet {s.namespace}/{s.name}", "spec.template.spec", s.template) for s in sc.statefulsets]
    made += list(sc.templates)
    for where, spec, template in made:
        for i, c in enumerate(template.containers):
            if c.command or c.args:
                yield where, f"{spec}.containers[{i}]", c


def _raise(problems: list[SpecError]) -> None:
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise SpecProblems(problems, MAX_PROBLEMS)


def check_proxy_mode(cluster, mode: str | None = None) -> None:
    """A scenario that asks for a protection its kube-proxy mode cannot enforce (proxymodes: `unenforced`)
    is refused: a NetworkPolicy or loadBalancerSourceRanges that does not hold is an error, not a warning.
    `cluster` is a built Cluster or a parsed Scenario; `mode` overrides its networking's proxy mode."""
    from ..proxymodes import get
    mode = mode or cluster.networking.proxy_mode
    missing = get(mode).unenforced
    fix = "use kubeProxyMode iptables, nftables or ipvs"
    problems = []
    if "NetworkPolicy" in missing:
        for p in cluster.policies:
            problems.append(SpecError(f"NetworkPolicy {p.namespace}/{p.name}", f"kubeProxyMode {mode} cannot "
                                      "enforce it (its proxy connects to the pods from the node, which policies "
                                      "always allow)", fix + ", or remove the policy"))
    if "loadBalancerSourceRanges" in missing:
        for svc in cluster.services:
            spec = getattr(svc, "spec", svc)
            if spec.source_ranges:
                problems.append(SpecError(f"Service {spec.namespace}/{spec.name}", f"kubeProxyMode {mode} cannot "
                                          "enforce spec.loadBalancerSourceRanges (every source would get in)",
                                          fix + ", or drop loadBalancerSourceRanges"))
    _raise(problems)


def check_commands(cluster) -> None:
    """`args` with no `command` run as the command (as an image without an ENTRYPOINT does): args
    that start with a flag were meant for an image's entrypoint, which netlab does not have."""
    problems = []
    for where, path, c in _containers(cluster):
        if not c.command and c.args[0].startswith("-"):
            problems.append(SpecError(where, f"{path}.args has no command to pass {c.args[0]!r} to (netlab runs "
                                      "no image, so there is no entrypoint)",
                                      f"set {path}.command to a program installed on this machine, or "
                                      + BUILTIN_SERVER))
    _raise(problems)


def which(argv0: str) -> str | None:
    if "/" in argv0:
        return argv0 if os.path.isfile(argv0) and os.access(argv0, os.X_OK) else None
    return shutil.which(argv0) if argv0 else None


def check_host_commands(cluster) -> None:
    """Every container's program is installed on this machine (reads the host's filesystem)."""
    problems = []
    for where, path, c in _containers(cluster):
        argv0 = (c.command or c.args)[0]
        if which(argv0) is not None:
            continue
        # a program in one of the container's volumes (a script from a ConfigMap...), or named by a $(VAR)
        # the kubelet expands: there only when the container starts
        if "$(" in argv0 or any(argv0.startswith(m.mount_path.rstrip("/") + "/") for m in c.mounts):
            continue
        if c.command:
            problems.append(SpecError(where, f"container {c.name} runs {argv0!r}, which is not installed on this "
                                      "machine (netlab runs commands from the host's filesystem)",
                                      "install it or " + BUILTIN_SERVER))
        else:
            problems.append(SpecError(where, f"container {c.name} has args but no command, so netlab runs its args: "
                                      f"{argv0!r} is not installed on this machine (netlab runs no image entrypoint)",
                                      f"set {path}.command to a program installed on this machine, or "
                                      + BUILTIN_SERVER))
    _raise(problems)
