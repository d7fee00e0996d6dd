"""netlab's Python API: labs driven from a program or a test suite, through the code the CLI runs.

    from netlab import Lab

    with Lab.from_file("scenarios/netpol.yaml", name="ci-netpol") as lab:   # up (as `netlab up`)
        lab.apply("extra.yaml")                                              # as `netlab apply -f`
        r = lab.probe("pod/client", "svc/web:80")                            # as `netlab probe`
        assert r.ok and r.outcome == "reachable", r.detail
        print(lab.exec("client", ["curl", "-s", "web/hostname"]).stdout)     # as `netlab exec`
    # the lab is down again here, also when the block raised

Layering: the CLI's commands are a thin layer (arguments, output formats, exit codes) over the same
functions this module calls: lab_spec.up and dataplane.lab.down (`up`, `down`), live.manifests
(`apply`), probe.plan.plan_checks + probe.run.run_checks (`probe`), exec_argv below (`exec`). Errors
are netlab.errors' classes with the CLI's one-line messages (SpecError: bad input, nothing changed;
UsageError: not root, a tool missing, a lab that already exists; NotFound: no such pod, Service...).
Importing this module is cheap: the kernel layer is imported when a method needs it. Every method but
the constructors needs root (the lab is real network namespaces).
"""
from __future__ import annotations

import os
import subprocess
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import NotFound, SpecError, UsageError

__all__ = ["Endpoint", "ExecResult", "Lab", "Node", "Pod", "ProbeResult", "Service", "ServicePort", "exec_argv"]


# ------------------------------------------------------------------ results and objects

@dataclass(frozen=True)
class ExecResult:
    """What a command run in the lab (`Lab.exec`) returned."""
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass(frozen=True)
class ProbeResult:
    """One probe check, as a row of `netlab probe` shows it: where from, to what, what the lab's model
    expected and what the packets found.

    outcome: reachable, refused (RST / port unreachable), denied (a NetworkPolicy), unreachable, timeout,
    or error (mixed tries: the worst of them); ok: the check met its expectation (for a Service also:
    only its endpoints answered). answered_by: the pod that answered (the one answering most when
    several did; `answers` has every pod's count); source_ip: the client address the server saw (for
    NAT questions; `seen_as` has all of them). detail: why a check failed, or what was seen. A probe that
    made several checks (pod/NAME: ICMP and every port it serves; svc/NAME: every port) has them in
    `checks`, and the fields above sum them up (ok: all ok; outcome: theirs when they agree)."""
    source: str
    target: str
    expect: str
    outcome: str
    ok: bool
    answered_by: str | None = None
    source_ip: str | None = None
    detail: str = ""
    group: str = "probe"
    rtt_ms: float | None = None
    answers: Mapping[str, int] = field(default_factory=dict)
    seen_as: tuple[str, ...] = ()
    denied_by: tuple[str, ...] = ()
    checks: tuple[ProbeResult, ...] = ()

    @classmethod
    def from_check(cls, r) -> ProbeResult:
        """From a probe.run.CheckResult."""
        answers = dict(r.answered)
        seen = tuple(sorted(r.seen_as))
        why = r.why or ("" if r.ok else f"expected {r.check.expect}, got {r.outcome}")
        return cls(r.check.source.label, r.check.target, r.check.expect, r.outcome, r.ok,
                   max(sorted(answers), key=answers.get) if answers else None, seen[0] if seen else None,
                   why, r.check.group, r.rtt_ms, answers, seen,
                   tuple(dict.fromkeys(d.text() for d in r.check.denied_by)))

    @classmethod
    def combine(cls, source: str, target: str, parts: list[ProbeResult]) -> ProbeResult:
        if len(parts) == 1:
            return parts[0]
        outcomes = {p.outcome for p in parts}
        answers: dict[str, int] = {}
        for p in parts:
            for pod, n in p.answers.items():
                answers[pod] = answers.get(pod, 0) + n
        seen = tuple(sorted({ip for p in parts for ip in p.seen_as}))
        expects = {p.expect for p in parts}
        return cls(source, target, expects.pop() if len(expects) == 1 else "mixed",
                   outcomes.pop() if len(outcomes) == 1 else "mixed", all(p.ok for p in parts),
                   max(sorted(answers), key=answers.get) if answers else None, seen[0] if seen else None,
                   "; ".join(f"{p.target}: {p.detail}" for p in parts if p.detail), parts[0].group, None, answers,
                   seen, tuple(dict.fromkeys(d for p in parts for d in p.denied_by)), tuple(parts))

    def __str__(self) -> str:
        who = f" answered by {self.answered_by}" if self.answered_by else ""
        return (f"{'ok' if self.ok else 'FAIL'} {self.source} -> {self.target}: {self.outcome}{who}"
                + (f" ({self.detail})" if self.detail else ""))


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    node: str
    ip: str
    labels: Mapping[str, str]
    phase: str            # as `netlab get pods` shows it: Running, Completed, Error, CrashLoopBackOff ...
    ready: bool


