"""`netlab probe` of a lab on real hosts (hostNetwork.mode real), run on any machine: the checks that start on
another machine's host are run there, by that host's agent, and judged here with the rest.

Another machine's namespaces are not on this one, so a probe that starts in them can only be sent there. As
`down` does (live/teardown.py), `probe` asks through the lab's store, which every agent watches:

1. `probe` plans the checks (probe/plan.py, pure) and writes, for each other machine's host with checks to
   run, the ConfigMap `kube-system/netlab-probe-<id>-to-<host>`: that host's probes (probe/spec.py's
   ProbeSpec, as zlib-compressed JSON), who asked and when;
2. the agent of that host sees it (it looks whenever a ConfigMap changed), writes the answer
   `kube-system/netlab-probe-<id>-from-<host>` with state `running` and starts `python -m
   netlab.live.probeserve LAB HOST REQUEST`, owned by the lab (`<lab>/host/<host>/probe`); that process
   sends the probes from this machine's namespaces (probe/scheduler.py's run_probes, as a local probe does)
   and writes the results into the answer (state `done`, or `failed` with why);
3. meanwhile `probe` runs this machine's checks; then it waits for the answers, judges each check with its
   own probes' results (probe/run.py's judge, as for a local one) and prints them all in the plan's order.
   A host whose agent did not take its checks within `--agents-timeout`, or whose run did not end in time,
   has its checks counted as failed, each saying why and what to run on that machine. The requests and
   answers are removed when it ends.

An agent only sends probes from the lab's own namespaces (a request naming any other is refused in its
answer), whoever wrote to the store.
"""
from __future__ import annotations

import base64
import json
import os
import socket
import sys
import time
import uuid
import zlib
from collections import Counter
from dataclasses import asdict, fields

from .. import names
from ..probe.spec import ProbeResult, ProbeSpec
from .asking import await_answers, hosts_text
from .hostscope import CONFIG_NAMESPACE

PREFIX = "netlab-probe-"
TIMEOUT = 30.0         # how long `probe` waits for an agent to take its host's checks (the CLI's default)
MAX_PACKED = 900_000   # one ConfigMap's packed probes, under etcd's 1.5 MiB request limit with room to spare
_SPEC_FIELDS = {f.name for f in fields(ProbeSpec)}
ROW_KEYS = {"name", "rcode", "answers", "ms", "source", "target", "ok"}   # a lookup's row (probe/lookup.py)


def request_name(rid: str, host: str) -> str:
    return f"{PREFIX}{rid}-to-{host}"


def answer_name(rid: str, host: str) -> str:
    return f"{PREFIX}{rid}-from-{host}"


def pack(value) -> str:
    return base64.b64encode(zlib.compress(json.dumps(value, separators=(",", ":")).encode(), 6)).decode()


def unpack(text: str):
    return json.loads(zlib.decompress(base64.b64decode(text)))


def _cm(name: str, data: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": CONFIG_NAMESPACE, "labels": {"netlab.dev/probe": "true"}},
            "data": data}


def request_object(rid: str, host: str, specs: list[ProbeSpec], by: str, at: str,
                   lookups: dict | None = None) -> dict:
    """The request to `host`'s agent: its probes, packed (a UsageError when they are too many for one write
    to etcd), and its `dns/NAME` lookups ({"names": [dns/NAME...], "sources": [source labels]})."""
    from ..errors import UsageError
    packed = pack([asdict(s) for s in specs])
    if len(packed) > MAX_PACKED:
        raise UsageError(f"the {len(specs)} probes that start on host {host} take {len(packed)} bytes packed, more "
                         f"than one write to the lab's etcd holds ({MAX_PACKED}): probe fewer targets, or run "
                         f"netlab probe on that host's machine")
    data = {"id": rid, "host": host, "requestedBy": by, "requestedAt": at, "probes": str(len(specs)),
            "specs": packed}
    if lookups:
        data["lookups"] = json.dumps(lookups)
    return _cm(request_name(rid, host), data)


