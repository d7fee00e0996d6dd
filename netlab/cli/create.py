"""`netlab create job NAME --from=cronjob/CJ`: a Job made now from a CronJob's jobTemplate, as kubectl
create job --from does (annotation cronjob.kubernetes.io/instantiate: manual, owned by the CronJob).
The lab's Job controller runs it."""
from __future__ import annotations

import click

from ..store.meta import owner_reference
from . import kubeutil
from .kubeutil import KubeError, get_obj, kubectl_errors, lab_option, namespace_option, out


@click.group()
def create() -> None:
    """Create an object: create job NAME --from=cronjob/CJ."""


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
