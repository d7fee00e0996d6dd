"""Job and CronJob (batch/v1): pods that run to completion, once or on a schedule.

The lab's Job controller (netlab/controllers/job.py) and CronJob controller (controllers/cronjob.py)
run them; here their specs are checked as the API server checks them (batch validation, read for
facts): backoffLimit, completions, parallelism >= 0, activeDeadlineSeconds > 0, a pod template whose
restartPolicy is Never or OnFailure, completions given for the Indexed completion mode, a manual
selector that matches the template's labels, a CronJob schedule in standard cron syntax (five fields
or @hourly, @daily...; TZ/CRON_TZ in the schedule refused as the API server refuses it: use
spec.timeZone) and a timeZone of the IANA database. podFailurePolicy, successPolicy,
backoffLimitPerIndex and podReplacementPolicy are not emulated: left unread, they are reported once
as ignored.
"""
from __future__ import annotations

from ...errors import SpecError
from ..fields import Fields, shown
from . import Context, ObjectDoc, Reported, attempt, object_meta, register
from .deployment import matching_template

JOB_RESTART_POLICIES = ("OnFailure", "Never")


@register("Job", "batch/v1", order=9)
def parse_job(doc: ObjectDoc, ctx: Context) -> None:
    top, meta, name, ns = object_meta(doc, ctx)
    meta.strmap("labels")
    meta.done()
    got = attempt(ctx.problems, parse_job_spec, top.map("spec"), name, 63)
    top.done()
    if got is None:
        raise Reported()
    # its pods come from the control loop: `validate` and `up` check its commands
    ctx.templates.append((f"Job {ns}/{name}", "spec.template.spec", got))


@register("CronJob", "batch/v1", order=10)
def parse_cronjob(doc: ObjectDoc, ctx: Context) -> None:
    top, meta, name, ns = object_meta(doc, ctx)
    meta.strmap("labels")
    meta.done()
    got = attempt(ctx.problems, _parse_cronjob, top.map("spec"), name)
    top.done()
    if got is None:
        raise Reported()
    ctx.templates.append((f"CronJob {ns}/{name}", "spec.jobTemplate.spec.template.spec", got))


def parse_job_spec(spec: Fields, name: str, max_name: int):
    """A Job's spec (also a CronJob's jobTemplate.spec), checked: its pod template."""
    if len(name) > max_name:
        raise SpecError(spec.where, f"metadata.name {shown(name)} is longer than {max_name} characters",
                        "shorten it: the names of its Jobs and pods must fit in 63")
    backoff = spec.int("backoffLimit", 6)
    if backoff < 0:
        raise spec.error("backoffLimit", f"{backoff} must be greater than or equal to 0",
                         "use 0 or more: the number of retries before the Job is marked failed (default 6)")
    spec.int("parallelism", 1, lo=0)
    completions = spec.int("completions", None, lo=0)
    deadline = spec.raw("activeDeadlineSeconds")
    if deadline is not None:
        spec.int("activeDeadlineSeconds", lo=1)
    spec.int("ttlSecondsAfterFinished", None, lo=0)
    spec.bool("suspend")
    mode = spec.choice("completionMode", ("NonIndexed", "Indexed"), "NonIndexed")
    if mode == "Indexed" and completions is None:
        raise spec.missing("completions", "is required when completionMode is Indexed",
                           "set completions to the number of indexes")
    manual = spec.bool("manualSelector")
    sel = spec.map("selector")
    match = sel.strmap("matchLabels")
    if sel.list("matchExpressions"):
        raise sel.error("matchExpressions", "is not supported", "use matchLabels")
    sel.done()
    if match and not manual:
        raise spec.error("selector", "`selector` will be auto-generated",
                         "remove it, or set manualSelector: true to use your own")
    if manual and not match:
        raise spec.missing("selector", "is required when manualSelector is true",
                           "give selector.matchLabels, or remove manualSelector")
    tdata = spec.data.get("template") if isinstance(spec.data.get("template"), dict) else {}
    given = (tdata.get("spec") or {}).get("restartPolicy") if isinstance(tdata.get("spec"), dict) else None
    template = matching_template(spec, match or {})
    spec.done()
    if template is None:
        raise Reported()
    if template.restart_policy not in JOB_RESTART_POLICIES:
        what = "Required value" if given is None else f'Unsupported value: "{template.restart_policy}"'
        raise spec.error("template.spec.restartPolicy", f'{what}: supported values: "OnFailure", "Never"',
                         "set restartPolicy: Never (or OnFailure) in the pod template")
    return template


def _parse_cronjob(spec: Fields, name: str):
    from ...controllers import cron
    if len(name) > 52:   # the API server's limit: its Jobs are named <name>-<minutes since epoch>
        raise SpecError(spec.where, f"metadata.name {shown(name)} is longer than 52 characters",
                        "shorten it: the names of its Jobs (name-<11 digits>) must fit in 63")
    schedule = spec.str("schedule", required=True)
    tz = spec.str("timeZone")
    try:
        cron.check(schedule, tz)
    except ValueError as e:
        field = "timeZone" if str(e).startswith("unknown time zone") else "schedule"
        raise spec.error(field, str(e), cron.FIX[field]) from None
    spec.choice("concurrencyPolicy", ("Allow", "Forbid", "Replace"), "Allow")
    spec.bool("suspend")
    spec.int("startingDeadlineSeconds", None, lo=0)
    spec.int("successfulJobsHistoryLimit", 3, lo=0)
    spec.int("failedJobsHistoryLimit", 1, lo=0)
    jt = spec.map("jobTemplate")
    jmeta = jt.map("metadata")
    jmeta.strmap("labels")
    jmeta.skip("annotations", "name", "creationTimestamp")
    jmeta.done()
    ok = attempt(spec.problems, parse_job_spec, jt.map("spec"), name, 63)
    jt.done()
    spec.done()
    if ok is None:
        raise Reported()
    return ok   # the jobTemplate's pod template