def answer_object(rid: str, host: str, state: str, machine: str, results: list[ProbeResult] | None = None,
                  elapsed: float | None = None, warnings: list[str] = (), why: str = "",
                  rows: list[dict] | None = None) -> dict:
    data = {"id": rid, "host": host, "machine": machine, "state": state}
    if rows is not None:   # the lookups' rows (probe/lookup.py)
        data["rows"] = json.dumps(rows)
    if results is not None:
        data["results"] = pack([[r.outcome, r.rtt_ms, r.detail, r.answered_by, r.client_ip, r.reply_src]
                                for r in results])
        data["elapsed"] = f"{elapsed or 0.0:.3f}"
        data["warnings"] = json.dumps(list(warnings))
    if why:
        data["why"] = why
    return _cm(answer_name(rid, host), data)


def specs_of(lab: str, data: dict) -> list[ProbeSpec]:
    """The probes of a request, checked: every one starts in a namespace of lab `lab` (ValueError if not)."""
    specs = []
    for d in unpack(data["specs"]):
        if not isinstance(d, dict) or set(d) - _SPEC_FIELDS or not names.is_lab_netns(str(d.get("source_netns")), lab):
            raise ValueError(f"a probe that does not start in one of lab {lab}'s namespaces: {str(d)[:200]}")
        specs.append(ProbeSpec(**d))
    return specs


def results_of(specs: list[ProbeSpec], data: dict) -> list[ProbeResult]:
    """An answer's results, each with the probe it answers (the request's, in its order)."""
    rows = unpack(data["results"])
    if len(rows) != len(specs):
        raise ValueError(f"{len(rows)} results for {len(specs)} probes")
    return [ProbeResult(s, *row) for s, row in zip(specs, rows)]


# ------------------------------------------------------------------ the agent's side

def pending(configmaps: list[dict], host: str) -> tuple[list[str], list[str]]:
    """(requests to `host` not answered yet, answers of `host` whose request is gone) among kube-system's
    ConfigMaps (pure)."""
    have = {cm["metadata"]["name"] for cm in configmaps}
    asks, stale = [], []
    for name in sorted(have):
        rid, _, way = name[len(PREFIX):].partition("-")   # (an id is hex: no dash)
        if not name.startswith(PREFIX) or way not in (f"to-{host}", f"from-{host}"):
            continue
        if way == f"to-{host}" and answer_name(rid, host) not in have:
            asks.append(name)
        elif way == f"from-{host}" and request_name(rid, host) not in have:
            stale.append(name)
    return asks, stale


def owner(lab: str, host: str) -> str:
    return f"{lab}/host/{host}/probe"


def take(store, lab: str, host: str, running: dict) -> list[str]:
    """An agent's look at kube-system's ConfigMaps: each new request to its host is answered `running` and
    handed to a process of its own (`running`: request name -> Popen, kept by the agent to reap them); the
    answers left by requests that are gone are removed. Returns what it did, for the agent's log."""
    import subprocess
    from ..dataplane import procs
    from ..store.api import AlreadyExists, NotFoundError
    listed = {cm["metadata"]["name"]: cm for cm in store.list("ConfigMap", CONFIG_NAMESPACE)}
    asks, stale = pending(list(listed.values()), host)
    did = []
    for name in stale:   # (a process still running for a request that is gone removes its own answer)
        if name.replace(f"-from-{host}", f"-to-{host}") not in running:
            try:
                store.delete("ConfigMap", CONFIG_NAMESPACE, name)
            except NotFoundError:
                pass
    for name in asks:
        if name in running:
            continue
        data = listed[name].get("data") or {}
        rid = data.get("id", "")
        try:
            store.create(answer_object(rid, host, "running", socket.gethostname()))
        except AlreadyExists:
            continue
        env = dict(os.environ, **{procs.OWNER_VAR: owner(lab, host)})
        running[name] = subprocess.Popen([sys.executable, "-m", "netlab.live.probeserve", lab, host, name],
                                         stdin=subprocess.DEVNULL, env=env, close_fds=True, cwd="/")
        try:   # (for the log only: the process checks the request, and answers what is wrong with it)
            lookups = json.loads(data.get("lookups") or "{}")
            n = len(lookups.get("names", [])) * len(lookups.get("sources", []))
        except (ValueError, AttributeError, TypeError):
            n = 0
        did.append(f"netlab probe: running {data.get('probes', '?')} probes{f' and {n} lookups' if n else ''} "
                   f"asked by {data.get('requestedBy', '?')} ({name})")
    reap(running)
    return did


