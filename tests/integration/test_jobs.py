"""Job and CronJob on real namespaces (issue 12): a Job's pods reach a Service with a real client (curl
through the ClusterIP) and the Job completes; a Job whose Service has no endpoints fails after its
backoffLimit; finished pods keep their object and logs and are never endpoints; a CronJob with a
one-minute schedule makes a Job that completes; bad input is one line, exit 2, nothing stored."""
from __future__ import annotations

import json

from .conftest import kubectl, loop_log, netlab_cli, until

SCENARIO = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: jobs
nodes: [{name: n1, role: control-plane}, {name: n2}, {name: n3}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: registry.k8s.io/e2e-test-images/agnhost:2.47, args: [netexec, --http-port=8080],
                    ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: nobody}
spec:
  selector: {app: nobody}
  ports: [{port: 80, targetPort: 8080}]
"""

JOB = """apiVersion: batch/v1
kind: Job
metadata: {name: NAME}
spec:
  completions: COMPLETIONS
  parallelism: 2
  backoffLimit: BACKOFF
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: fetch
        image: curlimages/curl
        command: [curl, -fsS, --max-time, "3", "http://IP/hostname"]
"""


def cluster_ip(lab, svc: str) -> str:
    return json.loads(kubectl(lab, "get", "svc", svc, "-o", "json").stdout)["spec"]["clusterIP"]


def job_row(lab, name: str) -> list[str]:
    lines = kubectl(lab, "get", "jobs", name, check=False).stdout.splitlines()
    return lines[1].split() if len(lines) > 1 else []


def pods_of(lab, job: str) -> list[dict]:
    items = json.loads(kubectl(lab, "get", "pods", "-o", "json").stdout)["items"]
    return [p for p in items if (p["metadata"].get("labels") or {}).get("batch.kubernetes.io/job-name") == job]


def apply(lab, tmp_path, name: str, text: str):
    f = tmp_path / f"{name}.yaml"
    f.write_text(text)
    return kubectl(lab, "apply", "-f", str(f), check=False)


def test_a_job_reaches_a_service_and_completes_and_one_without_endpoints_fails(lab, tmp_path):
    lab.up(SCENARIO)
    ip, none_ip = cluster_ip(lab, "web"), cluster_ip(lab, "nobody")
    until("web has a ready endpoint", lambda: "8080" in kubectl(lab, "get", "endpoints", "web").stdout)
    web_pod = lab.pods("web-")[0].name
    # the endpoint is in the store before every node's proxy rules have it: wait until the ClusterIP
    # answers from each node, so that a Job pod's one try (curl --max-time 3) meets programmed rules
    for node in ("n1", "n2", "n3"):
        until(f"web answers through its ClusterIP from {node}", lambda node=node: kubectl(
            lab, "probe", "--from", f"node/{node}", "svc/web:80", check=False).returncode == 0)

    ok = JOB.replace("NAME", "fetch").replace("COMPLETIONS", "2").replace("BACKOFF", "1").replace("IP", ip)
    r = apply(lab, tmp_path, "fetch", ok)
    assert r.returncode == 0 and "job.batch/fetch created" in r.stdout, r.stderr
    w = kubectl(lab, "wait", "--for=condition=complete", "job/fetch", "--timeout=60s", check=False)
    assert w.returncode == 0 and w.stdout.strip() == "job.batch/fetch condition met", (w.stdout, w.stderr)
    row = job_row(lab, "fetch")
    assert row[1] == "Complete", row
    assert row[0] == "fetch" and row[2] == "2/2", row
    job = json.loads(kubectl(lab, "get", "job", "fetch", "-o", "json").stdout)
    failed_logs = {p["metadata"]["name"]: kubectl(lab, "logs", p["metadata"]["name"], check=False).stdout
                   for p in pods_of(lab, "fetch") if p["status"].get("phase") == "Failed"}
    # (a failure names its pods' logs and the lab's events: a pod evicted or deleted leaves no log)
    assert job["status"]["succeeded"] == 2 and job["status"].get("failed", 0) == 0, \
        (failed_logs, kubectl(lab, "get", "pods", "-o", "wide", check=False).stdout,
         kubectl(lab, "get", "events", check=False).stdout[-3000:], loop_log(lab)[-3000:])
    assert {c["type"] for c in job["status"]["conditions"]} >= {"Complete", "SuccessCriteriaMet"}
    assert job["status"]["completionTime"] and job["status"]["startTime"]
    pods = pods_of(lab, "fetch")
    assert len(pods) == 2 and all(p["status"]["phase"] == "Succeeded" for p in pods)
    for p in pods:
        term = p["status"]["containerStatuses"][0]["state"]["terminated"]
        assert term["exitCode"] == 0 and term["reason"] == "Completed"
    # what curl got through the ClusterIP: the web pod's hostname, in the finished pod's log
    table = kubectl(lab, "get", "pods").stdout.splitlines()
    for p in pods:
        name = p["metadata"]["name"]
        row = next(line.split() for line in table if line.startswith(name + " "))
        assert row[1:3] == ["0/1", "Completed"], row
        assert web_pod in kubectl(lab, "logs", name).stdout
    wide = kubectl(lab, "get", "jobs", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert "batch.kubernetes.io/controller-uid=" in wide[1]

    # Indexed: each pod gets its index (annotation, env JOB_COMPLETION_INDEX) and says it in its log
    indexed = """apiVersion: batch/v1
