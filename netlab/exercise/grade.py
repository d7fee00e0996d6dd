"""Judging what a check observed, and reporting it: pure (no root, no kernel).

wire.py observes (a probe's outcome, curl's answers, a lookup's answer, a program's exit status and
output); the functions here turn an observation into a Verdict: passed or not, and one line saying what
was seen, so a learner reads what the wire did, not only that it was wrong.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import NotFound
from ..model.objects import Cluster
from .spec import PLACEHOLDER, Criterion


@dataclass
class Verdict:
    criterion: Criterion
    ok: bool
    observed: str             # one line: what the wire showed
    seconds: float = 0.0


# ------------------------------------------------------------------ placeholders

def _split(ref: str) -> tuple[str, str]:
    ns, _, name = ref.rpartition("/")
    return ns or "default", name


def placeholder_value(cluster: Cluster, kind: str | None, ref: str | None) -> str:
    """The address a placeholder stands for in `cluster`; NotFound (the criterion fails) when there is none."""
    if kind is None:
        return str(cluster.external_ip)
    if kind == "node":
        try:
            return str(cluster.node(ref).ip)
        except KeyError:
            raise NotFound(f"no node '{ref}'") from None
    ns, name = _split(ref)
    if kind == "pod":
        pod = cluster.pod(ns, name)
        if pod is None or pod.ip is None:
            raise NotFound(f"no pod '{name}' in namespace {ns}")
        return str(pod.ip)
    svc = next((s for s in cluster.services if s.namespace == ns and s.name == name), None)
    if svc is None:
        raise NotFound(f"no Service '{name}' in namespace {ns}")
    if kind == "svc":
        if svc.cluster_ip is None:
            raise NotFound(f"Service {ns}/{name} has no ClusterIP")
        return str(svc.cluster_ip)
    from ..render.services import lb_ingress_ips
    ips = lb_ingress_ips(svc.spec)
    if not ips:
        raise NotFound(f"Service {ns}/{name} has no LoadBalancer IP (EXTERNAL-IP <pending>)")
    return str(ips[0])


def expand(text: str, cluster: Cluster, regex: bool = False) -> str:
    """`text` with its placeholders replaced by addresses (escaped for a regex when `regex`)."""
    def sub(m: re.Match) -> str:
        value = placeholder_value(cluster, m.group(1), m.group(2))
        return re.escape(value) if regex else value
    return PLACEHOLDER.sub(sub, text)


# ------------------------------------------------------------------ judging

def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def judge_http(args: dict, answers: list[tuple[int | None, str, str]],
               body_regex: str | None = None) -> tuple[bool, str]:
    """`answers`: per request (HTTP status or None when no answer, body, curl's error). `body_regex` is
    the expanded `expect_body_regex`."""
    problems = []
    bad_status = [a for a in answers if a[0] != args["expect_status"]]
    if bad_status:
        status, _, err = bad_status[0]
        what = f"HTTP {status}" if status is not None else (_short(err, 60) or "no answer")
        problems.append(f"{len(bad_status)}/{len(answers)} requests did not get HTTP {args['expect_status']} "
                        f"(first: {what})")
    good = [a for a in answers if a[0] == args["expect_status"]]
    if body_regex is not None:
        misses = [b for _, b, _ in good if not re.search(body_regex, b, re.M)]
        if misses:
            problems.append(f"{len(misses)} bodies do not match /{args['expect_body_regex']}/ "
                            f"(first: {_short(misses[0], 50)!r})")
    bodies = {b.strip() for _, b, _ in good}
    distinct = len(bodies)
    if "min_distinct" in args and distinct < args["min_distinct"]:
        problems.append(f"{distinct} distinct answers, at least {args['min_distinct']} wanted")
    if "max_distinct" in args and distinct > args["max_distinct"]:
        problems.append(f"{distinct} distinct answers, at most {args['max_distinct']} wanted")
    shown = ", ".join(sorted(_short(b, 30) for b in bodies)[:4]) + (", ..." if len(bodies) > 4 else "")
    seen = f"{len(good)}/{len(answers)} HTTP {args['expect_status']}"
    if good:
        seen += f", {distinct} distinct ({shown})"
    return (not problems, seen if not problems else f"{'; '.join(problems)}; seen: {seen}")


def judge_exec(args: dict, rc: int | None, stdout: str, stderr: str,
               stdout_regex: str | None = None) -> tuple[bool, str]:
    if rc is None:
        return False, f"did not finish within {args['timeout']}s"
    problems = []
    if rc != args["expect_rc"]:
        problems.append(f"exit status {rc}, {args['expect_rc']} wanted")
    if stdout_regex is not None and not re.search(stdout_regex, stdout, re.M):
        problems.append(f"output does not match /{args['expect_stdout_regex']}/")
    out = _short(stdout or stderr, 100) or "no output"
    return (not problems, f"exit {rc}: {out}" if not problems else f"{'; '.join(problems)} ({out})")


def judge_dns(args: dict, got: dict, address: str | None = None) -> tuple[bool, str]:
    """`got`: the resolver's answer ({name, rcode, answers, tried}); `address` the expanded `address`."""
    rcode, answers, name = got.get("rcode", "ERROR"), got.get("answers") or [], got.get("name", "")
    seen = f"{rcode} {name} {' '.join(answers) or '(no answer)'}"
    if args["expect"] == "nxdomain":
        ok = rcode == "NXDOMAIN"
        return ok, seen if ok else f"{seen}; NXDOMAIN wanted"
    problems = []
    if rcode != "NOERROR" or not answers:
        problems.append(f"{args['name']} did not resolve")
    if not problems and "answered_name" in args and name.rstrip(".") != args["answered_name"].rstrip("."):
        problems.append(f"answered as {name}, not {args['answered_name']}")
    if not problems and address is not None and address not in answers:
        problems.append(f"{address} is not among the addresses")
    return (not problems, seen if not problems else f"{'; '.join(problems)} ({seen})")


def judge_rollout(args: dict, answers: list[tuple[float, int | None, str]], rollout: str | None,
                  seconds: float | None) -> tuple[bool, str]:
    """`answers`: per request (when it started, in seconds after the rollout began; its HTTP status or None
    when no answer came; why not). `rollout`: None when the rollout completed (in `seconds`), else what
    stopped it. Every request counts; a failed one got no HTTP answer or another status than expected."""
    want = args["expect_status"]
    failed = [a for a in answers if a[1] != want]
    why: dict[str, int] = {}
    for _, status, err in failed:
        what = f"HTTP {status}" if status is not None else (_short(err, 40) or "no answer")
        why[what] = why.get(what, 0) + 1
    seen = f"{len(answers)} requests, {len(failed)} failed"
    if failed:
        parts = ", ".join(f"{n} {w}" for w, n in sorted(why.items(), key=lambda kv: (-kv[1], kv[0])))
        first, last = min(a[0] for a in failed), max(a[0] for a in failed)
        seen += f" ({parts}; started {first:+.1f} s to {last:+.1f} s from the rollout's start)"
    seen += f"; the rollout completed in {seconds:.1f} s" if rollout is None else f"; the rollout {rollout}"
    problems = []
    if rollout is not None:
        problems.append("the rollout did not complete")
    if len(answers) < args["min_requests"]:
        problems.append(f"fewer than {args['min_requests']} requests were sent")
    if len(failed) != args["expect_failed"]:
        problems.append(f"{args['expect_failed']} failed wanted")
    return (not problems, seen if not problems else f"{'; '.join(problems)}; seen: {seen}")


# ------------------------------------------------------------------ reports

def report(exercise: str, lab: str, verdicts: list[Verdict]) -> str:
    lines = [f"exercise {exercise} (lab {lab}):"]
    for v in verdicts:
        lines.append(f"{'PASS' if v.ok else 'FAIL'}  {v.criterion.name}: {v.observed}")
    good = sum(v.ok for v in verdicts)
    lines.append(f"{good}/{len(verdicts)} criteria pass" + (": solved" if good == len(verdicts) else ""))
    return "\n".join(lines) + "\n"


def junit(exercise: str, verdicts: list[Verdict]) -> str:
    from ..junit import Case, Suite, to_xml
    suite = Suite(f"exercise {exercise}")
    for v in verdicts:
        suite.add(Case(v.criterion.name, f"exercise.{exercise}.{v.criterion.kind}", v.seconds,
                       failure=None if v.ok else v.observed, output=v.observed))
    return to_xml([suite])