@dataclass(frozen=True)
class Node:
    name: str
    role: str             # control-plane | worker
    ip: str
    pod_cidr: str
    labels: Mapping[str, str]
    ready: bool           # as netlab built it (`netlab get nodes`: NotReady names what `up` would repair)
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServicePort:
    name: str | None
    port: int
    protocol: str
    target_port: int | str
    node_port: int | None


@dataclass(frozen=True)
class Endpoint:
    pod: str
    namespace: str
    ip: str
    port: int
    node: str
    ready: bool


@dataclass(frozen=True)
class Service:
    name: str
    namespace: str
    type: str
    cluster_ip: str | None
    ports: tuple[ServicePort, ...]
    endpoints: tuple[Endpoint, ...]


KINDS = {"pod": "pods", "pods": "pods", "po": "pods", "node": "nodes", "nodes": "nodes", "no": "nodes",
         "service": "services", "services": "services", "svc": "services"}


# ------------------------------------------------------------------ what the CLI shares

def exec_argv(cluster, argv: Sequence[str], *, pod: str | None = None, namespace: str = "default",
              container: str | None = None, node: str | None = None, external: bool = False) -> list[str]:
    """The command line that runs `argv` in lab `cluster`, as `netlab exec` runs it: in a pod with its
    container's privileges and environment (kubectl exec), or as root in a node's namespace or the
    external host's. NotFound names what does not exist."""
    from .dataplane import lab as labmod
    from .live.podsetup import service_objects
    if external:
        return labmod.netns_exec_argv(cluster.external_netns, _birdc(cluster, None, list(argv)))
    if node:
        try:
            n = cluster.node(node)
        except KeyError:
            raise NotFound(f'node "{node}" not found (nodes: {", ".join(x.name for x in cluster.nodes)})') from None
        return labmod.netns_exec_argv(n.netns, _birdc(cluster, node, list(argv)))
    if pod is None:
        raise UsageError("name a pod, or use --node NODE or --external")
    p = cluster.pod(namespace, pod)
    if p is None:
        raise NotFound(f'pod "{pod}" not found in namespace {namespace}')
    valid = [c.name for c in p.containers]
    if container is not None and container not in valid:
        raise NotFound(f'container {container} is not valid for pod {pod}: use one of {", ".join(valid)}')
    return labmod.pod_exec_argv(cluster.name, p, list(argv), container, service_objects(cluster))


def _birdc(cluster, node: str | None, argv: list[str]) -> list[str]:
    """`birdc ...` in a BGP lab's node (or the external host) talks to that node's own BIRD: its control
    socket is added (`-s PATH`) unless the command names one."""
    import os
    if not argv or os.path.basename(argv[0]) != "birdc" or any(a.startswith("-s") for a in argv[1:]):
        return argv
    from .dataplane import bgp
    sock = bgp.socket_path(cluster.name, node)
    if cluster.networking.backend != "bgp" and not os.path.exists(sock):   # no BGP backend, no MetalLB speaker
        return argv
    return [argv[0], "-s", sock, *argv[1:]]


def _scenario_of_objects(objs: Sequence[Mapping[str, Any]]) -> tuple[Any, str]:
    import yaml

    from .spec.parse import load_text
    if isinstance(objs, Mapping) or not all(isinstance(o, Mapping) for o in objs):
        raise SpecError("objects", "is not a list of Kubernetes objects (dicts)", "give a list of dicts")
    text = yaml.safe_dump_all([dict(o) for o in objs], sort_keys=False)
    return load_text(text, "<objects>"), text


# ------------------------------------------------------------------ the lab

