"""Grading on the wire: each criterion of an exercise observed in a lab's namespaces (root).

- probe: the probe engine (netlab/probe/plan.py + run.py) with the criterion's `expect` instead of the
  model's prediction: real packets from the source namespace, the pod that answered, the source IP it saw;
- http: curl run as the source runs it (in a pod with its container's privileges and resolv.conf, as
  `netlab exec` runs it; as root in a node or the external host), one new connection per request;
- dns: the pod's own /etc/resolv.conf (nameserver, search list, ndots) and real queries from its
  namespace (netlab/probe/dnsname.py, as `netlab probe dns/NAME`);
- exec: a real program in the source, its exit status and output;
- rollout_under_load: the check rolls a Deployment itself (`rollout restart`'s template annotation,
  written to the lab's store; the control loop does the rollout) while traffic.py, in the client pod's
  network namespace, opens new connections to the Service's ClusterIP, every request counted, until the
  rollout is complete (`rollout status`'s test) and a few seconds more.

What the learner changed and how is never looked at: only what the packets do now.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time

from ..errors import NetlabError
from ..model.objects import Cluster
from . import grade
from .spec import Criterion, Exercise

MARK = "@@netlab-status "


def _argv(lab: str, cluster: Cluster, src: str, argv: list[str]) -> list[str]:
    """argv run in the source: a pod (its container's privileges, as `netlab exec`), a node or the external host."""
    from ..dataplane import lab as labmod
    from ..live.podsetup import service_objects
    from ..probe.plan import find_pods
    kind, _, rest = src.partition("/")
    if kind == "pod":
        pod = find_pods(cluster, rest)[0]
        return labmod.pod_exec_argv(lab, pod, argv, None, service_objects(cluster))
    if kind == "node":
        try:
            return labmod.netns_exec_argv(cluster.node(rest).netns, argv)
        except KeyError:
            from ..errors import NotFound
            raise NotFound(f"no node '{rest}'") from None
    return labmod.netns_exec_argv(cluster.external_netns, argv)


def _run(argv: list[str], timeout: float) -> tuple[int | None, str, str]:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None, "", ""
    return r.returncode, r.stdout, r.stderr


def _probe(lab: str, cluster: Cluster, a: dict) -> tuple[bool, str]:
    from ..probe import plan, run
    to = grade.expand(a["to"], cluster)
    sources = plan.resolve_sources(cluster, grade.expand(a["from"], cluster))
    backends = a.get("backends")
    count = a.get("count")
    if count is None:
        count = 1
        if backends is not None:   # enough connections that a random choice misses a backend with odds < 1e-4
            n = max((len(v) for s in cluster.services for v in s.endpoints.values()), default=1)
            count = max(10, 10 * n)
    checks = []
    for s in sources:
        checks += plan.target_checks(cluster, s, to, count=count, expect=a["expect"], need_all=backends == "all",
                                     group="exercise")
    if isinstance(backends, int):
        for c in checks:
            c.min_backends = backends
    if not checks:
        return False, f"nothing to probe at {to}"
    results, _, warnings = run.run_checks(checks)
    parts = []
    for r in results:
        what = r.outcome if len(r.results) == 1 else f"{r.outcome} x{len(r.results)}"
        if r.answered:
            who = ", ".join(f"{p} x{n}" if n > 1 else p for p, n in sorted(r.answered.items()))
            what += f" (answered by {who})"
        if not r.ok and r.why:
            what += f": {r.why}"
        parts.append(f"{r.check.source.label} -> {r.check.target} {what}")
    text = "; ".join(parts) + ("; " + warnings[0] if warnings else "")
    return all(r.ok for r in results), text


def _http(lab: str, cluster: Cluster, a: dict) -> tuple[bool, str]:
    url = grade.expand(a["url"], cluster)
    regex = grade.expand(a["expect_body_regex"], cluster, regex=True) if "expect_body_regex" in a else None
    curl = "curl -sS --max-time 3 -H 'Connection: close'"
    if "host" in a:
        curl += f" -H 'Host: {a['host']}'"
    script = (f"i=0; while [ $i -lt {a['count']} ]; do i=$((i+1)); "
              f"{curl} -w '\\n{MARK}%{{http_code}}\\n' '{url}' 2>&1; done")
    rc, out, err = _run(_argv(lab, cluster, a["from"], ["sh", "-c", script]), 5 * a["count"] + 10)
    if rc is None:
        return False, "curl did not finish in time"
    # split on the status lines: body, status, body, status ... (curl's error text is the body of a 000)
    pieces = re.split(rf"\n?^{re.escape(MARK)}(\d+)\n?", out, flags=re.M)
    answers = []
    for body, status in zip(pieces[0::2], pieces[1::2]):
        code = int(status)
        answers.append((code or None, body if code else "", "" if code else body.strip()))
    if not answers:
        return False, f"curl gave no answer ({(err or out).strip()[:100] or 'no output'})"
    return grade.judge_http(a, answers, regex)


def _resolv_conf(cluster: Cluster, pod) -> tuple[str, list[str], int] | None:
    import os

    from ..dataplane import podfiles
    from ..workload.resolvconf import parse_resolv_conf
    try:
        with open(os.path.join(podfiles.etc_dir(cluster.name, pod), "resolv.conf")) as f:
            conf = parse_resolv_conf(f.read())
    except OSError:
        return None
    if not conf.nameservers:
        return None
    ndots = 1   # glibc's default, capped at 15
    for o in conf.options:
        if o.startswith("ndots:") and o[6:].isdigit():
            ndots = min(int(o[6:]), 15)
    return conf.nameservers[0], list(conf.searches), ndots


def _dns(lab: str, cluster: Cluster, a: dict) -> tuple[bool, str]:
    from ..dataplane import lab as labmod
    from ..probe import dnsname, plan
    pod = plan.find_pods(cluster, a["from"].partition("/")[2])[0]
    conf = _resolv_conf(cluster, pod)
    if conf is None:
        return False, f"pod {pod.name} has no /etc/resolv.conf with a nameserver"
    server, search, ndots = conf
    tries = dnsname.candidates(a["name"], search, ndots)
    argv = labmod.netns_exec_argv(pod.netns, [sys.executable, "-m", "netlab.probe.dnsname", server, "2", *tries])
    rc, out, err = _run(argv, 10 + 3 * len(tries))
    try:
        got = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return False, f"the lookup failed ({(err.strip().splitlines() or ['no output'])[-1]})"
    address = grade.expand(a["address"], cluster) if "address" in a else None
    return grade.judge_dns(a, got, address)


def _exec(lab: str, cluster: Cluster, a: dict) -> tuple[bool, str]:
    argv = [grade.expand(x, cluster) for x in a["argv"]]
    regex = grade.expand(a["expect_stdout_regex"], cluster, regex=True) if "expect_stdout_regex" in a else None
    rc, out, err = _run(_argv(lab, cluster, a["from"], argv), a["timeout"])
    return grade.judge_exec(a, rc, out, err, regex)


LEAD = 2.0    # seconds of load before the rollout starts (the client and the path are shown to work)
TAIL = 3.0    # and after it completed (the last old pods' termination: SIGTERM >= 1 s after the rules changed)
REQUEST_TIMEOUT = 5.0


class _Reader(threading.Thread):
    """traffic.py's lines as they come (a pipe must be drained)."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream, self.lines = stream, []

    def run(self) -> None:
        for line in self.stream:
            self.lines.append(line)


def _restart(store, d: dict) -> dict:
    """`rollout restart` on the stored Deployment `d` (a second one within the same second still changes
    the template: the annotation is whole seconds)."""
    from ..controllers import verbs
    now = time.time()
    new, _ = verbs.rollout_restart(d, now)
    def restarted(x: dict):
        return (((x["spec"].get("template") or {}).get("metadata") or {}).get("annotations") or {}).get(
            verbs.RESTARTED_AT)
    if restarted(new) == restarted(d):
        new, _ = verbs.rollout_restart(d, now + 1)
    return store.update(new)


def _wait_rollout(store, ns: str, name: str, generation: int, timeout: float) -> tuple[str | None, float]:
    """(None, seconds) once the Deployment's rollout of `generation` is complete (as `rollout status`
    says it), else (what stopped it, seconds)."""
    from ..controllers import verbs
    from ..controllers.validation import ControllerError
    t0 = time.monotonic()
    rev = store.revision()
    while True:
        d = store.try_get("Deployment", ns, name)
        if d is None:
            return "stopped: the Deployment was deleted", time.monotonic() - t0
        if (d.get("status") or {}).get("observedGeneration", 0) >= generation:
            try:
                msg, done = verbs.rollout_status(d)
            except ControllerError as e:
                return f"failed: {e}", time.monotonic() - t0
            if done:
                return None, time.monotonic() - t0
        else:
            msg = "the Deployment controller has not seen the change"
        if time.monotonic() - t0 > timeout:
            return f"did not complete within {timeout:g} s ({msg[:120]})", time.monotonic() - t0
        rev = store.wait(rev, 0.5)


def _rollout(lab: str, cluster: Cluster, a: dict) -> tuple[bool, str]:
    import os

    from ..dataplane import lab as labmod
    from ..errors import NotFound
    from ..live import has_store, loop, store_for
    from ..probe.plan import find_pods
    pod = find_pods(cluster, a["from"].partition("/")[2])[0]
    sns, _, sname = a["service"].rpartition("/")
    sns = sns or "default"
    svc = next((s for s in cluster.services if s.namespace == sns and s.name == sname), None)
    if svc is None or svc.cluster_ip is None:
        raise NotFound(f"no Service '{sname}' with a ClusterIP in namespace {sns}")
    if not any(p.port == a["port"] and p.protocol == "TCP" for p in svc.ports):
        raise NotFound(f"Service {sns}/{sname} has no TCP port {a['port']} "
                       f"(ports: {', '.join(str(p.port) for p in svc.ports) or 'none'})")
    dns, _, dname = a["deployment"].rpartition("/")
    dns = dns or "default"
    if not has_store(lab):
        return False, f"lab {lab} has no object store to roll a Deployment in (bring it up again)"
    if os.path.exists(loop.frozen_marker(lab)):
        return False, f"lab {lab} runs without its control loop (up --no-control-loop): nothing would roll"
    store = store_for(lab)
    d = store.try_get("Deployment", dns, dname)
    if d is None:
        raise NotFound(f"no Deployment '{dname}' in namespace {dns}")
    if (d.get("spec") or {}).get("paused"):
        return False, f"Deployment {dns}/{dname} is paused: resume it (netlab rollout resume deploy/{dname})"
    loop.ensure(lab)
    argv = labmod.netns_exec_argv(pod.netns, [sys.executable, "-m", "netlab.exercise.traffic", str(svc.cluster_ip),
                                              str(a["port"]), "--rate", str(a["rate"]), "--path", a["path"],
                                              "--timeout", str(REQUEST_TIMEOUT), "--seconds", str(a["timeout"] + 60)])
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reader = _Reader(proc.stdout)
    reader.start()
    t0 = time.time()
    try:
        time.sleep(LEAD)
        if proc.poll() is not None:
            return False, f"the load client ended at once ({(proc.stderr.read().strip().splitlines() or ['?'])[-1]})"
        t0 = time.time()
        new = _restart(store, d)
        problem, seconds = _wait_rollout(store, dns, dname, new["metadata"].get("generation", 1), a["timeout"])
        time.sleep(TAIL)
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=REQUEST_TIMEOUT + 10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(5)
    answers = []
    for line in reader.lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        answers.append((rec["t"] - t0, rec.get("status"), rec.get("err", "")))
    if not answers:
        return False, f"the load client sent nothing ({(proc.stderr.read().strip().splitlines() or ['?'])[-1]})"
    ok, text = grade.judge_rollout(a, answers, problem, seconds)
    return ok, f"{pod.name} -> {svc.cluster_ip}:{a['port']} ({sname}) while deploy/{dname} rolled: {text}"


RUNNERS = {"probe": _probe, "http": _http, "dns": _dns, "exec": _exec, "rollout_under_load": _rollout}


def check_one(lab: str, cluster: Cluster, c: Criterion) -> grade.Verdict:
    t0 = time.monotonic()
    try:
        ok, observed = RUNNERS[c.kind](lab, cluster, c.args)
    except NetlabError as e:   # a pod, Service or node the criterion names is not there (yet): a failure
        ok, observed = False, str(e)
    return grade.Verdict(c, ok, observed, time.monotonic() - t0)


def check(lab: str, exercise: Exercise) -> list[grade.Verdict]:
    """Every criterion of `exercise`, observed in lab `lab` as it is now."""
    from .. import lab_spec
    cluster, _ = lab_spec.load_cluster(lab)
    out = []
    for c in exercise.criteria:
        out.append(check_one(lab, cluster, c))
        if c.kind == "rollout_under_load":   # new pods, new addresses: the next criteria see the lab as it is now
            cluster, _ = lab_spec.load_cluster(lab)
    return out
