"""`dns/NAME` probe targets: each NAME looked up from each source (netlab/probe/dnsname.py runs inside the
source's network namespace): from a pod through its own /etc/resolv.conf (nameserver, search, ndots), from
a node or the external host with the default namespace's ClusterFirst path. Used by `netlab probe` and
netlab.Lab.probe; needs root (it enters the lab's namespaces)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from ..errors import NotFound, SpecError


def _pod_resolv_conf(cluster, src):
    """The kubelet-written /etc/resolv.conf of a pod source (netlab/dataplane/podfiles.py), parsed; None
    when it has none (yet)."""
    from ..dataplane import podfiles
    from ..workload.resolvconf import parse_resolv_conf
    ns, _, pname = src.name.partition("/")
    pod = cluster.pod(ns, pname)
    path = os.path.join(podfiles.etc_dir(cluster.name, pod), "resolv.conf") if pod is not None else ""
    try:
        with open(path) as f:
            return parse_resolv_conf(f.read())
    except OSError:
        return None


def ndots(options: list[str]) -> int:
    """glibc's ndots from resolv.conf's options (default 1; capped at 15)."""
    n = 1
    for o in options:
        if o.startswith("ndots:") and o[6:].isdigit():
            n = min(int(o[6:]), 15)
    return n


def sources(cluster, source: str | None) -> list:
    """Where lookups start: `probe --from`'s sources; default, the first pod not on its node's network."""
    from . import plan
    if source:
        return plan.resolve_sources(cluster, source)
    found = [plan.pod_source(p) for p in cluster.pods if not p.host_network][:1]
    if not found:
        raise NotFound("the lab has no pods to resolve from; use --from node/NAME or --from external")
    return found


def check_names(targets: list[str]) -> None:
    for target in targets:
        name = target[len("dns/"):]
        if not name or len(name) > 253 or any(c.isspace() for c in name):
            raise SpecError(target, "is not a DNS name", "write dns/NAME, e.g. dns/web.default")


def resolve_names(cluster, names: list[str], source: str | None) -> list[dict]:
    """One row per (source, dns/NAME target): name, rcode, answers, ms, tried, source (label), target, ok
    (NOERROR with an answer). Sources as `probe --from` takes them (sources above)."""
    return resolve_from(cluster, sources(cluster, source), names)


def resolve_from(cluster, srcs: list, names: list[str]) -> list[dict]:
    """resolve_names from these sources (probe/plan.py's Source), in order."""
    from ..dataplane import lab as labmod
    from ..dns import cluster_dns_ip
    from . import dnsname
    check_names(names)
    server = str(cluster_dns_ip(cluster.networking.service_subnet))
    domain = cluster.networking.dns_domain
    rows = []
    for src in srcs:
        ns = src.name.partition("/")[0] if src.kind == "pod" else "default"
        for target in names:
            name = target[len("dns/"):]
            where, search, n = server, dnsname.search_path(ns, domain), dnsname.NDOTS
            conf = _pod_resolv_conf(cluster, src) if src.kind == "pod" else None
            if conf is not None and conf.nameservers:   # the pod's own /etc/resolv.conf, as its resolver reads it
                where, search, n = conf.nameservers[0], conf.searches, ndots(conf.options)
            tries = dnsname.candidates(name, search, n)
            argv = labmod.netns_exec_argv(src.netns, [sys.executable, "-m", "netlab.probe.dnsname", where, "2",
                                                      *tries])
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10 + 3 * len(tries))
            try:
                got = json.loads(r.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                got = {"name": name, "rcode": f"ERROR ({(r.stderr.strip().splitlines() or ['no output'])[-1]})",
                       "answers": [], "ms": None, "tried": tries}
            good = got["rcode"] == "NOERROR" and bool(got["answers"])
            rows.append(dict(got, source=src.label, target=target, ok=good))
    return rows


def answer_text(row: dict) -> str:
    """What a lookup found: the rcode, the name that answered, the addresses and the latency."""
    ms = f"{row['ms']:.1f} ms" if row.get("ms") is not None else "-"
    what = " ".join(row["answers"]) if row["answers"] else "(no answer)"
    return f"{row['rcode']} {row['name']} {what} ({ms})"


def row_text(row: dict) -> str:
    """A lookup as `netlab probe` prints it."""
    return f"{'ok  ' if row['ok'] else 'FAIL'} {row['source']} -> {row['target']}: {answer_text(row)}"
