"""Job and CronJob documents (netlab/spec/kinds/job.py): what the API server accepts is accepted, what
it refuses is one line naming the document, the field and the fix."""
from __future__ import annotations

import pytest

from netlab.errors import SpecError

from .scenarios import load


def job(**spec):
    tspec = {"containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}
    tspec.update(spec.pop("pod", {"restartPolicy": "Never"}))
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
            "spec": {"template": {"spec": tspec}, **spec}}


def cronjob(schedule="*/5 * * * *", **spec):
    j = job()
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
            "spec": {"schedule": schedule, "jobTemplate": {"spec": j["spec"]}, **spec}}


def test_a_job_and_a_cronjob_are_accepted_and_kept_as_documents():
    sc = load(job(completions=3, parallelism=2, completionMode="Indexed", backoffLimit=0),
              cronjob("@hourly", timeZone="Europe/Paris", concurrencyPolicy="Forbid"))
    assert [d["kind"] for d in sc.documents] == ["Job", "CronJob"]


@pytest.mark.parametrize("doc, line", [
    (job(backoffLimit=-1), "Job default/pi: spec.backoffLimit -1 must be greater than or equal to 0; use 0 or more: "
     "the number of retries before the Job is marked failed (default 6)"),
    (job(pod={}), 'Job default/pi: spec.template.spec.restartPolicy Required value: supported values: "OnFailure", '
     '"Never"; set restartPolicy: Never (or OnFailure) in the pod template'),
    (job(pod={"restartPolicy": "Always"}), 'Job default/pi: spec.template.spec.restartPolicy Unsupported value: '
     '"Always": supported values: "OnFailure", "Never"; set restartPolicy: Never (or OnFailure) in the pod template'),
    (job(completionMode="Indexed"), "Job default/pi: spec.completions is required when completionMode is Indexed; "
     "set completions to the number of indexes"),
    (job(selector={"matchLabels": {"a": "b"}}), "Job default/pi: spec.selector `selector` will be auto-generated; "
     "remove it, or set manualSelector: true to use your own"),
    (cronjob("61 * * * *"), "CronJob default/tick: spec.schedule unparseable schedule '61 * * * *': "),
    (cronjob("CRON_TZ=UTC 0 * * * *"), "CronJob default/tick: spec.schedule cannot use TZ or CRON_TZ in schedule, "
     "use timeZone field instead"),
    (cronjob(timeZone="Mars/Base"), "CronJob default/tick: spec.timeZone unknown time zone 'Mars/Base'; use an IANA "
     "time zone name"),
    (dict(cronjob(), spec=dict(cronjob()["spec"], jobTemplate={"spec": job(backoffLimit=-2)["spec"]})),
     "CronJob default/tick: spec.jobTemplate.spec.backoffLimit -2 must be greater than or equal to 0"),
    (dict(job(), metadata={"name": "pi", "namespace": "batch"}), "Job batch/pi: metadata.namespace 'batch' does not "
     "exist; add a Namespace document named batch"),
])
def test_bad_jobs_are_one_line_naming_document_field_and_fix(doc, line):
    with pytest.raises(SpecError) as e:
        load(doc)
    assert str(e.value).startswith(line), str(e.value)
    assert "\n" not in str(e.value)
