"""`netlab exec` and `netlab logs`: run a command inside a lab's namespaces, print a pod's container logs."""
from __future__ import annotations

import os
import sys

import click

from ..errors import NetlabError, NotFound


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


def pod_name(lab: str, ref: str, namespace: str, verb: str, say: bool = False) -> str:
    """The pod that POD, pod/POD or TYPE/NAME (deploy/web, svc/web...) names, as kubectl takes it: another
    object's pod is one its selector picks (live/attachable.py); `say`: when it picks one of several, say
    which on stderr, as `kubectl logs` does."""
    if "/" not in ref:
        return ref
    word, _, name = ref.partition("/")
    if not name:
        raise click.UsageError(f"{ref!r}: give POD, pod/POD or TYPE/NAME (e.g. deploy/web)")
    from ..kindnames import KINDS
    kind = KINDS.get(word.lower())
    if kind is None:
        raise click.UsageError(f"cannot {verb} {ref}: {word!r} is no kind kubectl knows; give POD, pod/POD or "
                               "TYPE/NAME (e.g. deploy/web)")
    if kind == "Pod":
        return name
    from ..live import store_for
    from ..live.attachable import NoPod, pods_for
    try:
        pods = pods_for(store_for(lab), kind, namespace, name)
    except NoPod as e:
        raise NotFound(str(e)) from None
    chosen = pods[0]["metadata"]["name"]
    if say and len(pods) > 1:
        click.echo(f"Found {len(pods)} pods, using pod/{chosen}", err=True)
    return chosen


