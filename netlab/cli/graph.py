"""`netlab graph`: draw a lab (or a scenario file) as DOT, SVG, PNG, Mermaid, HTML or JSON (netlab/graph/)."""
from __future__ import annotations

import sys

import click

from ..errors import UsageError
from .common import load_scenario, scenario_inputs, scenario_paths, warn_ignored


@click.command()
@scenario_inputs
@click.option("-o", "--output", "fmt", metavar="FORMAT",
              help="dot, svg, png, mermaid, html or json (default: from --output-file's suffix, else dot).")
@click.option("--output-file", metavar="PATH", help="Write the picture to PATH instead of stdout.")
@click.option("--lab", metavar="NAME", help="Lab to draw (default: the only lab up, else the one last brought up).")
@click.option("--highlight", metavar="ID,ID...", multiple=True,
              help="Draw a path over the picture: these element ids in order (as -o json lists them), numbered.")
def graph(scenario: str | None, files: tuple[str, ...], fmt: str | None, output_file: str | None, lab: str | None,
          highlight: tuple[str, ...]) -> None:
    """Draw the lab: its nodes, pods, cni0 bridges and veths, flannel.1 VXLAN or tunl0 IP-in-IP tunnels or host-gw
    routes, the underlay and the external host, and Services with an edge to each endpoint.

    A lab that is up is read from its state (root, like `netlab get`); with SCENARIO or -f, that scenario
    is drawn as `up` would build it, without root and without changing anything.

    \b
    Formats (-o): dot (Graphviz text), svg, png (through Graphviz's dot), mermaid (flowchart
    text), html (one page: the SVG and a legend), json (the graph as data: element ids,
    kinds, labels, addresses; see README.md). Text goes to stdout; png needs --output-file or
    a stdout that is not a terminal.

    \b
    Examples:
      sudo netlab graph -o svg > lab.svg
      sudo netlab graph --lab demo --output-file lab.png      (the format from the suffix)
      sudo netlab graph -o mermaid                            (paste into a ```mermaid block)
      sudo netlab graph -o json | jq '.nodes[] | select(.kind == "pod") | .id'
      netlab graph scenarios/hostgw.yaml -o html --output-file hostgw.html   (no root)
      sudo netlab graph -o svg --highlight pod:default/client,bridge:demo-worker,node:demo-worker > path.svg
    """
    from .. import graph as gr
    if fmt is None:
        fmt = "dot"
        if output_file:
            found = [f.name for f in gr.FORMATS.values() if output_file.lower().endswith(f.suffixes)]
            if not found:
                raise UsageError(f"cannot tell the format of --output-file {output_file} from its suffix; "
                                 f"give -o FORMAT (one of: {', '.join(gr.FORMATS)})")
            fmt = found[0]
    form = gr.format_for(fmt)
    if form.binary and not output_file and sys.stdout.isatty():
        raise UsageError(f"{form.name} is binary and stdout is a terminal: give --output-file PATH "
                         f"(or redirect: netlab graph -o {form.name} > lab.{form.name})")
    paths = scenario_paths(scenario, files)
    if paths:
        from ..model.build import build
        sc, _ = load_scenario(paths, lab)
        warn_ignored(sc)
        cluster = build(sc)
    else:
        from .. import lab_spec
        from ..dataplane import lab as labmod
        labmod.require_root("read a lab's state")
        cluster, _ = lab_spec.load_cluster(labmod.resolve_lab(lab))
    ids = [i.strip() for h in highlight for i in h.split(",") if i.strip()]
    out = gr.render(gr.build(cluster), form.name, ids)
    data = out if isinstance(out, bytes) else out.encode()
    if output_file:
        try:
            with open(output_file, "wb") as f:
                f.write(data)
        except OSError as e:
            raise UsageError(f"cannot write --output-file {output_file}: {e.strerror}") from None
        return
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