def reap(running: dict) -> None:
    for name, p in list(running.items()):
        if p.poll() is not None:
            del running[name]


# ------------------------------------------------------------------ `probe`'s side

def _budget(specs: list[ProbeSpec], lookups: int = 0) -> float:
    """How long a host's run may take once its agent took it: the probe engine runs 64 probes at once, each
    within its timeout, and a lookup takes at most a few seconds; generous, for a machine under load."""
    return 30.0 + 2 * sum(s.timeout for s in specs) / 8 + 10.0 * lookups


def ask(store, work: dict[str, tuple[list[ProbeSpec], dict | None]]) -> str:
    """Write the requests (host -> its probes and lookups); returns their id."""
    from ..store.meta import fmt_time
    rid = uuid.uuid4().hex[:10]
    at = fmt_time(time.time())
    objs = [request_object(rid, h, specs, socket.gethostname(), at, lookups)
            for h, (specs, lookups) in sorted(work.items())]
    try:
        for obj in objs:
            store.create(obj)
    except BaseException:
        forget(store, rid, work)
        raise
    return rid


def collect(store, lab: str, rid: str, budgets: dict[str, float], timeout: float = TIMEOUT,
            progress=None) -> tuple[dict[str, dict], dict[str, str]]:
    """Wait for the answers to request `rid` (host -> how long its run may take once taken), then remove the
    requests and answers. Returns (host -> its answer's data, host -> why it has none)."""
    answers: dict[str, dict] = {}
    failed: dict[str, str] = {}
    start = time.monotonic()
    taken: dict[str, float] = {}
    redo = f"run sudo netlab probe --lab {lab} on its machine"

    def settled(h: str) -> bool:
        got = store.try_get("ConfigMap", CONFIG_NAMESPACE, answer_name(rid, h))
        data = (got or {}).get("data") or {}
        now = time.monotonic()
        if data.get("state") == "done":
            answers[h] = data
        elif data.get("state") == "failed":
            failed[h] = f"host {h}'s agent could not run its checks ({data.get('why', '?')})"
        elif got is not None:
            if now - taken.setdefault(h, now) < budgets[h]:
                return False
            failed[h] = f"host {h}'s agent took its checks but did not finish them within {budgets[h]:.0f} s: {redo}"
        elif now - start >= timeout:
            failed[h] = f"host {h}'s agent did not take its checks within {timeout:g} s: {redo}"
        else:
            return False
        return True
    try:
        await_answers(budgets, settled, None, progress,
                      lambda waiting: f"waiting for the agents of {hosts_text(waiting)} to run their checks", 0.1)
    finally:
        forget(store, rid, budgets)
    return answers, failed


def forget(store, rid: str, hosts) -> None:
    from ..store.api import NotFoundError
    for h in hosts:
        for name in (request_name(rid, h), answer_name(rid, h)):
            try:
                store.delete("ConfigMap", CONFIG_NAMESPACE, name)
            except NotFoundError:
                pass


def _placer(cluster):
    """source -> the host of another machine it starts on, or None (this machine's, or not on real hosts)."""
    from .agent import away_hosts
    away = away_hosts(cluster.name, cluster)
    host_of = {n.name: n.host for n in cluster.nodes if n.host in away}
    home = cluster.networking.hosts.home.name if away else None   # the external host's host

    def where(src) -> str | None:
        return home if src.kind == "external" and home in away else host_of.get(src.node)
    return where


def _elsewhere(progress, what: str, hosts) -> None:
    if progress:
        n = Counter(hosts)
        progress(f"{sum(n.values())} {what} start on the hosts of other machines: their agents run them ("
                 + ", ".join(f"{h}: {k}" for h, k in sorted(n.items())) + ")")


