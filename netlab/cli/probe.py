"""`netlab probe`: prove reachability with real packets (also run by `netlab up --probe`)."""
from __future__ import annotations

import sys

import click


@click.command()
@click.argument("targets", nargs=-1)
@click.option("--from", "source", metavar="SOURCE",
              help="Where probes start: pod/NAME, pod/NS/NAME, node/NAME or external (default: every pod, "
                   "or the first pod for IP targets).")
@click.option("--count", type=click.IntRange(1, 100000), default=1, show_default=True,
              help="New connections per target; prints how many each backend received.")
@click.option("-o", "--output", type=click.Choice(["table", "json", "junit"]), default="table", show_default=True,
              help="junit: JUnit XML on stdout (a testcase per check, a failure when it missed its expectation), "
                   "for CI: netlab probe -o junit > probe.xml.")
@click.option("-v", "--verbose", is_flag=True,
              help="Explain every check, not only failures (and name the NetworkPolicies that deny).")
@click.option("--agents-timeout", type=click.FloatRange(0, min_open=True), default=30.0, show_default=True,
              metavar="SECONDS",
              help="A lab on real hosts: how long to wait for another machine's agent to take the checks that "
                   "start on its host.")
@click.option("--lab", metavar="NAME")
def probe(targets: tuple[str, ...], source: str | None, count: int, output: str, verbose: bool,
          agents_timeout: float, lab: str | None) -> None:
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
    Exit status 0 only if every check met its expectation. -o junit writes JUnit XML for CI (one testcase
    per check, classname probe.GROUP, a failure naming what missed its expectation).
    A lab on real hosts (hostNetwork.mode real), from any machine: the checks that start on another
    machine's host (and its dns/ lookups) are sent to that host's agent through the lab's etcd and run
    there, the rest here; all are judged and shown here. A host whose agent does not take them within
    --agents-timeout has its checks failed, naming it.

    \b
    Examples:
      sudo netlab probe
      sudo netlab probe --from pod/client svc/web:80 --count 300
      sudo netlab probe --from external nodeport/web
      sudo netlab probe lb/web:80
      sudo netlab probe --from pod/client dns/web.default
      sudo netlab probe ingress/web/foo.example/api
      sudo netlab probe -o junit > probe.xml
    """
    from ..dataplane import lab as labmod
    from .. import lab_spec
    labmod.require_root("send probes inside a lab's namespaces")
    name = labmod.resolve_lab(lab)
    cluster, _ = lab_spec.load_cluster(name)
    sys.exit(_probe_and_report(cluster, list(targets), source, count, output, verbose, agents_timeout))


def _probe_and_report(cluster, targets: list[str], source: str | None, count: int, output: str,
                      verbose: bool, agents_timeout: float = 30.0) -> int:
    import json

    from ..junit import to_xml
    from ..live import remoteprobe   # (real hosts: another machine's checks and lookups run by its agent)
    from ..probe import lookup, plan, run
    names = [t for t in targets if t.startswith("dns/")]
    targets = [t for t in targets if not t.startswith("dns/")]
    if source and not targets and not names:
        raise click.UsageError("--from needs a TARGET")
    code, suites = 0, []

    def say(message: str) -> None:
        click.echo(message, err=True)
    if names:
        rows = remoteprobe.resolve_names(cluster, names, source, agents_timeout, say)
        code = 0 if all(r["ok"] for r in rows) else 1
        if output == "junit":
            suites.append(_dns_suite(rows))
        elif output == "json":
            click.echo(json.dumps({"dns": rows}, indent=2))
        else:
            for row in rows:
                click.echo(lookup.row_text(row))
    checks = plan.plan_checks(cluster, targets, source, count) if targets or not names else []
    if checks:
        results, elapsed, warnings = remoteprobe.run_checks(cluster, checks, agents_timeout, say)
        for w in warnings:
            click.echo(w, err=True)
        code = max(code, 0 if all(r.ok for r in results) else 1)
        if output == "junit":
            suites += run.as_junit(results)
        elif output == "json":
            click.echo(json.dumps(run.as_json(results, elapsed, warnings), indent=2))
        else:
            if count > 1:
                click.echo(run.distribution(results), nl=False)
            click.echo(run.table(results, elapsed, verbose), nl=False)
    elif not names:
        click.echo("nothing to probe", err=output == "junit")
    if output == "junit":
        click.echo(to_xml(suites), nl=False)
    return code


def _dns_suite(rows: list[dict]):
    """dns/NAME lookups as a JUnit suite: a testcase per lookup, a failure when the name did not resolve."""
    from ..junit import Case, Suite
    from ..probe.lookup import row_text
    suite = Suite("dns")
    for row in rows:
        suite.add(Case(f"{row['source']} -> {row['target']}", "probe.dns", (row.get("ms") or 0.0) / 1000.0,
                       failure=None if row["ok"] else f"{row['name']}: {row['rcode']}, no answer",
                       output=row_text(row)))
    return suite
