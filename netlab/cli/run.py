"""`netlab run`: kubectl run on a live lab: one Pod from the command line (label run=NAME, one container named
NAME; the arguments after -- are its args, or its command with --command), with --port, --env, --labels,
--restart, and --expose (a ClusterIP Service for it, as kubectl run --expose makes one).

Written as `apply` writes objects (the same checks); an existing name is kubectl's AlreadyExists. kubectl's
-i/-t/--rm (attach a terminal, delete the pod when it ends) are not emulated: refused with the verb that does
it here (`netlab exec`, `netlab debug`)."""
from __future__ import annotations

import click

from . import kubeutil
from .kubeutil import KubeError, kubectl_errors, lab_option, namespace_option

RESTART = {"Always": "Always", "Never": "Never", "OnFailure": "OnFailure"}


def pairs(given: str, what: str) -> dict[str, str]:
    """KEY=VALUE[,KEY=VALUE...] of --labels."""
    out_: dict[str, str] = {}
    for part in given.split(","):
        key, eq, value = part.partition("=")
        if not eq or not key:
            raise KubeError(f"error: invalid {what} {part!r}: write KEY=VALUE[,KEY=VALUE...]")
        out_[key] = value
    return out_


def pod_for(name: str, namespace: str, image: str, args: list[str], command: bool, port: int | None,
            env: list[str], labels: str | None, restart: str) -> dict:
    """The Pod kubectl run makes (see the module's docstring)."""
    c: dict = {"name": name, "image": image}
    if args:
        c["command" if command else "args"] = list(args)
    if port is not None:
        c["ports"] = [{"containerPort": port}]
    if env:
        c["env"] = []
        for e in env:
            key, eq, value = e.partition("=")
            if not eq or not key:
                raise KubeError(f"error: invalid env: {e!r}: write KEY=VALUE")
            c["env"].append({"name": key, "value": value})
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": pairs(labels, "label") if labels else {"run": name}},
            "spec": {"containers": [c], "restartPolicy": restart}}


@click.command(context_settings={"ignore_unknown_options": False})
@click.argument("name")
@click.argument("args", nargs=-1)
@click.option("--image", required=True, help="The container's image; netlab runs what it knows of it.")
@click.option("--port", type=click.IntRange(1, 65535), help="The container's containerPort.")
@click.option("--env", multiple=True, metavar="KEY=VALUE", help="An environment variable (again for more).")
@click.option("-l", "--labels", help="The pod's labels, KEY=VALUE[,...] (default: run=NAME).")
@click.option("--restart", type=click.Choice(list(RESTART)), default="Always", show_default=True,
              help="The pod's restartPolicy.")
@click.option("--command", "as_command", is_flag=True, help="The arguments after -- are the command, not args.")
@click.option("--expose", is_flag=True, help="Also a ClusterIP Service NAME for the pod's --port.")
@click.option("-i", "--stdin", is_flag=True, hidden=True)
@click.option("-t", "--tty", is_flag=True, hidden=True)
@click.option("--rm", is_flag=True, hidden=True)
@kubeutil.dry_run_option
@kubeutil.output_option
@namespace_option
@lab_option
@kubectl_errors
def run(name: str, args: tuple[str, ...], image: str, port: int | None, env: tuple[str, ...], labels: str | None,
        restart: str, as_command: bool, expose: bool, stdin: bool, tty: bool, rm: bool, dry_run: str,
        output: str | None, namespace: str, lab: str | None) -> None:
    """Run a pod, like kubectl run NAME --image=IMAGE [--port P] [--env K=V] [--restart Never] [--expose]
    [-- ARGS...]: label run=NAME, one container NAME. Prints pod/NAME created (and service/NAME created
    first with --expose; `--dry-run=client -o yaml` prints the manifest, no lab needed). kubectl's -i/-t/--rm are
    refused: run the pod, then `netlab exec NAME -- CMD`
    (or `netlab debug NAME`), then `netlab delete pod NAME`.
    """
    if stdin or tty or rm:
        raise KubeError("error: netlab run does not attach a terminal or remove the pod afterwards (-i, -t, --rm); "
                        f"run it, then: netlab exec {name} -- CMD (or netlab debug {name}), netlab delete pod {name}")
    if expose and port is None:
        raise KubeError("error: --port must be set when exposing a service")
    pod = pod_for(name, namespace, image, list(args), as_command, port, list(env), labels, restart)
    docs = [pod]
    if expose:
        from .expose import service_for
        docs.insert(0, service_for(pod, name, port, None, None, None, None, None))
    kubeutil.make(lab, docs, f"run {name}", dry_run, output,
                  ([f"service/{name} created"] if expose else []) + [f"pod/{name} created"])


COMMANDS = (run,)

__all__ = ["COMMANDS", "pod_for", "run"]
