"""`netlab up` and `netlab down`: build or reconcile a lab, and remove it."""
from __future__ import annotations

import os
import shlex
import sys

import click

from .. import proxymodes
from ..errors import NetlabError, SpecError, UsageError
from .common import Progress, scenario_inputs, scenario_or_stored, scenario_paths, warn_ignored
from .probe import _probe_and_report


@click.command()
@scenario_inputs
@click.option("--lab", "lab", metavar="NAME", help="Lab name (default: the Cluster document's name).")
@click.option("--proxy-mode", type=click.Choice(proxymodes.names()),
              help="kube-proxy mode, overriding the scenario's networking.kubeProxyMode.")
@click.option("--replace", is_flag=True,
              help="Let SCENARIO remove or recreate nodes and pods of a lab that was built from another file.")
@click.option("--no-control-loop", "frozen", is_flag=True,
              help="Run no control loop for the lab: a still picture that changes only with the next up "
                   "(no rollouts, probes, restarts or node failure handling meanwhile).")
@click.option("-v", "--verbose", is_flag=True, help="List every change made.")
@click.option("--probe", "then_probe", is_flag=True,
              help="Then run the default probe matrix and the scenario's expectations (exit 1 if any fails).")
@click.option("--etcd", "etcd", metavar="URL[,URL...]",
              help="Keep the lab's store in this etcd cluster (http://HOST:2379,...) instead of SQLite; "
                   "the lab keeps it until down.")
@click.option("--etcd-netns", "etcd_netns", metavar="NETNS",
              help="Reach the --etcd endpoints from this network namespace (default: the host's).")
def up(scenario: str | None, files: tuple[str, ...], lab: str | None, proxy_mode: str | None, replace: bool,
       frozen: bool, verbose: bool, then_probe: bool, etcd: str | None, etcd_netns: str | None) -> None:
    """Build the lab described by SCENARIO and the -f inputs, or reconcile it.

    Without SCENARIO or -f: a lab that exists (--lab NAME, default demo) is reconciled from the scenario it was
    built from; otherwise the built-in two-node demo is built. Running it again changes nothing; after
    editing the scenario only the difference is applied. A different file that would remove or recreate
    nodes or pods of an existing lab is refused unless --replace is given.

    The scenario's objects are applied to the lab's store (what the file no longer has is pruned) and
    the lab's control loop is started: it rolls Deployments out, runs probes, restarts containers and
    handles node failure from then on. `up` returns once rollouts are done or stop progressing.

    With --etcd the lab's store lives in that etcd cluster (under /netlab/LAB/) and the control loop
    watches it there; endpoints that do not answer are refused before anything is built.
    """
    from ..dataplane.host import require_root
    require_root("build a lab")  # before anything else, even reading the scenario
    paths = scenario_paths(scenario, files)
    sc, text, stored_mode, _ = scenario_or_stored(paths, lab, "up")
    endpoints = None
    if etcd is not None or etcd_netns is not None:
        endpoints = [e.strip() for e in (etcd or "").split(",") if e.strip()]
        if not endpoints:
            raise UsageError("--etcd-netns needs --etcd URL[,URL...] (the etcd endpoints, http://HOST:2379)")
        from ..store.etcd import check_endpoints
        check_endpoints(endpoints, netns=etcd_netns)   # exit 2 naming those that do not answer, nothing built
    proxy_mode = proxy_mode or stored_mode
    from .. import lab_spec  # the kernel layer: only for a scenario that is valid so far
    warn_ignored(sc)
    progress = Progress()
    again = "sudo " + shlex.join(["netlab", "up"] + [x for p in paths for x in ("-f", p)] + ["--lab", sc.name])
    try:
        result = lab_spec.up(sc, text, progress, proxy_mode=proxy_mode, replace=replace or not paths,
                             control_loop=not frozen, etcd=None if endpoints is None else (endpoints, etcd_netns))
    except KeyboardInterrupt:
        progress.clear()
        click.echo(f"interrupted: lab '{sc.name}' may be half built; run '{again}' to finish it "
                   f"or 'sudo netlab down {sc.name}' to remove it", err=True)
        # at once, as a kill would (down and up handle a lab left at any point): not through the interpreter's
        # shutdown, where a worker thread the interrupt left inside a system call (a namespace's netlink
        # request) can crash the process as it wakes (a SIGSEGV after this line, seen once in CI)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    except (SpecError, UsageError):
        progress.clear()
        raise  # refused before anything was changed
    except NetlabError as e:
        progress.clear()
        e.args = (f"{e}\n  lab '{sc.name}' may be half built: run '{again}' again "
                  f"or remove it with 'sudo netlab down {sc.name}'",)
        raise
    progress.clear()
    from ..dataplane import lab as labmod
    labmod.mark_last_up(sc.name)  # verbs without --lab act on the lab last brought up
    c = result.cluster
    if verbose:
        for ch in result.changes:
            click.echo(f"  {ch}")
    n = len(result.changes)
    verb = "created" if result.created else "reconciled"
    from ..dns.addon import own_counts
    pods, svcs, addon_pods, addon_svcs = own_counts(c)   # the scenario's; the add-ons' apart
    from ..ingress import NAME as INGRESS_NAME
    from ..ingress import NAMESPACE as INGRESS_NS
    from ..ingress.addon import is_addon_pod as is_ingress_pod
    from ..lb.addon import is_speaker_pod
    speakers = sum(1 for p in c.pods if is_speaker_pod(p))
    ing_pods = sum(1 for p in c.pods if is_ingress_pod(p))
    ing_svcs = sum(1 for s in c.services if s.key == f"{INGRESS_NS}/{INGRESS_NAME}")
    pods, svcs = pods - ing_pods, svcs - ing_svcs
    click.echo(f"lab {c.name} {verb}: {len(c.nodes)} nodes, {pods} pods, {svcs} services; "
               f"{n} change{'s' if n != 1 else ''} in {result.elapsed:.2f}s "
               f"(backend {c.networking.backend}, proxy {c.networking.proxy_mode}, iptables {result.flavour}; "
               f"add-ons: {addon_pods - speakers} cluster DNS pods"
               f"{f', {speakers} MetalLB speaker pods' if speakers else ''}, {addon_svcs} services"
               + (f"; ingress-nginx: {ing_pods} pods, {ing_svcs} service" if c.networking.ingress else "") + ")")
    hc = c.networking.hosts
    if hc is not None and hc.mode == "real":   # nothing is built here: each machine's agent builds its host
        from ..live import store_config
        urls = ",".join((store_config(c.name) or {}).get("endpoints") or [])
        click.echo(f"hosts are real machines: on each host H's machine run: sudo netlab agent {c.name} --host H "
                   f"--etcd {urls} --detach (hosts: {', '.join(h.name for h in hc.hosts)})", err=True)
    from ..dataplane.host import arp_limit
    from ..spec.capacity import neighbour_note
    limit = arp_limit()
    note = neighbour_note(len(c.pods), int(limit)) if limit.isdigit() else None
    if note:
        click.echo(note, err=True)
    if then_probe:
        sys.exit(_probe_and_report(c, [], None, 1, "table", False))


