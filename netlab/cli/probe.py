"""`netlab probe`: prove reachability with real packets (also run by `netlab up --probe`)."""
from __future__ import annotations

import sys

import click

from ..errors import NotFound


@click.command()
@click.argument("targets", nargs=-1)
@click.option("--from", "source", metavar="SOURCE",
              help="Where probes start: pod/NAME, pod/NS/NAME, node/NAME or external (default: every pod, "
                   "or the first pod for IP targets).")
@click.option("--count", type=click.IntRange(1, 100000), default=1, show_default=True,
              help="New connections per target; prints how many each backend received.")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("-v", "--verbose", is_flag=True,
              help="Explain every check, not only failures (and name the NetworkPolicies that deny).")
@click.option("--lab", metavar="NAME")
def probe(targets: tuple[str, ...], source: str | None, count: int, output: str, verbose: bool,
          lab: str | None) -> None:
    """Prove reachability with real packets and say who answered.

    \b
    With no TARGET: the default matrix (node<->pod, pod<->pod on one node and across nodes for every
    node pair, every pod to every Service port but the add-ons', the external host to every NodePort on every node)
    plus the scenario's expectations. TARGETs: pod/NAME, node/NAME, svc/NAME[:PORT],
    nodeport/NAME[:PORT][@NODE], extip/NAME, lb/NAME[:PORT] (the Service's LoadBalancer IPs, from the
    external host unless --from says otherwise), ingress/NAME/HOST/PATH (an HTTP request with Host: HOST
    through the lab's ingress-nginx, from the external host by default), IP, IP:PORT, IP:PORT/udp, and
    dns/NAME: NAME resolved
    (A) from the source through the cluster DNS with a pod's search path and ndots:5, reporting the
    answer or rcode and the lookup's latency (a dns/ check passes when NAME resolves).
    Outcomes: reachable (with the pod that answered and the source IP it saw), refused (RST or ICMP
    port unreachable), denied (ICMP admin-prohibited: what a NetworkPolicy answers), unreachable (ICMP
    host/net unreachable), timeout (nothing came back). Expectations follow the lab's NetworkPolicies:
    denied where they deny, reachable-or-denied for a Service whose endpoints are only partly allowed
    (an answer must then come from an allowed one); -v names the denying policies, -o json lists them
    in each check's denied_by.
    Exit status 0 only if every check met its expectation.

    \b
    Examples:
      sudo netlab probe
      sudo netlab probe --from pod/client svc/web:80 --count 300
      sudo netlab probe --from external nodeport/web
      sudo netlab probe lb/web:80
      sudo netlab probe --from pod/client dns/web.default
      sudo netlab probe ingress/web/foo.example/api
    """
    from ..dataplane import lab as labmod
    from .. import lab_spec
    labmod.require_root("send probes inside a lab's namespaces")
    name = labmod.resolve_lab(lab)
    cluster, _ = lab_spec.load_cluster(name)
    sys.exit(_probe_and_report(cluster, list(targets), source, count, output, verbose))


def _probe_and_report(cluster, targets: list[str], source: str | None, count: int, output: str,
                      verbose: bool) -> int:
    import json

    from ..probe import plan, run
    names = [t for t in targets if t.startswith("dns/")]
    if names:
        targets = [t for t in targets if not t.startswith("dns/")]
        code = _resolve_and_report(cluster, names, source, output)
        if not targets:
            return code
        return max(code, _probe_and_report(cluster, targets, source, count, output, verbose))
    checks = []
    if not targets:
        if source:
            raise click.UsageError("--from needs a TARGET")
        checks = plan.default_matrix(cluster) + plan.expectation_checks(cluster)
    else:
        if source:
            sources = plan.resolve_sources(cluster, source)
        elif all(t.startswith(("lb/", "ingress/")) for t in targets):   # from outside, as their clients
            sources = plan.resolve_sources(cluster, "external")
        else:
            sources = [plan.pod_source(p) for p in cluster.pods]
            if not sources:
                raise NotFound("the lab has no pods to probe from; use --from node/NAME or --from external")
            if any(not t.startswith(("pod/", "svc/")) for t in targets) or count > 1:
                sources = sources[:1]
        for src in sources:
            for t in targets:
                checks += plan.target_checks(cluster, src, t, count=count, need_all=False)
    if not checks:
        click.echo("nothing to probe")
        return 0
    results, elapsed, warnings = run.run_checks(checks)
    for w in warnings:
        click.echo(w, err=True)
    if output == "json":
        click.echo(json.dumps(run.as_json(results, elapsed, warnings), indent=2))
    else:
        if count > 1:
            click.echo(run.distribution(results), nl=False)
        click.echo(run.table(results, elapsed, verbose), nl=False)
    return 0 if all(r.ok for r in results) else 1


