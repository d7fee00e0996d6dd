"""`netlab create`: objects made from manifests or the command line, as kubectl create makes them.

- `create -f FILE`: the objects of the files that do not exist yet, created as `apply` would write them
  (its checks, in one transaction; live/manifests.py `create_manifests`), without a last-applied
  configuration unless --save-config; one that exists is kubectl's AlreadyExists (exit 1).
- `create job NAME --from=cronjob/CJ`: a Job made now from a CronJob's jobTemplate, as kubectl create job
  --from does (annotation cronjob.kubernetes.io/instantiate: manual, owned by the CronJob). The lab's Job
  controller runs it.
- `create deployment NAME --image=IMAGE... [--replicas N] [--port P] [-- COMMAND ARGS...]`: kubectl's
  Deployment (labels, selector and template labels app=NAME; a container per image, named after the image
  without its registry, path, tag or digest, '_' made '-', a repeated name given a suffix; the port on the
  first container; the command for every container), written as `apply` writes one (its checks and the
  machine's room for its pods); an existing name is kubectl's AlreadyExists.
"""
from __future__ import annotations

import secrets

import click

from ..store.meta import owner_reference
from . import kubeutil
from .kubeutil import KubeError, get_obj, kubectl_errors, lab_option, namespace_option, out


@click.group(invoke_without_command=True)
@click.option("-f", "--filename", "files", multiple=True, metavar="FILE",
              help="A manifest file, a directory (its *.yaml, *.yml, *.json files in name order) or - (stdin); "
                   "may be given several times.")
@click.option("--save-config", is_flag=True,
              help="Record each object as its last-applied configuration (a later apply merges against it).")
@kubeutil.dry_run_option
@lab_option
@click.pass_context
@kubectl_errors
def create(ctx, files: tuple[str, ...], save_config: bool, dry_run: str, lab: str | None) -> None:
    """Create objects: from manifests (create -f FILE, as kubectl create -f), or create deployment NAME
    --image=IMAGE, create job NAME --from=cronjob/CJ.

    \b
    -f: each object of the files that does not exist is created as given, checked as `apply` checks a
    file (one line naming the document, field and fix, exit 2, nothing written); one that exists is
    kubectl's AlreadyExists (the others are created all the same; exit 1)."""
    if ctx.invoked_subcommand is not None:
        if files or dry_run != "none" or save_config:
            raise click.UsageError("-f, --save-config and --dry-run are for `netlab create -f FILE`, not with a "
                                   "subcommand")
        return
    if not files:
        raise KubeError("error: must specify one of -f and -k (or a subcommand: netlab create --help)")
    from ..live import manifests
    from ..spec.sources import read_inputs
    from .common import warn_ignored
    t = kubeutil.open_target(lab)
    with kubeutil.dry_run_if(t, dry_run):
        created, exists = manifests.create_manifests(t, read_inputs(list(files)), save_config, on_read=warn_ignored)
    for a in created:
        out(str(a) + kubeutil.DRY_RUN_SUFFIX[dry_run])
    for e in exists:
        click.echo(f"Error from server (AlreadyExists): {e}", err=True)
    if exists:
        ctx.exit(1)


@create.command("job")
@click.argument("name")
@click.option("--from", "from_", required=True, metavar="cronjob/NAME",
              help="The CronJob whose jobTemplate the Job is made from.")
@namespace_option
@lab_option
@kubectl_errors
def create_job(name: str, from_: str, namespace: str, lab: str | None) -> None:
    """Make a Job from a CronJob's jobTemplate now (kubectl create job NAME --from=cronjob/CJ)."""
    word, _, cj_name = from_.partition("/")
    if kubeutil.KINDS.get(word.lower()) != "CronJob" or not cj_name:
        raise KubeError(f"error: from must be an existing cronjob: {from_!r} is not cronjob/NAME")
    t = kubeutil.open_target(lab)
    cj = get_obj(t.store, "CronJob", namespace, cj_name)
    jt = (cj.get("spec") or {}).get("jobTemplate") or {}
    jmd = jt.get("metadata") or {}
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": name, "namespace": namespace, "labels": dict(jmd.get("labels") or {}),
                        "annotations": dict(jmd.get("annotations") or {},
                                            **{"cronjob.kubernetes.io/instantiate": "manual"}),
                        "ownerReferences": [owner_reference(cj)]},
           "spec": jt.get("spec") or {}}
    from ..store.api import AlreadyExists
    try:
        t.store.create(job)
    except AlreadyExists:
        raise KubeError(f'error: failed to create job: jobs.batch "{name}" already exists') from None
    t.wrote()
    out(f"job.batch/{name} created")


def container_name(image: str, taken: set[str]) -> str:
    """kubectl create deployment's container name for `image`: its last path part without tag or digest, '_' as
    '-', and a random suffix when another container of the pod has that name already."""
    base = image.split("/")[-1].split("@")[0].split(":")[0].replace("_", "-")
    name = base
    while name in taken:
        name = f"{base}-{secrets.token_hex(3)[:5]}"
    return name


def deployment_for(name: str, namespace: str, images: list[str], replicas: int, port: int | None,
                   command: list[str]) -> dict:
    """The Deployment kubectl create deployment makes (see the module's docstring)."""
    labels = {"app": name}
    containers, taken = [], set()
    for image in images:
        c: dict = {"name": container_name(image, taken), "image": image}
        taken.add(c["name"])
        if command:
            c["command"] = list(command)
        containers.append(c)
    if port is not None:
        containers[0]["ports"] = [{"containerPort": port}]
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": {"labels": dict(labels)}, "spec": {"containers": containers}}}}


@create.command("deployment", context_settings={"ignore_unknown_options": False})
@click.argument("name")
@click.argument("command", nargs=-1)
@click.option("--image", "images", multiple=True, required=True, metavar="IMAGE",
              help="A container's image (again for more containers); netlab runs what it knows of the image.")
@click.option("--replicas", type=click.IntRange(0), default=1, show_default=True, help="How many pods.")
@click.option("--port", type=click.IntRange(1, 65535), help="The first container's containerPort.")
@kubeutil.dry_run_option
@kubeutil.output_option
@namespace_option
@lab_option
@kubectl_errors
def create_deployment(name: str, command: tuple[str, ...], images: tuple[str, ...], replicas: int, port: int | None,
                      dry_run: str, output: str | None, namespace: str, lab: str | None) -> None:
    """Make a Deployment, like kubectl create deployment NAME --image=IMAGE [--replicas N] [--port P]
    [-- COMMAND ARGS...]: labels app=NAME, a container per image named after it. Prints
    deployment.apps/NAME created; an existing Deployment of that name: kubectl's AlreadyExists, exit 1.
    `--dry-run=client -o yaml` prints the manifest and needs no lab (`> web.yaml`, edit, `netlab apply -f`).
    """
    kubeutil.make(lab, [deployment_for(name, namespace, list(images), replicas, port, list(command))],
                  f"create deployment {name}", dry_run, output, [f"deployment.apps/{name} created"])
