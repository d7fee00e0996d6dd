"""Run checks through the probe engine and judge them against what the model predicts."""
from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

from ..dataplane.host import arp_limit
from .engine import ProbeResult, run_probes
from .plan import Check


@dataclass
class CheckResult:
    check: Check
    results: list[ProbeResult]
    outcome: str
    ok: bool
    answered: Counter = field(default_factory=Counter)
    seen_as: set[str] = field(default_factory=set)
    rtt_ms: float | None = None
    why: str = ""


EITHER = {"unreachable-or-timeout": ("unreachable", "timeout"),
          # some of a Service's endpoints are denied by the policies (policy.py): each try is one or the other
          "reachable-or-denied": ("reachable", "denied")}


def _matches(expect: str, outcome: str) -> bool:
    return expect == outcome or outcome in EITHER.get(expect, ())


def judge(check: Check, results: list[ProbeResult]) -> CheckResult:
    outcomes = Counter(r.outcome for r in results)
    if len(outcomes) == 1:
        outcome = next(iter(outcomes))
    else:  # mixed: the worst one names the check, the counts go to `why`
        outcome = next(o for o in ("error", "unreachable", "timeout", "denied", "refused", "reachable")
                       if o in outcomes)
    answered = Counter(r.answered_by for r in results if r.answered_by)
    seen = {r.client_ip for r in results if r.client_ip}
    rtts = [r.rtt_ms for r in results if r.rtt_ms is not None]
    problems = []
    if len(outcomes) > 1:
        problems.append(", ".join(f"{n} {o}" for o, n in outcomes.most_common()))
    # the mix the policies predict (some endpoints allowed, some denied) names itself
    both = check.expect == "reachable-or-denied" and all(_matches(check.expect, o) for o in outcomes)
    if both and len(outcomes) > 1:
        outcome = check.expect
    ok = _matches(check.expect, outcome) and (len(outcomes) == 1 or both)
    if not _matches(check.expect, outcome):
        detail = next((r.detail for r in results if r.outcome == outcome and r.detail), "")
        problems.append(f"expected {check.expect}, got {outcome}" + (f" ({detail})" if detail else ""))
    if (outcome == "reachable" or both and outcomes["reachable"]) and check.backends is not None:
        stray = set(answered) - check.backends
        if stray:
            ok = False
            problems.append(f"answered by {', '.join(sorted(stray))}, which must not answer")
        if check.need_all_backends and set(answered) != check.backends:
            ok = False
            missing = sorted(check.backends - set(answered))
            problems.append(f"{len(missing)} backend(s) never answered in {len(results)} tries: {', '.join(missing)}")
        if check.min_backends and len(answered) < check.min_backends:
            ok = False
            problems.append(f"only {len(answered)} distinct backends answered, {check.min_backends} expected")
        if not answered:
            ok = False
            problems.append("no pod named itself in the answer")
    if outcome == "reachable" and check.expect_source_ip and seen and seen != {check.expect_source_ip}:
        ok = False
        problems.append(f"the server saw {', '.join(sorted(seen))}, not {check.expect_source_ip} (NAT?)")
    return CheckResult(check, results, outcome, ok, answered, seen,
                       statistics.median(rtts) if rtts else None, "; ".join(problems))


def neighbour_table_fulls() -> int:
    """How often the kernel's neighbour (ARP) table was full: /proc/net/stat/arp_cache, summed over CPUs.

    The table is shared by every network namespace and capped by the root namespace's
    net.ipv4.neigh.default.gc_thresh3 (1024 by default); a full table drops packets silently.
    """
    try:
        with open("/proc/net/stat/arp_cache") as f:
            lines = f.read().split("\n")
        head = lines[0].split()
        col = head.index("table_fulls")
        return sum(int(line.split()[col], 16) for line in lines[1:] if line.strip())
    except (OSError, ValueError, IndexError):
        return 0


ARP_WARNING = ("warning: the kernel's neighbour (ARP) table overflowed {n} times during these probes; it is "
               "shared by all namespaces and capped by the host's net.ipv4.neigh.default.gc_thresh3 ({limit}), "
               "so some packets were dropped and some timeouts above may be that, not the lab. netlab never "
               "changes the host: raise it yourself (e.g. sysctl -w net.ipv4.neigh.default.gc_thresh3=16384 "
               "gc_thresh2=8192) or probe fewer pairs")


def run_checks(checks: list[Check], concurrency: int = 64) -> tuple[list[CheckResult], float, list[str]]:
    """Run every probe of every check; returns the judged checks, the time taken and warnings."""
    specs = [p for c in checks for p in c.probes]
    fulls = neighbour_table_fulls()
    t0 = time.monotonic()
    results = run_probes(specs, concurrency=concurrency)
    elapsed = time.monotonic() - t0
    overflow = neighbour_table_fulls() - fulls
    warnings = [ARP_WARNING.format(n=overflow, limit=arp_limit())] if overflow > 0 else []
    out = []
    i = 0
    for c in checks:
        n = len(c.probes)
        out.append(judge(c, results[i:i + n]))
        i += n
    return out, elapsed, warnings


# ------------------------------------------------------------------ output