@click.command(cls=_ExecCommand, context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("pod", required=False)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("-n", "--namespace", default="default", show_default=True, help="Kubernetes namespace of POD.")
@click.option("-c", "--container", metavar="NAME", help="Container to run in (default: the pod's first): the "
              "command gets its privileges (user, groups, capabilities) and, if it runs, its mount and PID "
              "namespaces.")
@click.option("-i", "--stdin", "stdin", is_flag=True, help="Pass stdin to the command (without it: /dev/null).")
@click.option("-t", "--tty", "tty", is_flag=True, help="Accepted as kubectl does; the command gets this terminal, "
              "if there is one (no new one is allocated).")
@click.option("--node", metavar="NODE", help="Run in a node's namespace instead of a pod's.")
@click.option("--external", is_flag=True, help="Run in the external client host on the underlay (it has two addresses: the node subnet's last one, and the one below it for a second source, e.g. curl --interface).")
@click.option("--lab", metavar="NAME", help="Lab (needed when several are up).")
def exec(pod: str | None, command: tuple[str, ...], namespace: str, container: str | None, stdin: bool, tty: bool,
         node: str | None, external: bool, lab: str | None) -> None:
    """Run COMMAND inside a pod (POD or pod/POD, as `get pods -o name` prints it; TYPE/NAME, e.g.
    deploy/web or svc/web, for one of that object's pods, as kubectl picks it; or --node NODE, or
    --external) and exit with its status.

    In a pod, COMMAND runs with the container's privileges, as kubectl exec does: its user and groups,
    its capabilities (by default no NET_ADMIN: it cannot change the pod's links; see `netlab debug`), in
    its mount and PID namespaces (the host's filesystem read-only, its own /tmp), with the pod's
    /etc/resolv.conf and /etc/hosts, and with the container's environment when it runs (its env and the
    service variables). --node and --external run as root in that namespace.

    \b
    Examples:
      sudo netlab exec client -- curl -s 10.96.14.88/hostname   # web's ClusterIP in the default lab
      sudo netlab exec pod/client -n default --lab demo -- ip -4 addr show eth0
      sudo netlab exec -i client -- sh < script.sh
      sudo netlab exec --node demo-worker -- ip route
      sudo netlab exec --external -- curl -s 172.18.0.2:30080/clientip
      sudo netlab exec --node demo-worker -- birdc show protocols   # backend bgp: the node's BGP speaker
    """
    from ..dataplane import lab as labmod
    from .. import lab_spec
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
    name = labmod.resolve_lab(lab)
    if not (node or external) and pod is None:
        raise click.UsageError("name a pod, or use --node NODE or --external")
    if pod is not None:
        pod = pod_name(name, pod, namespace, "exec into")
    cluster, _ = lab_spec.load_cluster(name)
    from ..api import exec_argv   # the same command line as netlab.Lab.exec
    full = exec_argv(cluster, argv, pod=pod, namespace=namespace, container=container, node=node, external=external)
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


@click.command(cls=_ExecCommand, context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("pod", required=False)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("-n", "--namespace", default="default", show_default=True, help="Kubernetes namespace of POD.")
@click.option("--profile", type=click.Choice(["general", "netadmin", "sysadmin"]), default="general",
              show_default=True, help="general: the default capabilities and SYS_PTRACE; netadmin: and NET_ADMIN, "
              "NET_RAW; sysadmin: privileged (every capability, the host's filesystem writable).")
@click.option("--lab", metavar="NAME", help="Lab (needed when several are up).")
def debug(pod: str | None, command: tuple[str, ...], namespace: str, profile: str, lab: str | None) -> None:
    """Run COMMAND (default: an interactive sh) in POD's network namespace (or TYPE/NAME's pod, as exec
    takes it) with a debugging profile's privileges, as `kubectl debug POD --profile=...` runs an
    ephemeral container: a fresh sandbox (its own mount and PID namespaces, the host's filesystem
    read-only, its own /tmp, the pod's /etc/resolv.conf and /etc/hosts) with the profile's capabilities.
    stdin is passed on.

    \b
    Examples:
      sudo netlab debug client --profile=netadmin -- ip link set eth0 down   # break the pod's link
      sudo netlab debug client --profile=netadmin -- tc qdisc show dev eth0
      sudo netlab debug client                                              # a shell, default profile
    """
    from ..dataplane import lab as labmod
    from .. import lab_spec
    labmod.require_root("enter a lab's namespaces")
    argv = list(command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if pod is None:
        raise click.UsageError("name a pod: netlab debug POD [--profile=netadmin] -- COMMAND")
    name = labmod.resolve_lab(lab)
    pod = pod_name(name, pod, namespace, "debug")
    cluster, _ = lab_spec.load_cluster(name)
    p = cluster.pod(namespace, pod)
    if p is None:
        raise NotFound(f'pod "{pod}" not found in namespace {namespace}')
    full = labmod.pod_debug_argv(name, p, argv or ["sh"], profile)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(full[0], full)
    except OSError as e:
        raise NetlabError(f"cannot run {full[0]}: {e.strerror}") from None


@click.command()
@click.argument("pod")
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("-c", "--container", help="Container name (default: all).")
@click.option("-f", "--follow", is_flag=True,
              help="Keep printing new lines until Ctrl-C or until the pod goes away (is deleted, or made anew).")
@click.option("--tail", type=int, default=-1, show_default=True,
              help="Lines of the end of the log to print first; -1: all of it.")
@click.option("-p", "--previous", is_flag=True,
              help="The previous instance's log: not kept apart (one log holds every instance of a container).")
@click.option("--lab", metavar="NAME")
def logs(pod: str, namespace: str, container: str | None, follow: bool, tail: int, previous: bool,
         lab: str | None) -> None:
    """Print a pod's container logs (the built-in server logs every request it answers). POD is a pod
    (POD or pod/POD), or TYPE/NAME of a Deployment, ReplicaSet, StatefulSet, DaemonSet, Job or Service:
    one of its pods, chosen as kubectl chooses (ready and running first; which one is said on stderr).

    With -f, go on printing what the containers write, as kubectl logs -f does, until Ctrl-C or until
    the pod goes away."""
    from ..dataplane import lab as labmod
    from .. import lab_spec
    from ..dataplane import layout
    labmod.require_root("read a lab's logs")
    name = labmod.resolve_lab(lab)
    pod = pod_name(name, pod, namespace, "read the logs of", say=True)
    cluster, _ = lab_spec.load_cluster(name)
    p = cluster.pod(namespace, pod)
    if p is None:
        raise NotFound(f'pod "{pod}" not found in namespace {namespace}')
    names = [c.name for c in p.containers if container in (None, c.name)]
    if not names:
        raise NotFound(f'container "{container}" not found in pod {pod}')
    if previous:
        raise NetlabError(f'previous terminated container "{names[0]}" in pod "{p.name}" not found: netlab keeps '
                          "one log per container, with every instance's lines (run without -p)")
    paths = []
    for cname in names:
        c = next(x for x in p.containers if x.name == cname)
        paths.append((cname, layout.container_log(name, p.namespace, p.name,
                                                  cname if c.command or c.args else layout.BUILTIN)))
    offsets = {}
    for cname, path in paths:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            data = b""
        offsets[path] = len(data)
        if tail >= 0:
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[len(lines) - tail:]) if tail else b""
        if data:
            click.echo(data.decode("utf-8", "replace"), nl=False)
        elif not follow and tail != 0:
            click.echo(f"no output from container {cname} of pod {p.name}", err=True)
    if follow:
        try:
            _follow(name, p, paths, offsets)
        except KeyboardInterrupt:
            pass


def _follow(lab: str, pod, paths: list[tuple[str, str]], offsets: dict[str, int], every: float = 0.2) -> None:
    """Print what is appended to the logs until the pod is gone from the lab (or is another pod now)."""
    import time
    from ..dataplane import state
    while True:
        for _, path in paths:
            try:
                with open(path, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    if size < offsets[path]:
                        offsets[path] = 0         # a log made anew
                    f.seek(offsets[path])
                    data = f.read()
            except FileNotFoundError:
                continue
            if data:
                # only whole lines, unless the writer is gone (below)
                cut = data.rfind(b"\n") + 1
                if cut:
                    offsets[path] += cut
                    sys.stdout.write(data[:cut].decode("utf-8", "replace"))
                    sys.stdout.flush()
        rec = ((state.load(lab) or {}).get("pods") or {}).get(pod.key)
        if rec is None or rec.get("uid") != pod.uid:
            for _, path in paths:   # what was written last, even without its newline
                try:
                    with open(path, "rb") as f:
                        f.seek(offsets[path])
                        rest = f.read()
                except FileNotFoundError:
                    rest = b""
                if rest:
                    sys.stdout.write(rest.decode("utf-8", "replace"))
            sys.stdout.flush()
            return
        time.sleep(every)
