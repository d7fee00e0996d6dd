"""The `netlab` command: kubectl- and containerlab-like verbs over an emulated cluster."""
from __future__ import annotations

import os
import shlex
import sys
from importlib import resources

import click

from . import __version__, proxymodes
from .errors import NetlabError, NotFound, SpecError, SpecProblems, UsageError

RESOURCES = {
    "nodes": "nodes", "node": "nodes", "no": "nodes",
    "pods": "pods", "pod": "pods", "po": "pods",
    "services": "services", "service": "services", "svc": "services",
    "endpoints": "endpoints", "ep": "endpoints",
    "labs": "labs", "lab": "labs",
}


def default_scenario_text() -> tuple[str, str]:
    return resources.files("netlab").joinpath("data/default.yaml").read_text(), "<default>"


def scenario_paths(scenario: str | None, files: tuple[str, ...] = ()) -> list[str]:
    """The positional SCENARIO and the -f options, in that order."""
    return ([scenario] if scenario else []) + list(files)


def load_scenario(paths: str | list[str] | None, lab: str | None):
    """The scenario of the inputs (none: the built-in default lab) and the text `up` stores for it."""
    from .spec.fields import check_name
    from .spec.parse import MAX_LAB_NAME, load_text
    from .spec.sources import load_inputs
    if isinstance(paths, str):
        paths = [paths]
    if paths:
        scenario, text = load_inputs(paths)
    else:
        text, source = default_scenario_text()
        scenario = load_text(text, source)
    if lab:
        check_name(lab, "--lab", "value", max_len=MAX_LAB_NAME)
        scenario.name = lab
    return scenario, text