@click.command()
@click.argument("lab_arg", metavar="[LAB]", required=False)
@click.option("--lab", "lab_opt", metavar="NAME", help="Lab to remove (same as the LAB argument).")
@click.option("--all", "all_labs", is_flag=True, help="Remove every netlab lab on this machine.")
@click.option("--timeout", type=click.FloatRange(0), default=30.0, show_default=True, metavar="SECONDS",
              help="A lab on real hosts: how long to wait for the other machines' agents to remove their part.")
def down(lab_arg: str | None, lab_opt: str | None, all_labs: bool, timeout: float) -> None:
    """Remove a lab: its processes, namespaces and state. Works even if the scenario file is gone.

    A lab on real hosts (hostNetwork.mode real) goes from every machine: each host's agent removes its
    machine's part when asked through the lab's store; a host whose agent did not answer within --timeout
    is named (exit 1), with the command to run on its machine."""
    from ..dataplane import lab as labmod
    from ..live import teardown
    labmod.require_root("remove a lab")
    if all_labs:
        names = labmod.labs()
        if not names:
            click.echo("no lab is up")
            return
    else:
        name = lab_arg or lab_opt
        if name is None:
            name = labmod.resolve_lab(None, pick_last=False)  # never remove a lab by a guess
        elif name not in labmod.labs():
            click.echo(f"lab {name}: nothing to remove")
            return
        names = [name]
    left = []
    for name in names:
        r, outcome = teardown.down(name, timeout, progress=lambda m: click.echo(m, err=True))
        click.echo(f"lab {name} removed: {r.namespaces} namespaces, {r.processes} processes in {r.elapsed:.2f}s")
        for host, got in sorted((outcome.answered if outcome else {}).items()):
            click.echo(f"  host {host} (machine {got.get('machine', '?')}): {got.get('namespaces', '?')} namespaces, "
                       f"{got.get('processes', '?')} processes removed by its agent")
        for host in outcome.missing if outcome else []:
            left.append(f"lab {name}: host {host}'s agent did not answer within {timeout:g} s: its machine keeps "
                        f"its part; run sudo netlab down {name} there")
    for line in left:
        click.echo(line, err=True)
    if left:
        sys.exit(1)
