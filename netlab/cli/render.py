"""`netlab render` and `netlab validate`: what `up` would program, and whether a scenario is valid (no root)."""
from __future__ import annotations

import click

from .. import proxymodes
from ..errors import SpecError, UsageError
from .common import load_scenario, scenario_inputs, scenario_or_stored, scenario_paths, warn_ignored


@click.command()
@scenario_inputs
@click.option("--node", "node_name", metavar="NODE", help="Node to render (default: every node).")
@click.option("--lab", metavar="NAME", help="Lab name to render for.")
@click.option("--fabric", is_flag=True, help="Show the links, addresses and routes (backend bgp: and the BIRD configurations) "
              "instead of the rules.")
@click.option("--proxy-mode", type=click.Choice(proxymodes.names()),
              help="Render for this kube-proxy mode instead of the scenario's.")
def render(scenario: str | None, files: tuple[str, ...], node_name: str | None, lab: str | None, fabric: bool,
           proxy_mode: str | None) -> None:
    """Print what `up` would program into a node, without root and without changing anything:
    the iptables-restore payload, plus the nft script (nftables mode), the IPVS state (ipvs mode) or
    the proxy's listeners and config (userspace mode);
    or the fabric (--fabric). Without SCENARIO or -f, a lab that exists (--lab NAME) is rendered from
    the scenario it was built from (its state is readable by root only), else the built-in demo.
    A scenario `validate` refuses (a container command not installed here...) is refused the same way."""
    from ..model.build import build
    from ..model.preflight import check_commands, check_host_commands, check_proxy_mode
    from ..render import fabric as fab
    from ..render.iptables import node_rules, to_restore
    sc, text, stored_mode, stored = scenario_or_stored(scenario_paths(scenario, files), lab, "render")
    warn_ignored(sc)
    if proxy_mode or stored_mode:
        sc.networking.proxy_mode = proxy_mode or stored_mode
    import os

    from ..live import has_store
    prev = None
    if stored or os.geteuid() == 0:  # the lab's own addresses, as `up` keeps them
        from ..dataplane import state
        prev = state.load(sc.name)
    if prev and has_store(sc.name):  # a live lab: the pods its controllers made (or would make of the file)
        from ..live.sync import LiveLab, preview
        cluster = LiveLab(sc.name).desired(prev, sc.networking.proxy_mode)[0] if stored else \
            preview(sc.name, sc, text, prev)
    else:
        cluster = build(sc, prev)
    check_commands(cluster)  # a dry run of `up`: what it refuses, with the same messages
    check_host_commands(cluster)
    check_proxy_mode(cluster)
    nodes = cluster.nodes
    if node_name:
        try:
            nodes = [cluster.node(node_name)]
        except KeyError:
            raise SpecError("--node", f"'{node_name}' is not a node of this scenario",
                            f"use one of: {', '.join(n.name for n in cluster.nodes)}") from None
    for n in nodes:
        if len(nodes) > 1:
            click.echo(f"# ---- node {n.name}")
        if fabric:
            if n is nodes[0] and cluster.networking.hosts is not None and not node_name:
                click.echo(fab.describe_hosts(cluster), nl=False)
            click.echo(fab.describe(cluster, n), nl=False)
            if cluster.networking.backend == "bgp":
                from ..bgp import bird
                click.echo(f"# bird.conf of its BGP speaker\n{bird.node_config(cluster, n)}", nl=False)
            continue
        click.echo(to_restore(node_rules(cluster, n)), nl=False)
        more = proxymodes.get(cluster.networking.proxy_mode).render
        if more:
            click.echo(more(cluster, n), nl=False)
    if fabric and cluster.networking.backend == "bgp" and not node_name:
        from ..bgp import bird
        click.echo(f"# ---- external router (bird.conf)\n{bird.router_config(cluster)}", nl=False)


@click.command()
@scenario_inputs
def validate(scenario: str | None, files: tuple[str, ...]) -> None:
    """Check a scenario (SCENARIO and the -f inputs) without building it (no root needed): what `up`
    would refuse is refused here with the same message, including a kube-proxy mode or a backend (ipip)
    this kernel cannot run."""
    from ..model.build import build
    from ..model.preflight import check_commands, check_host_commands, check_proxy_mode
    sc, _ = load_scenario(scenario_paths(scenario, files), None)
    from ..spec.podparts import check_references
    check_references(sc.documents)  # a volume or env naming a ConfigMap/Secret the manifests lack
    warn_ignored(sc)
    c = build(sc)
    check_commands(c)  # what `up` refuses before touching the kernel, with the same messages
    check_host_commands(c)
    check_proxy_mode(c)
    from ..dataplane import proxy  # the proxy mode's kernel features, read without root, as `up` checks them
    from ..dataplane.kernelcheck import backend_refusal   # and the backend's (ipip: the ipip module)
    problem = proxy.backend(c.networking.proxy_mode).kernel_problem(c) or backend_refusal(c.networking.backend)
    if problem:
        raise UsageError(problem)
    from ..lab_spec import hosts_problem   # hosts: VXLAN in the kernel, no other lab's VXLAN claim on the segment
    problem = hosts_problem(c)
    if problem:
        raise UsageError(problem)
    from ..dns.addon import own_counts
    pods, svcs, _, _ = own_counts(c)   # the scenario's (not the add-ons' Services `up` adds)
    click.echo(f"{sc.source}: valid: lab {c.name}, {len(c.nodes)} nodes, {pods} pods, {svcs} services")