class Progress:
    """One updating line on a terminal (stderr); silent elsewhere."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.shown = False

    def __call__(self, what: str, done: int, total: int) -> None:
        if self.tty:
            sys.stderr.write(f"\r\033[K  {what} {done}/{total}")
            sys.stderr.flush()
            self.shown = True

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self.shown = False


def warn_ignored(scenario) -> None:
    if scenario.ignored:
        shown = scenario.ignored[:8]
        more = f" (and {len(scenario.ignored) - 8} more)" if len(scenario.ignored) > 8 else ""
        click.echo(f"netlab: ignoring fields netlab does not emulate: {'; '.join(shown)}{more}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="netlab")
def cli() -> None:
    """netlab: a Kubernetes network dataplane (nodes, pods, VXLAN/host-gw, kube-proxy rules) built
    from real Linux network namespaces. Run as root."""


@cli.command()
@click.argument("scenario", required=False)
@click.option("-f", "--filename", "files", multiple=True, metavar="FILE",
              help="A scenario file, a directory (its *.yaml, *.yml, *.json files in name order) or - (stdin); "
                   "may be given several times, as with kubectl apply -f.")
@click.option("--lab", "lab", metavar="NAME", help="Lab name (default: the Cluster document's name).")
@click.option("--proxy-mode", type=click.Choice(proxymodes.names()),
              help="kube-proxy mode, overriding the scenario's networking.kubeProxyMode.")
@click.option("--replace", is_flag=True,
              help="Let SCENARIO remove or recreate nodes and pods of a lab that was built from another file.")
@click.option("-v", "--verbose", is_flag=True, help="List every change made.")
@click.option("--probe", "then_probe", is_flag=True,
              help="Then run the default probe matrix and the scenario's expectations (exit 1 if any fails).")
def up(scenario: str | None, files: tuple[str, ...], lab: str | None, proxy_mode: str | None, replace: bool,
       verbose: bool, then_probe: bool) -> None:
    """Build the lab described by SCENARIO and the -f inputs, or reconcile it.

    Without SCENARIO or -f: a lab that exists (--lab NAME, default demo) is reconciled from the scenario it was
    built from; otherwise the built-in two-node demo is built. Running it again changes nothing; after
    editing the scenario only the difference is applied. A different file that would remove or recreate
    nodes or pods of an existing lab is refused unless --replace is given.
    """
    from .dataplane.host import require_root
    require_root("build a lab")  # before anything else, even reading the scenario
    paths = scenario_paths(scenario, files)
    stored = None
    if not paths:
        from .dataplane import lab as labmod
        name = lab or load_scenario(None, None)[0].name
        if name in labmod.labs():
            stored = labmod.stored_scenario(name)
            if stored is None:
                raise UsageError(f"lab {name} exists but its state does not record the scenario it was built "
                                 f"from; give it: sudo netlab up -f SCENARIO --lab {name} (or remove the lab: "
                                 f"sudo netlab down {name})")
    if stored is not None:
        from .spec.parse import load_text
        text, source, stored_mode = stored
        sc = load_text(text, source)
        sc.name = name
        proxy_mode = proxy_mode or stored_mode
    else:
        sc, text = load_scenario(paths, lab)
    from .dataplane import lab as labmod  # the kernel layer: only for a scenario that is valid so far
    warn_ignored(sc)
    progress = Progress()
    again = "sudo " + shlex.join(["netlab", "up"] + [x for p in paths for x in ("-f", p)] + ["--lab", sc.name])
    try:
        result = labmod.up(sc, text, progress, proxy_mode=proxy_mode, replace=replace or not paths)
    except KeyboardInterrupt:
        progress.clear()
        click.echo(f"interrupted: lab '{sc.name}' may be half built; run '{again}' to finish it "
                   f"or 'sudo netlab down {sc.name}' to remove it", err=True)
        sys.exit(130)
    except (SpecError, UsageError):
        progress.clear()
        raise  # refused before anything was changed
    except NetlabError as e:
        progress.clear()
        e.args = (f"{e}\n  lab '{sc.name}' may be half built: run '{again}' again "
                  f"or remove it with 'sudo netlab down {sc.name}'",)
        raise
    progress.clear()
    c = result.cluster
    if verbose:
        for ch in result.changes:
            click.echo(f"  {ch}")
    n = len(result.changes)
    verb = "created" if result.created else "reconciled"
    click.echo(f"lab {c.name} {verb}: {len(c.nodes)} nodes, {len(c.pods)} pods, {len(c.services)} services; "
               f"{n} change{'s' if n != 1 else ''} in {result.elapsed:.2f}s "
               f"(backend {c.networking.backend}, proxy {c.networking.proxy_mode}, iptables {result.flavour})")
    from .probe.run import arp_limit
    limit = arp_limit()
    if limit.isdigit() and len(c.pods) * 4 > int(limit):
        click.echo(f"note: {len(c.pods)} pods can need more neighbour (ARP) entries than the host allows "
                   f"(net.ipv4.neigh.default.gc_thresh3={limit}, shared by all namespaces); if probes time out, "
                   "raise it on the host (netlab never changes the host)", err=True)
    if then_probe:
        sys.exit(_probe_and_report(c, [], None, 1, "table", False))


@cli.command()
@click.argument("lab_arg", metavar="[LAB]", required=False)
@click.option("--lab", "lab_opt", metavar="NAME", help="Lab to remove (same as the LAB argument).")
@click.option("--all", "all_labs", is_flag=True, help="Remove every netlab lab on this machine.")
def down(lab_arg: str | None, lab_opt: str | None, all_labs: bool) -> None:
    """Remove a lab: its processes, namespaces and state. Works even if the scenario file is gone."""
    from .dataplane import lab as labmod
    labmod.require_root("remove a lab")
    if all_labs:
        names = labmod.labs()
        if not names:
            click.echo("no lab is up")
            return
    else:
        name = lab_arg or lab_opt
        if name is None:
            name = labmod.resolve_lab(None)
        elif name not in labmod.labs():
            click.echo(f"lab {name}: nothing to remove")
            return
        names = [name]
    for name in names:
        r = labmod.down(name)
        click.echo(f"lab {name} removed: {r.namespaces} namespaces, {r.processes} processes in {r.elapsed:.2f}s")


@cli.command()
@click.argument("resource", metavar="RESOURCE")
@click.argument("names", nargs=-1)
@click.option("-n", "--namespace", default="default", show_default=True, help="Kubernetes namespace.")
@click.option("-A", "--all-namespaces", is_flag=True, help="List objects of every namespace.")
@click.option("-o", "--output", type=click.Choice(["wide", "json", "yaml", "name"]), help="Output format.")
@click.option("--lab", metavar="NAME", help="Lab to look at (needed when several are up).")
def get(resource: str, names: tuple[str, ...], namespace: str, all_namespaces: bool, output: str | None,
        lab: str | None) -> None:
    """Show nodes, pods, services, endpoints (or labs), like kubectl get (RESOURCE may be a comma list).

    \b
    STATUS is checked against the kernel, not just the state file:
      pods   READY counts containers running and (for those that declare containerPorts)
             listening on them; STATUS is Running, Completed (exit 0), Error (exit code not 0, or
             not running), CrashLoopBackOff (ended again after a restart), NetworkBroken (its veth
             is missing, down or off cni0), Unknown (no namespace); -o json has containerStatuses
             and conditions. Only ready pods are endpoints; `up` resyncs the rules when that changes
      nodes  NotReady when the node differs from what netlab built (sysctls, links, routes,
             VXLAN neighbours/FDB, iptables/nftables/IPVS state); what `up` would repair is
             printed on stderr (and is the NetworkUnavailable condition in -o json)
    """
    kinds = []
    for part in resource.split(","):
        kind = RESOURCES.get(part.strip().lower())
        if kind is None:
            raise click.BadParameter(f"unknown resource {part!r}; use nodes, pods, services, endpoints or labs",
                                     param_hint="RESOURCE")
        kinds.append(kind)
    for i, kind in enumerate(kinds):
        if i and output not in ("json", "yaml", "name"):
            click.echo()
        _get_one(kind, names, namespace, all_namespaces, output, lab)


def _get_one(kind: str, names: tuple[str, ...], namespace: str, all_namespaces: bool, output: str | None,
             lab: str | None) -> None:
    from . import output as out
    from .dataplane import lab as labmod
    labmod.require_root("read a lab's state")
    fmt = output
    if kind == "labs":
        shown = [n for n in labmod.labs() if not names or n in names]
        _missing(names, shown, "lab")
        if fmt in ("json", "yaml"):
            from .dataplane import state
            objs = out.lab_objects([(n, state.load(n)) for n in shown])
            click.echo(out.dump(objs[0] if len(names) == 1 else out.as_list(objs), fmt), nl=False)
        elif fmt == "name":
            click.echo("".join(f"lab/{n}\n" for n in shown), nl=False)
        elif shown:
            click.echo(out.table(["NAME"], [[n] for n in shown]), nl=False)
        else:
            click.echo("No labs are up.")
        return
    name = labmod.resolve_lab(lab)
    cluster, st = labmod.load_cluster(name)
    created = st.get("created")
    # kubectl lists by namespace, then name
    cluster.nodes = sorted(cluster.nodes, key=lambda n: n.name)
    cluster.services = sorted(cluster.services, key=lambda s: (s.namespace, s.name))
    if kind == "nodes":
        shown = [n for n in cluster.nodes if not names or n.name in names]
        _missing(names, [n.name for n in shown], "node")
        if fmt == "name":
            click.echo("".join(f"node/{n.name}\n" for n in shown), nl=False)
            return
        problems = labmod.node_problems(cluster, st, shown)  # checked against the whole cluster (its peers)
        cluster = _subset_nodes(cluster, names)
        if fmt in ("json", "yaml"):
            objs = out.node_objects(cluster, problems, created, labmod.repair_command(name))
            click.echo(out.dump(objs[0] if len(names) == 1 else out.as_list(objs), fmt), nl=False)
        else:
            click.echo(out.node_table(cluster, problems, created, fmt == "wide"), nl=False)
            for node, found in problems.items():
                if found:
                    click.echo(f"node {node}: NotReady, `{labmod.repair_command(name)}` would repair: "
                               f"{'; '.join(found)}", err=True)
        return
    if kind == "pods":
        statuses = [s for s in labmod.pod_statuses(cluster, st)
                    if (all_namespaces or s.pod.namespace == namespace) and (not names or s.pod.name in names)]
        statuses.sort(key=lambda s: (s.pod.namespace, s.pod.name))
        _missing(names, [s.pod.name for s in statuses], "pod")
        if fmt in ("json", "yaml"):
            objs = out.pod_objects(statuses, cluster)
            click.echo(out.dump(objs[0] if len(names) == 1 else out.as_list(objs), fmt), nl=False)
        elif fmt == "name":
            click.echo("".join(f"pod/{s.pod.name}\n" for s in statuses), nl=False)
        elif not statuses:
            click.echo(f"No resources found in {namespace} namespace." if not all_namespaces else "No resources found",
                       err=True)
        else:
            click.echo(out.pod_table(statuses, all_namespaces, fmt == "wide"), nl=False)
            for s in statuses:
                if s.is_ready != s.pod.ready and any(_selects(svc, s.pod) for svc in cluster.services):
                    click.echo(f"pod {s.pod.name}: {'ready' if s.is_ready else 'not ready'} since the last up; "
                               f"`{labmod.repair_command(name)}` would update its Services' endpoints", err=True)
        return
    cluster.services = [s for s in cluster.services if (all_namespaces or s.namespace == namespace)
                        and (not names or s.name in names)]
    _missing(names, [s.name for s in cluster.services], kind[:-1])
    if kind == "services":
        if fmt in ("json", "yaml"):
            objs = out.service_objects(cluster, created)
            click.echo(out.dump(objs[0] if len(names) == 1 else out.as_list(objs), fmt), nl=False)
        elif fmt == "name":
            click.echo("".join(f"service/{s.name}\n" for s in cluster.services), nl=False)
        elif not cluster.services:
            click.echo(f"No resources found in {namespace} namespace.", err=True)
        else:
            click.echo(out.service_table(cluster, created, all_namespaces, fmt == "wide", namespace), nl=False)
    else:
        if fmt in ("json", "yaml"):
            objs = out.endpoints_objects(cluster, created)
            click.echo(out.dump(objs[0] if len(names) == 1 and objs else out.as_list(objs), fmt), nl=False)
        elif fmt == "name":
            click.echo("".join(f"endpoints/{s.name}\n" for s in cluster.services), nl=False)
        elif not cluster.services:
            click.echo(f"No resources found in {namespace} namespace.", err=True)
        else:
            click.echo(out.endpoints_table(cluster, created, all_namespaces, namespace), nl=False)


def _selects(svc, pod) -> bool:
    sel = svc.spec.selector
    return bool(sel) and svc.namespace == pod.namespace and all(pod.labels.get(k) == v for k, v in sel.items())


def _missing(wanted: tuple[str, ...], found: list[str], kind: str) -> None:
    for n in wanted:
        if n not in found:
            raise NotFound(f'{kind} "{n}" not found')


def _subset_nodes(cluster, names):
    if names:
        cluster.nodes = [n for n in cluster.nodes if n.name in names]
    return cluster


class _ExecCommand(click.Command):
    """kubectl's shape: flags anywhere before `--`, the command after it, taken as it is.

    Without `--` the first word is the pod and the rest is the command (flags must then come first,
    as the command's own flags cannot be told from ours)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" not in args:
            return super().parse_args(ctx, args)
        i = args.index("--")
        before, after = args[:i], args[i + 1:]
        ctx.allow_interspersed_args = True
        ctx.ignore_unknown_options = False
        rest = super().parse_args(ctx, before)
        extra = ctx.params.get("command") or ()
        if extra:
            raise click.UsageError(f"unexpected {' '.join(extra)!r} before --: give one POD, then -- COMMAND", ctx)
        ctx.params["command"] = ("--", *after)
        return rest


@cli.command(cls=_ExecCommand, context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("pod", required=False)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("-n", "--namespace", default="default", show_default=True, help="Kubernetes namespace of POD.")
@click.option("-c", "--container", metavar="NAME", help="Container to run in (default: the pod's first); all of "
              "a pod's containers share its namespaces, so this only checks that the pod has it.")
@click.option("-i", "--stdin", "stdin", is_flag=True, help="Pass stdin to the command (without it: /dev/null).")
@click.option("-t", "--tty", "tty", is_flag=True, help="Accepted as kubectl does; the command gets this terminal, "
              "if there is one (no new one is allocated).")
@click.option("--node", metavar="NODE", help="Run in a node's namespace instead of a pod's.")
@click.option("--external", is_flag=True, help="Run in the external client host on the underlay.")
@click.option("--lab", metavar="NAME", help="Lab (needed when several are up).")
def exec(pod: str | None, command: tuple[str, ...], namespace: str, container: str | None, stdin: bool, tty: bool,
         node: str | None, external: bool, lab: str | None) -> None:
    """Run COMMAND inside a pod (POD or pod/POD, as `get pods -o name` prints it; or --node NODE, or
    --external) and exit with its status.

    \b
    Examples:
      sudo netlab exec client -- curl -s 10.96.14.88/hostname   # web's ClusterIP in the default lab
      sudo netlab exec pod/client -n default --lab demo -- ip -4 addr show eth0
      sudo netlab exec -i client -- sh < script.sh
      sudo netlab exec --node demo-worker -- ip route
      sudo netlab exec --external -- curl -s 172.18.0.2:30080/clientip
    """
    from .dataplane import lab as labmod
    labmod.require_root("enter a lab's namespaces")
    argv = list(command)
    if node or external:
        if pod is not None:
            argv = [pod] + argv
        pod = None
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise click.UsageError("give a command after --, e.g. netlab exec POD -- ip addr")
    if pod is not None and "/" in pod:
        kind, _, pod = pod.partition("/")
        if kind.lower() not in ("pod", "pods", "po") or not pod:
            raise click.UsageError(f"cannot exec into {kind}/{pod}: give a pod, as POD or pod/POD")
    name = labmod.resolve_lab(lab)
    cluster, _ = labmod.load_cluster(name)
    if external:
        full = labmod.netns_exec_argv(cluster.external_netns, argv)
    elif node:
        try:
            n = cluster.node(node)
        except KeyError:
            raise NotFound(f'node "{node}" not found (nodes: {", ".join(x.name for x in cluster.nodes)})') from None
        full = labmod.netns_exec_argv(n.netns, argv)
    else:
        if pod is None:
            raise click.UsageError("name a pod, or use --node NODE or --external")
        p = cluster.pod(namespace, pod)
        if p is None:
            raise NotFound(f'pod "{pod}" not found in namespace {namespace}')
        valid = [c.name for c in p.containers]
        if container is not None and container not in valid:
            raise NotFound(f'container {container} is not valid for pod {pod}: use one of {", ".join(valid)}')
        full = labmod.pod_exec_argv(name, p, argv)
    if not stdin:  # kubectl without -i: the command reads nothing
        fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(fd, 0)
        os.close(fd)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(full[0], full)
    except OSError as e:
        raise NetlabError(f"cannot run {full[0]}: {e.strerror}") from None


@cli.command()
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
    from .dataplane import lab as labmod
    labmod.require_root("send probes inside a lab's namespaces")
    name = labmod.resolve_lab(lab)
    cluster, _ = labmod.load_cluster(name)
    sys.exit(_probe_and_report(cluster, list(targets), source, count, output, verbose))


def _probe_and_report(cluster, targets: list[str], source: str | None, count: int, output: str,
                      verbose: bool) -> int:
    import json

    from .probe import plan, run
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


@cli.command()
@click.argument("pod")
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("-c", "--container", help="Container name (default: all).")
@click.option("--lab", metavar="NAME")
def logs(pod: str, namespace: str, container: str | None, lab: str | None) -> None:
    """Print a pod's container logs (the built-in server logs every request it answers)."""
    from .dataplane import lab as labmod
    from .dataplane import layout
    labmod.require_root("read a lab's logs")
    name = labmod.resolve_lab(lab)
    cluster, _ = labmod.load_cluster(name)
    p = cluster.pod(namespace, pod)
    if p is None:
        raise NotFound(f'pod "{pod}" not found in namespace {namespace}')
    names = [c.name for c in p.containers if container in (None, c.name)]
    if not names:
        raise NotFound(f'container "{container}" not found in pod {pod}')
    for cname in names:
        c = next(x for x in p.containers if x.name == cname)
        path = layout.container_log(name, p.namespace, p.name, cname if c.command or c.args else layout.BUILTIN)
        try:
            with open(path, errors="replace") as f:
                text = f.read()
        except FileNotFoundError:
            text = ""
        if text:
            click.echo(text, nl=False)
        else:
            click.echo(f"no output from container {cname} of pod {p.name}", err=True)


@cli.command()
@click.argument("scenario", required=False)
@click.option("-f", "--filename", "files", multiple=True, metavar="FILE",
              help="A scenario file, a directory (its *.yaml, *.yml, *.json files in name order) or - (stdin); "
                   "may be given several times, as with kubectl apply -f.")
@click.option("--node", "node_name", metavar="NODE", help="Node to render (default: every node).")
@click.option("--lab", metavar="NAME", help="Lab name to render for.")
@click.option("--fabric", is_flag=True, help="Show the links, addresses and routes instead of the rules.")
@click.option("--proxy-mode", type=click.Choice(proxymodes.names()),
              help="Render for this kube-proxy mode instead of the scenario's.")
def render(scenario: str | None, files: tuple[str, ...], node_name: str | None, lab: str | None, fabric: bool,
           proxy_mode: str | None) -> None:
    """Print what `up` would program into a node, without root and without changing anything:
    the iptables-restore payload, plus the nft script (nftables mode) or the IPVS state (ipvs mode);
    or the fabric (--fabric)."""
    from .model.build import build
    from .render import fabric as fab
    from .render.iptables import node_rules, to_restore
    sc, _ = load_scenario(scenario_paths(scenario, files), lab)
    warn_ignored(sc)
    if proxy_mode:
        sc.networking.proxy_mode = proxy_mode
    cluster = build(sc)
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
            click.echo(fab.describe(cluster, n), nl=False)
            continue
        click.echo(to_restore(node_rules(cluster, n)), nl=False)
        more = proxymodes.get(cluster.networking.proxy_mode).render
        if more:
            click.echo(more(cluster, n), nl=False)


@cli.command()
@click.argument("scenario", required=False)
@click.option("-f", "--filename", "files", multiple=True, metavar="FILE",
              help="A scenario file, a directory (its *.yaml, *.yml, *.json files in name order) or - (stdin); "
                   "may be given several times, as with kubectl apply -f.")
def validate(scenario: str | None, files: tuple[str, ...]) -> None:
    """Check a scenario (SCENARIO and the -f inputs) without building it (no root needed)."""
    from .model.build import build
    from .model.preflight import check_commands, check_host_commands
    sc, _ = load_scenario(scenario_paths(scenario, files), None)
    warn_ignored(sc)
    c = build(sc)
    check_commands(c)  # what `up` refuses before touching the kernel, with the same messages
    check_host_commands(c)
    click.echo(f"{sc.source}: valid: lab {c.name}, {len(c.nodes)} nodes, {len(c.pods)} pods, "
               f"{len(c.services)} services")


def main() -> None:
    try:
        rv = cli.main(standalone_mode=False)
        sys.exit(rv if isinstance(rv, int) else 0)
    except click.ClickException as e:
        e.show()
        sys.exit(2 if isinstance(e, click.UsageError) else e.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except NetlabError as e:
        for line in str(e).split("\n") if isinstance(e, SpecProblems) else [str(e)]:  # one line a problem
            click.echo(f"error: {line}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