class Lab:
    """A lab described by a scenario, brought up by `with` (or `up()`) and always taken down after.

    `Lab.from_file(path)` / `Lab.from_objects([...])` only read and check the scenario (bad input raises
    SpecError, nothing is changed); `__enter__` brings the lab up as `netlab up` does and `__exit__`
    takes it down as `netlab down` does, also when the block raised. An existing lab of the same name is
    never touched: entering raises UsageError, unless `replace=True` was given (then it is reconciled
    to this scenario, and removed at the end like any other). A lab this API makes does not become the
    CLI's default lab (`netlab get pods` without --lab)."""

    def __init__(self, scenario, text: str, *, proxy_mode: str | None = None, replace: bool = False,
                 control_loop: bool = True):
        self.scenario = scenario
        self.text = text
        self.proxy_mode = proxy_mode
        self._replace_existing = replace   # (the method `replace` is kubectl replace)
        self.control_loop = control_loop
        self.result = None      # lab_spec.up's result (the changes made) once up
        self._owned = False

    # ---- making one
    @classmethod
    def from_file(cls, path: str | os.PathLike | Sequence[str | os.PathLike], name: str | None = None, *,
                  proxy_mode: str | None = None, replace: bool = False) -> Lab:
        """A lab from scenario files (a file, a directory of them, or a list, as `netlab up -f`);
        `name` overrides the Cluster document's name (default `netlab` with no Cluster document);
        `proxy_mode` (iptables, nftables, ipvs) the scenario's kubeProxyMode."""
        from .spec.sources import load_inputs
        paths = [os.fspath(path)] if isinstance(path, (str, os.PathLike)) else [os.fspath(p) for p in path]
        scenario, text = load_inputs(paths)
        return cls._named(scenario, text, name, proxy_mode, replace)

    @classmethod
    def from_objects(cls, objs: Sequence[Mapping[str, Any]], name: str | None = None, *,
                     proxy_mode: str | None = None, replace: bool = False) -> Lab:
        """A lab from the scenario's documents as dicts (a Cluster document, optional, then manifests)."""
        scenario, text = _scenario_of_objects(objs)
        return cls._named(scenario, text, name, proxy_mode, replace)

    @classmethod
    def _named(cls, scenario, text: str, name: str | None, proxy_mode: str | None, replace: bool) -> Lab:
        from .spec.fields import check_name
        from .spec.parse import MAX_LAB_NAME
        from .spec.types import PROXY_MODES
        if name is not None:
            check_name(name, "name", "value", max_len=MAX_LAB_NAME)
            scenario.name = name
        if proxy_mode is not None and proxy_mode not in PROXY_MODES:
            raise SpecError("proxy_mode", f"'{proxy_mode}' is not a kube-proxy mode",
                            f"use one of {', '.join(PROXY_MODES)}")
        return cls(scenario, text, proxy_mode=proxy_mode, replace=replace)

    @property
    def name(self) -> str:
        return self.scenario.name

    def __repr__(self) -> str:
        return f"Lab({self.name!r})"

    # ---- up and down
    def up(self, progress=None) -> Lab:
        """Bring the lab up (what `with` does): `netlab up`'s code, returning once rollouts are done."""
        from . import lab_spec
        from .dataplane import lab as labmod
        labmod.require_root("build a lab")
        existed = self.name in labmod.labs()
        if existed and not self._owned and not self._replace_existing:
            raise UsageError(f"lab {self.name} already exists and is not this program's: choose another name, "
                             f"remove it (sudo netlab down {self.name}), or pass replace=True to take it over")
        self._owned = True
        try:
            self.result = lab_spec.up(self.scenario, self.text, progress, proxy_mode=self.proxy_mode, replace=True,
                                      control_loop=self.control_loop)
        except (SpecError, UsageError):
            if not existed:
                self.down()
            raise
        except BaseException:
            self.down()   # half built: never left behind
            raise
        return self

    def down(self) -> None:
        """Take the lab down (`netlab down`): its processes, namespaces and state. Safe to call twice. A lab on
        real hosts: every machine's part (live/teardown.py); a host whose agent did not answer within 30 s
        is a NetlabError naming it, after the rest is removed."""
        from .errors import NetlabError
        from .live import teardown
        _, outcome = teardown.down(self.name)
        if outcome is not None and outcome.missing:
            raise NetlabError(f"lab {self.name}: the agents of hosts {', '.join(outcome.missing)} did not answer: "
                              f"their machines keep their part; run sudo netlab down {self.name} on each")

    def __enter__(self) -> Lab:
        return self.up()

    def __exit__(self, *exc) -> None:
        self.down()

    # ---- what it has
    @property
    def cluster(self):
        """The lab's model now (model.objects.Cluster), as every command reads it."""
        from . import lab_spec
        return lab_spec.load_cluster(self.name)[0]

    def get(self, kind: str, namespace: str | None = None) -> list:
        """The lab's pods, nodes or services (kubectl's names: pods, po, nodes, svc ...) as frozen data
        classes, sorted by namespace and name: in every namespace (the add-ons' in kube-system too), or
        in `namespace`."""
        from . import lab_spec
        from .dataplane import lab as labmod
        what = KINDS.get(kind.lower())
        if what is None:
            raise SpecError("kind", f"'{kind}' is not a kind Lab.get knows", "use pods, nodes or services")
        cluster, st = lab_spec.load_cluster(self.name)
        if what == "pods":
            return sorted((Pod(s.pod.name, s.pod.namespace, s.pod.node, str(s.pod.ip), dict(s.pod.labels), s.phase,
                               s.is_ready) for s in labmod.pod_statuses(cluster, st)
                           if namespace is None or s.pod.namespace == namespace),
                          key=lambda p: (p.namespace, p.name))
        if what == "nodes":
            problems = labmod.node_problems(cluster, st)
            return sorted((Node(n.name, n.role, str(n.ip), str(n.pod_cidr), dict(n.labels),
                                not problems.get(n.name) and not n.partitioned, tuple(problems.get(n.name) or ()))
                           for n in cluster.nodes), key=lambda n: n.name)
        return sorted((Service(s.name, s.namespace, s.type, str(s.cluster_ip) if s.cluster_ip else None,
                               tuple(ServicePort(p.name, p.port, p.protocol, p.target_port, p.node_port)
                                     for p in s.ports),
                               tuple(Endpoint(e.pod, e.namespace, str(e.ip), e.port, e.node, e.ready)
                                     for eps in s.endpoints.values() for e in eps))
                       for s in cluster.services if namespace is None or s.namespace == namespace),
                      key=lambda s: (s.namespace, s.name))

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until every pod runs with all its containers ready (a finished Job's pods count as done)
        and every node is as netlab built it; TimeoutError naming what is not, after `timeout` s."""
        end = time.monotonic() + timeout
        while True:
            pods = [p for p in self.get("pods") if p.phase != "Completed" and not p.ready]
            nodes = [n for n in self.get("nodes") if not n.ready] if not pods else []
            if not pods and not nodes:
                return
            if time.monotonic() >= end:
                what = [f"pod {p.namespace}/{p.name} ({p.phase})" for p in pods[:5]] + \
                       [f"node {n.name} ({'; '.join(n.problems) or 'NotReady'})" for n in nodes[:5]]
                raise TimeoutError(f"lab {self.name} not ready after {timeout:g}s: {', '.join(what)}")
            time.sleep(0.3)

    # ---- acting on it
    def apply(self, objs_or_path: str | os.PathLike | Sequence[Mapping[str, Any]] | Mapping[str, Any],
              prune: bool | str = False, *, wait: float | None = 60.0) -> list[str]:
        """Create or update objects, as `netlab apply -f`: a manifest file or directory, or objects as
        dicts. `prune=True` deletes what an earlier apply made that the input no longer has (`--prune
        --all`); a label selector string prunes only what it selects (`--prune -l`). Returns kubectl's
        lines (`deployment.apps/web created` ...). Bad input: SpecError, nothing written.

        Unlike the CLI (which returns at once, as kubectl does, and leaves the rest to the lab's control
        loop), it then runs a pass of the lab's reconcile itself, as `up` does, so the dataplane has the
        change when it returns, and waits (at most `wait` s; None: not at all) for rollouts to finish."""
        from .live import manifests
        target = self._target()
        applied = manifests.apply_manifests(target, self._inputs(objs_or_path), prune=bool(prune),
                                            selector=prune if isinstance(prune, str) else None)
        if wait is not None:
            self._settle(wait)
        return [str(a).replace(" recreated", " configured") for a in applied]

    def diff(self, objs_or_path: str | os.PathLike | Sequence[Mapping[str, Any]] | Mapping[str, Any]
             ) -> list[tuple[str, dict | None, dict]]:
        """What `apply` of the objects would change, changing nothing, as `netlab diff -f` (kubectl diff): for
        each object it would create or change, (kubectl's name, e.g. `deployment.apps/web`; the object as stored
        now, None if new; the object as apply would store it). Empty: apply would change nothing. Bad input:
        SpecError."""
        from .kindnames import SINGULAR
        from .live import manifests
        return [(f"{SINGULAR.get(k[0], k[0].lower())}/{k[2]}", live, merged)
                for k, live, merged in manifests.diff_manifests(self._target(), self._inputs(objs_or_path))]

    def replace(self, objs_or_path: str | os.PathLike | Sequence[Mapping[str, Any]] | Mapping[str, Any], *,
                force: bool = False, wait: float | None = 60.0) -> list[str]:
        """Replace objects whole, as `netlab replace -f` (kubectl replace): each must exist and becomes what is
        given (a field left out is gone); a resourceVersion given must still be the object's (else
        store.api.Conflict). `force`: each is deleted and created anew (a Pod's spec may change). Returns
        kubectl's lines (`deployment.apps/web replaced`). Bad input: SpecError, nothing written; then, as
        `apply`, a pass of the lab's reconcile and the rollouts waited for (at most `wait` s; None: not at all)."""
        from .kindnames import SINGULAR
        from .live import manifests
        replaced = manifests.replace_manifests(self._target(), self._inputs(objs_or_path), force)
        if wait is not None:
            self._settle(wait)
        return [f"{SINGULAR[a.kind]}/{a.name} replaced" for a in replaced]

    def _target(self):
        """The lab's live.manifests.Target (root needed; NotFound when the lab is not up)."""
        from .dataplane import lab as labmod
        from .live import has_store, loop, manifests, store_for
        labmod.require_root("read and change a lab's objects")
        if self.name not in labmod.labs() or not has_store(self.name):
            raise NotFound(f"lab '{self.name}' is not up; bring it up first (with Lab(...) as lab: ...)")
        return manifests.Target(self.name, store_for(self.name), loop.ensure)

    @staticmethod
    def _inputs(objs_or_path) -> list[tuple[str, str]]:
        """(text, source) of a manifest file or directory, or of objects given as dicts."""
        import yaml

        from .spec.sources import read_inputs
        if isinstance(objs_or_path, (str, os.PathLike)):
            return read_inputs([os.fspath(objs_or_path)])
        objs = [objs_or_path] if isinstance(objs_or_path, Mapping) else list(objs_or_path)
        if not all(isinstance(o, Mapping) for o in objs):
            raise SpecError("objects", "is not a list of Kubernetes objects (dicts)", "give a list of dicts")
        return [(yaml.safe_dump_all([dict(o) for o in objs], sort_keys=False), "<objects>")]

    def patch(self, kind: str, name: str, patch: Mapping[str, Any] | Sequence[Mapping[str, Any]], *,
              patch_type: str = "strategic", namespace: str = "default", wait: float | None = 60.0) -> str:
        """Patch one object, as `netlab patch` (kubectl patch): `kind` as kubectl names it (Deployment,
        deploy, svc ...), `patch` a strategic merge or JSON merge patch (a dict) or a JSON patch (a list of
        operations, patch_type="json"). Returns kubectl's line (`deployment.apps/web patched`). Bad input:
        SpecError, nothing written; then, as `apply`, a pass of the lab's reconcile and the rollouts waited for
        (at most `wait` s; None: not at all)."""
        from .controllers.labeling import stored_or_builtin
        from .kindnames import KINDS, SINGULAR
        from .live import manifests
        from .store.meta import CLUSTER_SCOPED
        target = self._target()
        k = KINDS.get(kind.lower())
        if k is None:
            raise SpecError("kind", f"'{kind}' is not a kind netlab keeps", "use kubectl's names: deploy, svc, pod ...")
        live = stored_or_builtin(target.store, k, None if k in CLUSTER_SCOPED else namespace, name)
        if live is None:
            raise NotFound(f"{SINGULAR[k]}/{name} is not in lab '{self.name}'")
        a = manifests.patch_object(target, live, patch, patch_type, f"patch of {SINGULAR[k]}/{name}")
        if wait is not None:
            self._settle(wait)
        return f"{SINGULAR[k]}/{name} patched" + (" (no change)" if a.action == "unchanged" else "")

    def _settle(self, timeout: float) -> None:
        """A pass of the lab's reconcile now (what `up` runs: controllers, then the dataplane), then
        until every rollout is done and no pod terminates, or `timeout` s."""
        from .live import locked, store_for
        from .live.rollouts import settled
        from .live.sync import LiveLab
        store = store_for(self.name)
        with locked(self.name):
            LiveLab(self.name, store, kubelet=False).sync()
        end = time.monotonic() + timeout
        while time.monotonic() < end and not settled(store)[0]:
            store.wait(store.revision(), 0.2)

    def exec(self, pod: str, argv: Sequence[str], *, timeout: float = 30.0, namespace: str = "default",
             container: str | None = None, input: str | None = None) -> ExecResult:
        """Run `argv` as `netlab exec` does and wait for it: in pod `pod` (NAME or pod/NAME; pod/NS/NAME
        also sets the namespace) with its container's privileges, or as root in `node/NAME` or
        `external` (the client host on the underlay). `input`: its stdin (default: none)."""
        from . import lab_spec
        from .dataplane import lab as labmod
        labmod.require_root("enter a lab's namespaces")
        if isinstance(argv, str) or not argv:
            raise SpecError("argv", "must be a non-empty list of words", 'e.g. ["curl", "-s", "web/hostname"]')
        where: dict[str, Any] = {"namespace": namespace, "container": container}
        kind, _, rest = pod.partition("/")
        if pod == "external":
            where["external"] = True
        elif kind == "node" and rest:
            where["node"] = rest
        elif kind in ("pod", "pods", "po") and rest:
            ns, _, name = rest.rpartition("/")
            where.update(pod=name, namespace=ns or namespace)
        elif "/" in pod:
            raise SpecError("pod", f"'{pod}' is not an exec target", "give NAME, pod/NAME, node/NAME or external")
        else:
            where["pod"] = pod
        cluster, _ = lab_spec.load_cluster(self.name)
        full = exec_argv(cluster, argv, **where)
        r = subprocess.run(full, capture_output=True, text=True, timeout=timeout,
                           input=input if input is not None else "")
        return ExecResult(r.returncode, r.stdout, r.stderr)

    def probe(self, src: str, dst: str, *, count: int = 1) -> ProbeResult:
        """Send real packets from `src` (pod/NAME, pod/NS/NAME, node/NAME or external) to `dst` (as
        `netlab probe` takes it: pod/NAME, svc/NAME[:PORT], nodeport/NAME[:PORT][@NODE], lb/NAME,
        IP:PORT[/udp], dns/NAME ...) and judge what came back against the lab's model (its Services'
        endpoints, its NetworkPolicies). `count` new connections (a Service's load balancing)."""
        from . import lab_spec
        from .dataplane import lab as labmod
        from .live import remoteprobe
        from .probe import lookup, plan
        labmod.require_root("send probes inside a lab's namespaces")
        if not isinstance(count, int) or count < 1:
            raise SpecError("count", f"{count!r} is not a positive number of tries", "give 1 or more")
        cluster, _ = lab_spec.load_cluster(self.name)
        if dst.startswith("dns/"):
            parts = [ProbeResult(row["source"], row["target"], "resolved",
                                 "resolved" if row["ok"] else row["rcode"].lower(), row["ok"],
                                 detail=lookup.answer_text(row), group="dns", rtt_ms=row.get("ms"))
                     for row in remoteprobe.resolve_names(cluster, [dst], src)]
            return ProbeResult.combine(src, dst, parts)
        checks = plan.plan_checks(cluster, [dst], src, count)
        if not checks:
            raise NotFound(f"nothing to probe from {src} to {dst} (no port netlab can probe there)")
        return ProbeResult.combine(src, dst, self._run(cluster, checks))

    def probe_matrix(self) -> list[ProbeResult]:
        """`netlab probe` with no target: node<->pod, pod<->pod (same node, across nodes), every pod to
        every Service port, the external host to every NodePort, and the scenario's expectations."""
        from . import lab_spec
        from .dataplane import lab as labmod
        from .probe import plan
        labmod.require_root("send probes inside a lab's namespaces")
        cluster, _ = lab_spec.load_cluster(self.name)
        return self._run(cluster, plan.plan_checks(cluster, []))

    @staticmethod
    def _run(cluster, checks) -> list[ProbeResult]:
        from .live import remoteprobe
        if not checks:
            return []
        results, _, warns = remoteprobe.run_checks(cluster, checks)   # (real hosts: other machines' by their agents)
        for w in warns:
            warnings.warn(w, RuntimeWarning, stacklevel=3)
        return [ProbeResult.from_check(r) for r in results]

    def trace(self, src: str, dst: str, *, timeout: float = 3.0):
        """One real packet from `src` to `dst` followed hop by hop as the kernel handled it
        (netlab.trace.trace: a TraceResult)."""
        from .trace import trace
        return trace(self.name, src, dst, timeout=timeout)