def run_checks(cluster, checks: list, timeout: float = TIMEOUT, progress=None):
    """probe/run.py's run_checks for any lab: on real hosts, the checks that start on another machine's host
    are sent to its agent (see the module's docstring). Same result: (judged checks in the plan's order,
    seconds taken, warnings)."""
    from ..probe import run
    from . import store_for
    where = _placer(cluster)
    there = [c for c in checks if where(c.source) is not None]
    if not there:
        return run.run_checks(checks)
    here = [c for c in checks if where(c.source) is None]
    by_host: dict[str, list[ProbeSpec]] = {}
    for c in there:
        by_host.setdefault(where(c.source), []).extend(c.probes)
    t0 = time.monotonic()
    store = store_for(cluster.name)
    rid = ask(store, {h: (specs, None) for h, specs in by_host.items()})
    try:
        _elsewhere(progress, "checks", [where(c.source) for c in there])
        local, _, warnings = run.run_checks(here) if here else ([], 0.0, [])
    except BaseException:
        forget(store, rid, by_host)
        raise
    answers, failed = collect(store, cluster.name, rid, {h: _budget(s) for h, s in by_host.items()}, timeout,
                              progress)
    sent = {}
    for h, specs in by_host.items():
        try:
            if h in answers:
                sent[h] = iter(results_of(specs, answers[h]))
                warnings += json.loads(answers[h].get("warnings") or "[]")
                continue
        except (ValueError, TypeError, zlib.error) as e:   # (binascii.Error and JSON's are ValueErrors)
            failed[h] = f"host {h}'s agent answered what is not its checks' results ({e})"
        sent[h] = iter([ProbeResult(s, "error", None, failed[h]) for s in specs])
        warnings.append(failed[h])
    judged = iter(local)
    out = []
    for c in checks:
        h = where(c.source)
        out.append(next(judged) if h is None else run.judge(c, [next(sent[h]) for _ in c.probes]))
    return out, time.monotonic() - t0, warnings


def resolve_names(cluster, targets: list[str], source: str | None, timeout: float = TIMEOUT,
                  progress=None) -> list[dict]:
    """probe/lookup.py's resolve_names for any lab: on real hosts, the lookups from sources on another
    machine's host are sent to its agent. Same rows, in the same order (sources, then names)."""
    from ..probe import lookup
    from . import store_for
    lookup.check_names(targets)
    where = _placer(cluster)
    sources = lookup.sources(cluster, source)
    by_host: dict[str, list[str]] = {}
    for src in sources:
        if where(src) is not None:
            by_host.setdefault(where(src), []).append(src.label)
    if not by_host:
        return lookup.resolve_names(cluster, targets, source)
    store = store_for(cluster.name)
    rid = ask(store, {h: ([], {"names": targets, "sources": labels}) for h, labels in by_host.items()})
    try:
        _elsewhere(progress, "lookups", [where(s) for s in sources for _ in targets if where(s) is not None])
        local = iter(lookup.resolve_from(cluster, [s for s in sources if where(s) is None], targets))
    except BaseException:
        forget(store, rid, by_host)
        raise
    answers, failed = collect(store, cluster.name, rid, {h: _budget([], len(v) * len(targets))
                                                          for h, v in by_host.items()}, timeout, progress)
    sent = {}
    for h in answers:
        try:
            rows = json.loads(answers[h]["rows"])
            if len(rows) != len(by_host[h]) * len(targets):
                raise ValueError(f"{len(rows)} rows for {len(by_host[h]) * len(targets)} lookups")
            if not all(isinstance(r, dict) and ROW_KEYS <= set(r) for r in rows):
                raise ValueError(f"a row without {', '.join(sorted(ROW_KEYS))}")
            sent[h] = iter(rows)
        except (ValueError, KeyError) as e:
            failed[h] = f"host {h}'s agent answered what is not its lookups' rows ({e})"
    rows = []
    for src in sources:
        h = where(src)
        for target in targets:
            if h is None:
                rows.append(next(local))
            elif h in sent:
                rows.append(next(sent[h]))
            else:
                rows.append({"name": target[len("dns/"):], "rcode": f"ERROR ({failed[h]})", "answers": [], "ms": None,
                             "tried": [], "source": src.label, "target": target, "ok": False})
    return rows