def _pod_resolv_conf(cluster, src):
    """The kubelet-written /etc/resolv.conf of a pod source (netlab/dataplane/podfiles.py), parsed; None
    when it has none (yet)."""
    import os

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


def _ndots(options: list[str]) -> int:
    """glibc's ndots from resolv.conf's options (default 1; capped at 15)."""
    n = 1
    for o in options:
        if o.startswith("ndots:") and o[6:].isdigit():
            n = min(int(o[6:]), 15)
    return n


def _resolve_and_report(cluster, names: list[str], source: str | None, output: str) -> int:
    """`dns/NAME` targets: each NAME looked up from each source (netlab/probe/dnsname.py), inside the
    source's network namespace: from a pod through its own /etc/resolv.conf (nameserver, search, ndots),
    from a node or the external host with the default namespace's ClusterFirst path."""
    import json
    import subprocess

    from ..dataplane import lab as labmod
    from ..dns import cluster_dns_ip
    from ..errors import SpecError
    from ..probe import dnsname, plan
    if source:
        sources = plan.resolve_sources(cluster, source)
    else:
        sources = [plan.pod_source(p) for p in cluster.pods if not p.host_network][:1]
        if not sources:
            raise NotFound("the lab has no pods to resolve from; use --from node/NAME or --from external")
    server = str(cluster_dns_ip(cluster.networking.service_subnet))
    domain = cluster.networking.dns_domain
    rows, ok = [], True
    for src in sources:
        ns = src.name.partition("/")[0] if src.kind == "pod" else "default"
        for target in names:
            name = target[len("dns/"):]
            if not name or len(name) > 253 or any(c.isspace() for c in name):
                raise SpecError(target, "is not a DNS name", "write dns/NAME, e.g. dns/web.default")
            where, search, ndots = server, dnsname.search_path(ns, domain), dnsname.NDOTS
            conf = _pod_resolv_conf(cluster, src) if src.kind == "pod" else None
            if conf is not None and conf.nameservers:   # the pod's own /etc/resolv.conf, as its resolver reads it
                where, search, ndots = conf.nameservers[0], conf.searches, _ndots(conf.options)
            tries = dnsname.candidates(name, search, ndots)
            argv = labmod.netns_exec_argv(src.netns, [sys.executable, "-m", "netlab.probe.dnsname", where, "2",
                                                      *tries])
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10 + 3 * len(tries))
            try:
                got = json.loads(r.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                got = {"name": name, "rcode": f"ERROR ({(r.stderr.strip().splitlines() or ['no output'])[-1]})",
                       "answers": [], "ms": None, "tried": tries}
            good = got["rcode"] == "NOERROR" and bool(got["answers"])
            ok = ok and good
            rows.append(dict(got, source=src.label, target=target, ok=good))
    if output == "json":
        click.echo(json.dumps({"dns": rows}, indent=2))
    else:
        for row in rows:
            ms = f"{row['ms']:.1f} ms" if row.get("ms") is not None else "-"
            what = " ".join(row["answers"]) if row["answers"] else "(no answer)"
            click.echo(f"{'ok  ' if row['ok'] else 'FAIL'} {row['source']} -> {row['target']}: {row['rcode']} "
                       f"{row['name']} {what} ({ms})")
    return 0 if ok else 1
