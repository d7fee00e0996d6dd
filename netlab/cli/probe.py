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
@click.option("-v", "--verbose", is_flag=True, help="Explain every check, not only failures.")
@click.option("--lab", metavar="NAME")
def probe(targets: tuple[str, ...], source: str | None, count: int, output: str, verbose: bool,
          lab: str | None) -> None:
    """Prove reachability with real packets and say who answered.

    \b
    With no TARGET: the default matrix (node<->pod, pod<->pod on one node and across nodes for every
    node pair, every pod to every Service port, the external host to every NodePort on every node)
    plus the scenario's expectations. TARGETs: pod/NAME, node/NAME, svc/NAME[:PORT],
    nodeport/NAME[:PORT][@NODE], extip/NAME, IP, IP:PORT, IP:PORT/udp.
    Outcomes: reachable (with the pod that answered and the source IP it saw), refused (RST or ICMP
    port unreachable), unreachable (ICMP host/net unreachable), timeout (nothing came back).
    Exit status 0 only if every check met its expectation.

    \b
    Examples:
      sudo netlab probe
      sudo netlab probe --from pod/client svc/web:80 --count 300
      sudo netlab probe --from external nodeport/web
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
    checks = []
    if not targets:
        if source:
            raise click.UsageError("--from needs a TARGET")
        checks = plan.default_matrix(cluster) + plan.expectation_checks(cluster)
    else:
        if source:
            sources = plan.resolve_sources(cluster, source)
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
