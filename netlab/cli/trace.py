"""`netlab trace`: one real packet, followed hop by hop through the kernel (netlab/trace/)."""
from __future__ import annotations

import sys

import click

GRAPH_FORMATS = ("svg", "png", "dot", "mermaid", "html")   # netlab.graph.FORMATS but json (a unit test checks)


@click.command()
@click.argument("source", metavar="SRC")
@click.argument("target", metavar="DST")
@click.option("-o", "--output", default="table", show_default=True, metavar="FORMAT",
              help="table, json, junit, or a picture of the lab with the path drawn over it: "
                   "svg, png, dot, mermaid, html (written to stdout).")
@click.option("--timeout", type=click.FloatRange(0.1, 30), default=3.0, show_default=True,
              help="Seconds to wait for the answer.")
@click.option("--lab", metavar="NAME")
def trace(source: str, target: str, output: str, timeout: float, lab: str | None) -> None:
    """Send ONE real packet from SRC to DST and show its path as the kernel handled it.

    \b
    SRC: pod/NAME, pod/NS/NAME, node/NAME or external. DST as `netlab probe` takes it: svc/NAME[:PORT],
    pod/NAME (an ICMP echo), node/NAME, nodeport/NAME[:PORT][@NODE] (the first node without @NODE), IP,
    IP:PORT, IP:PORT/udp ... A UDP Service port is traced with a UDP datagram, a TCP one with a SYN.
    Every netfilter rule that gave the packet a verdict in each node (iptables TRACE with
    xtables-monitor, or nftables' nftrace with `nft monitor trace`), each route lookup, the VXLAN /
    IP-in-IP / host-gw hop and the conntrack entry, then the differences with the model's prediction.
    Exit status: 0 when the kernel's path matches the model, 1 when they differ, 2 when no route leads
    to DST (the trace says where it stopped) or on bad input.

    \b
    Examples:
      sudo netlab trace pod/client svc/web:80
      sudo netlab trace external nodeport/web:80 -o json
      sudo netlab trace pod/client svc/web:80 -o svg > path.svg
    """
    from ..errors import UsageError
    if output not in ("table", "json", "junit", *GRAPH_FORMATS):
        raise UsageError(f"unknown output format '{output}': use table, json, junit, {', '.join(GRAPH_FORMATS)}")
    from ..dataplane import lab as labmod
    from .. import trace as tracemod
    labmod.require_root("send a traced packet inside a lab's namespaces")
    name = labmod.resolve_lab(lab)
    result = tracemod.trace(name, source, target, timeout=timeout)
    if output == "json":
        import json
        click.echo(json.dumps(result.to_dict(), indent=2))
    elif output == "junit":
        from ..trace.report import junit
        click.echo(junit(result), nl=False)
    elif output in GRAPH_FORMATS:
        from .. import lab_spec
        data = draw(lab_spec.load_cluster(name)[0], result, output)
        if isinstance(data, bytes):
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            click.echo(data, nl=False)
    else:
        from ..trace.report import table
        click.echo(table(result), nl=False)
    if result.outcome == "no-route":
        sys.exit(2)
    sys.exit(1 if result.differences else 0)


def highlight(result) -> list[str]:
    """The graph ids of the hops in order, consecutive repeats dropped (contract 2)."""
    out: list[str] = []
    for h in result.hops:
        if h.graph_id and (not out or out[-1] != h.graph_id):
            out.append(h.graph_id)
    return out


def draw(cluster, result, fmt: str):
    """netlab.graph's picture of the lab with the trace's path drawn over it."""
    from .. import graph
    return graph.render(graph.build(cluster), fmt, highlight=highlight(result))
