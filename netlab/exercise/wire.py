"""Grading on the wire: each criterion of an exercise observed in a lab's namespaces (root).

- probe: the probe engine (netlab/probe/plan.py + run.py) with the criterion's `expect` instead of the
  model's prediction: real packets from the source namespace, the pod that answered, the source IP it saw;
- http: curl run as the source runs it (in a pod with its container's privileges and resolv.conf, as
  `netlab exec` runs it; as root in a node or the external host), one new connection per request;
- dns: the pod's own /etc/resolv.conf (nameserver, search list, ndots) and real queries from its
  namespace (netlab/probe/dnsname.py, as `netlab probe dns/NAME`);
- exec: a real program in the source, its exit status and output.

What the learner changed and how is never looked at: only what the packets do now.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
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


RUNNERS = {"probe": _probe, "http": _http, "dns": _dns, "exec": _exec}


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
    return [check_one(lab, cluster, c) for c in exercise.criteria]