kind: Job
metadata: {name: idx}
spec:
  completions: 2
  parallelism: 2
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox, command: [sh, -c, 'echo "index=$JOB_COMPLETION_INDEX"']}]
"""
    assert apply(lab, tmp_path, "idx", indexed).returncode == 0
    w = kubectl(lab, "wait", "--for=condition=complete", "job/idx", "--timeout=60s", check=False)
    assert w.returncode == 0, w.stderr
    assert json.loads(kubectl(lab, "get", "job", "idx", "-o", "json").stdout)["status"]["completedIndexes"] == "0-1"
    for p in pods_of(lab, "idx"):
        i = p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"]
        assert kubectl(lab, "logs", p["metadata"]["name"]).stdout.strip() == f"index={i}"

    # a Service without endpoints: curl fails, the Job retries once (after the controller's back-off) and fails
    bad = JOB.replace("NAME", "lost").replace("COMPLETIONS", "1").replace("BACKOFF", "1").replace("IP", none_ip)
    assert apply(lab, tmp_path, "lost", bad).returncode == 0
    until("job lost Failed", lambda: (job_row(lab, "lost") or [""])[1:2] == ["Failed"], timeout=90)
    job = json.loads(kubectl(lab, "get", "job", "lost", "-o", "json").stdout)
    failed = {c["type"]: c for c in job["status"]["conditions"]}["Failed"]
    assert failed["reason"] == "BackoffLimitExceeded" and job["status"]["failed"] == 2
    pods = pods_of(lab, "lost")
    assert len(pods) == 2 and all(p["status"]["phase"] == "Failed" for p in pods)
    assert all(p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] != 0 for p in pods)
    # finished pods are never endpoints (web's slice lists only the web pod)
    eps = kubectl(lab, "get", "endpoints", "web").stdout
    assert all(p["status"]["podIP"] not in eps for p in pods_of(lab, "fetch"))


def test_a_negative_backoff_limit_is_refused_in_one_line_and_nothing_is_stored(lab, tmp_path):
    lab.up(SCENARIO)
    r = apply(lab, tmp_path, "neg", JOB.replace("NAME", "neg").replace("COMPLETIONS", "1")
              .replace("BACKOFF", "-1").replace("IP", "10.96.0.1"))
    assert r.returncode == 2
    line = r.stderr.strip()
    assert "\n" not in line and "Job default/neg" in line and "spec.backoffLimit" in line and "use 0 or more" in line, line
    assert "neg" not in kubectl(lab, "get", "jobs").stdout
    # validate refuses it with the same line, without a lab
    f = tmp_path / "neg.yaml"
    r = netlab_cli("validate", str(f))
    assert r.returncode == 2 and "spec.backoffLimit" in r.stderr and "use 0 or more" in r.stderr, r.stderr
    always = JOB.replace("NAME", "always").replace("COMPLETIONS", "1").replace("BACKOFF", "1") \
        .replace("IP", "10.96.0.1").replace("restartPolicy: Never", "restartPolicy: Always")
    r = apply(lab, tmp_path, "always", always)
    assert r.returncode == 2 and 'Unsupported value: "Always"' in r.stderr and "restartPolicy" in r.stderr


CRON = """apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: c, image: busybox, command: [sh, -c, "echo tick"]}]
"""


def test_a_cronjob_every_minute_makes_a_job_that_completes(lab, tmp_path):
    lab.up(SCENARIO.split("---")[0])
    assert apply(lab, tmp_path, "tick", CRON).returncode == 0
    row = kubectl(lab, "get", "cj").stdout.splitlines()
    assert row[0].split() == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"]
    # within a minute (the loop wakes at the scheduled time), then the Job's pod runs and ends
    name = until("a Job of tick", lambda: [j["metadata"]["name"] for j in json.loads(
        kubectl(lab, "get", "jobs", "-o", "json").stdout)["items"]], timeout=70, every=1)[0]
    minutes = int(name.rsplit("-", 1)[1])
    job = json.loads(kubectl(lab, "get", "job", name, "-o", "json").stdout)
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    scheduled = job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    assert scheduled.endswith(":00Z") and minutes * 60 % 60 == 0
    until("the Job completes", lambda: (job_row(lab, name) or [""])[1:2] == ["Complete"], timeout=30)
    cj = json.loads(kubectl(lab, "get", "cronjob", "tick", "-o", "json").stdout)
    assert cj["status"]["lastScheduleTime"] == scheduled
    until("lastSuccessfulTime", lambda: json.loads(kubectl(lab, "get", "cj", "tick", "-o", "json").stdout)
          ["status"].get("lastSuccessfulTime"), timeout=10)


ENDINGS = """apiVersion: batch/v1
kind: Job
metadata: {name: retry}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: OnFailure
      containers: [{name: c, image: busybox, command: [sh, -c, "echo try; exit 3"]}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: slow}