def _short(names: Counter, limit: int = 40) -> str:
    if not names:
        return "-"
    if len(names) == 1 and sum(names.values()) == 1:
        return next(iter(names))
    text = ", ".join(f"{n} x{c}" if c > 1 else n for n, c in sorted(names.items()))
    return text if len(text) <= limit else f"{len(names)} pods"


def table(results: list[CheckResult], elapsed: float, verbose: bool = False) -> str:
    lines = []
    group = None
    headers = ["SOURCE", "TARGET", "EXPECT", "RESULT", "RTT", "ANSWERED BY", "SEEN AS", ""]
    rows = []
    for r in results:
        if r.check.group != group:
            group = r.check.group
            rows.append((group,))
        rtt = f"{r.rtt_ms:.2f}ms" if r.rtt_ms is not None else "-"
        rows.append((r.check.source.label, r.check.target, r.check.expect,
                     r.outcome if len(r.results) == 1 else f"{r.outcome} x{len(r.results)}", rtt,
                     _short(r.answered), ",".join(sorted(r.seen_as)) or "-", "ok" if r.ok else "FAIL"))
        if r.why and (not r.ok or verbose):
            rows.append(("", f"  -> {r.why}"))
        if r.check.denied_by and (not r.ok or verbose):   # which policies deny, and where (policy.Denial)
            rows += [("", f"  -> {t}") for t in dict.fromkeys(d.text() for d in r.check.denied_by)]
    widths = [max([len(headers[i])] + [len(row[i]) for row in rows if len(row) == len(headers)])
              for i in range(len(headers))]
    lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    for row in rows:
        if len(row) == 1:
            lines.append(f"# {row[0]}")
        elif len(row) == 2:
            lines.append(f"{row[1]}")
        else:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    good = sum(r.ok for r in results)
    probes = sum(len(r.results) for r in results)
    lines.append(f"{len(results)} checks ({probes} probes): {good} as expected, {len(results) - good} not, "
                 f"in {elapsed:.2f}s")
    return "\n".join(lines) + "\n"


def as_json(results: list[CheckResult], elapsed: float, warnings: list[str] = ()) -> dict:
    return {
        "elapsed_s": round(elapsed, 3),
        "warnings": list(warnings),
        "ok": all(r.ok for r in results),
        "checks": [{
            "group": r.check.group, "source": r.check.source.label, "target": r.check.target,
            "expect": r.check.expect, "outcome": r.outcome, "ok": r.ok, "why": r.why or None,
            "rtt_ms": r.rtt_ms, "answered_by": dict(r.answered), "seen_as": sorted(r.seen_as),
            "denied_by": [d.as_json() for d in r.check.denied_by],
            "probes": [{"kind": x.spec.kind, "dst": x.spec.dst, "port": x.spec.port, "outcome": x.outcome,
                        "rtt_ms": x.rtt_ms, "detail": x.detail, "answered_by": x.answered_by,
                        "client_ip": x.client_ip} for x in r.results],
        } for r in results],
    }


def distribution(results: list[CheckResult]) -> str:
    """How many of the connections each backend received (load-balancing evidence)."""
    lines = []
    for r in results:
        total = len(r.results)
        lines.append(f"{r.check.source.label} -> {r.check.target}: {total} connections")
        for name, n in sorted(r.answered.items(), key=lambda kv: (-kv[1], kv[0])):
            bar = "#" * max(1, round(40 * n / total))
            lines.append(f"  {name:40} {n:5}  {100 * n / total:5.1f}%  {bar}")
        other = total - sum(r.answered.values())
        if other:
            outs = Counter(x.outcome for x in r.results if not x.answered_by)
            lines.append(f"  {'(no answer)':40} {other:5}  " + ", ".join(f"{o} {n}" for o, n in outs.items()))
    return "\n".join(lines) + "\n"


def as_junit(results: list[CheckResult]) -> list:
    """The checks as JUnit suites (netlab/junit.py), one per group: a testcase per check named
    `SOURCE -> TARGET` with classname `probe.<group>`, a failure (the one-line reason) when the check did
    not meet its expectation, and what was seen in its system-out."""
    from ..junit import Case, Suite
    suites: dict[str, Suite] = {}
    for r in results:
        suite = suites.setdefault(r.check.group, Suite(r.check.group))
        seen = [r.outcome + (f" x{len(r.results)}" if len(r.results) > 1 else "") + f" (expected {r.check.expect})"]
        if r.answered:
            seen.append("answered by " + ", ".join(f"{n} x{c}" if c > 1 else n for n, c in sorted(r.answered.items())))
        if r.seen_as:
            seen.append("seen as " + ", ".join(sorted(r.seen_as)))
        if r.rtt_ms is not None:
            seen.append(f"rtt {r.rtt_ms:.2f}ms")
        failure = None
        if not r.ok:
            failure = r.why or f"expected {r.check.expect}, got {r.outcome}"
            denials = list(dict.fromkeys(d.text() for d in r.check.denied_by))
            if denials:
                failure += "; " + "; ".join(denials)
        suite.add(Case(f"{r.check.source.label} -> {r.check.target}", f"probe.{r.check.group}",
                       sum(x.rtt_ms or 0.0 for x in r.results) / 1000.0, failure=failure, output="; ".join(seen)))
    return list(suites.values())