spec:
  activeDeadlineSeconds: 3
  template:
    spec:
      restartPolicy: Never
      # sleep is PID 1 of its container and ignores SIGTERM: without this the pod takes its 30 s grace
      terminationGracePeriodSeconds: 1
      containers: [{name: c, image: busybox, command: [sleep, "300"]}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: brief}
spec:
  ttlSecondsAfterFinished: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox, command: ["true"]}]
"""


def test_on_failure_restarts_in_place_deadline_and_ttl(lab, tmp_path):
    lab.up(SCENARIO.split("---")[0])
    assert apply(lab, tmp_path, "endings", ENDINGS).returncode == 0
    # activeDeadlineSeconds: the Job fails and its running pod is stopped
    w = kubectl(lab, "wait", "--for=condition=failed", "job/slow", "--timeout=30s", check=False)
    assert w.returncode == 0, w.stderr
    job = json.loads(kubectl(lab, "get", "job", "slow", "-o", "json").stdout)
    assert {c["type"]: c for c in job["status"]["conditions"]}["Failed"]["reason"] == "DeadlineExceeded"
    until("slow's pod gone", lambda: not pods_of(lab, "slow"), timeout=90)   # (busy CI: 45 s once ran out)
    # ttlSecondsAfterFinished: 0: the finished Job and its pod are deleted
    until("brief deleted", lambda: "brief" not in kubectl(lab, "get", "jobs").stdout, timeout=45)
    until("brief's pod gone", lambda: not pods_of(lab, "brief"), timeout=45,
          detail=lambda: json.dumps([{k: p[k] for k in ("metadata", "status")} for p in pods_of(lab, "brief")]))
    # OnFailure: the container is restarted in place (same pod, restartCount 1, after the kubelet's
    # back-off); a restart reaching backoffLimit 1 fails the Job
    w = kubectl(lab, "wait", "--for=condition=failed", "job/retry", "--timeout=60s", check=False)
    assert w.returncode == 0, w.stderr
    job = json.loads(kubectl(lab, "get", "job", "retry", "-o", "json").stdout)
    assert {c["type"]: c for c in job["status"]["conditions"]}["Failed"]["reason"] == "BackoffLimitExceeded"
    assert job["status"].get("failed", 0) == 0   # no pod failed: the restarts counted
    events = kubectl(lab, "get", "events").stdout
    assert events.count("Created pod: retry-") == 1, events
