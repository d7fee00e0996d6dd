"""kubectl's table output for the objects of a live lab, as pure functions of objects and the time:
``get deploy`` (READY, UP-TO-DATE, AVAILABLE), ``get rs`` (DESIRED, CURRENT, READY), ``get pods``
(READY, STATUS, RESTARTS), ``get nodes`` (STATUS, ROLES), ``get events`` (LAST SEEN, TYPE, REASON,
OBJECT, MESSAGE, in time order), with kubectl's ages (HumanDuration), ``--show-labels`` and
``-o wide`` columns, laid out as kubectl's tabwriter does (cells padded by 3, at least 6 wide).
Facts from kubernetes' pkg/printers/internalversion/printers.go and apimachinery's duration.go.
"""

from __future__ import annotations

from netlab.controllers import deployutil as du
from netlab.lb import printing as lbp
from netlab.store.meta import get_condition, parse_time


def human_duration(seconds: float) -> str:
    """apimachinery's HumanDuration (about 2-3 significant figures)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def age(obj: dict, now: float, field: str | None = None) -> str:
    t = parse_time(obj.get(field) if field else obj["metadata"].get("creationTimestamp"))
    return "<unknown>" if t is None else human_duration(now - t)


def _labels(obj) -> str:
    labels = obj["metadata"].get("labels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


def deployment_row(d: dict, now: float) -> list[str]:
    st = d.get("status") or {}
    return [d["metadata"]["name"], f"{st.get('readyReplicas', 0)}/{du.replicas(d)}",
            str(st.get("updatedReplicas", 0)), str(st.get("availableReplicas", 0)), age(d, now)]


def replicaset_row(rs: dict, now: float) -> list[str]:
    st = rs.get("status") or {}
    return [rs["metadata"]["name"], str(du.replicas(rs)), str(st.get("replicas", 0)),
            str(st.get("readyReplicas", 0)), age(rs, now)]


def statefulset_row(s: dict, now: float) -> list[str]:
    """kubectl's StatefulSet columns: READY is readyReplicas/spec.replicas."""
    st = s.get("status") or {}
    return [s["metadata"]["name"], f"{st.get('readyReplicas', 0)}/{du.replicas(s)}", age(s, now)]
def daemonset_row(ds: dict, now: float) -> list[str]:
    """kubectl's DaemonSet columns (-o wide adds CONTAINERS, IMAGES, SELECTOR: cli/getlive.py)."""
    st, spec = ds.get("status") or {}, ds.get("spec") or {}
    pspec = (spec.get("template") or {}).get("spec") or {}
    sel = ",".join(f"{k}={v}" for k, v in sorted((pspec.get("nodeSelector") or {}).items())) or "<none>"
    return [ds["metadata"]["name"]] + [str(st.get(f, 0)) for f in (
        "desiredNumberScheduled", "currentNumberScheduled", "numberReady", "updatedNumberScheduled",
        "numberAvailable")] + [sel, age(ds, now)]


def pod_status(pod: dict) -> tuple[str, int, int, float | None]:
    """(STATUS, ready containers, restarts, time of the last restart) as kubectl's printPod."""
    st = pod.get("status") or {}
    reason = st.get("reason") or st.get("phase") or "Pending"
    ready, restarts, last, running = 0, 0, None, False
    for cs in reversed(st.get("containerStatuses") or []):
        restarts += int(cs.get("restartCount", 0))
        finished = parse_time((((cs.get("lastState") or {}).get("terminated")) or {}).get("finishedAt"))
        if finished is not None and (last is None or finished > last):
            last = finished
        state = cs.get("state") or {}
        waiting, terminated = state.get("waiting"), state.get("terminated")
        if waiting and waiting.get("reason"):
            reason = waiting["reason"]
        elif terminated and terminated.get("reason"):
            reason = terminated["reason"]
        elif terminated:
            reason = (f"Signal:{terminated['signal']}" if terminated.get("signal")
                      else f"ExitCode:{terminated.get('exitCode', 0)}")
        elif cs.get("ready") and state.get("running") is not None:
            running = True
            ready += 1
    if reason == "Completed" and running:
        cond = get_condition(pod, "Ready")
        reason = "Running" if cond and cond.get("status") == "True" else "NotReady"
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Unknown" if st.get("reason") == "NodeLost" else "Terminating"
    return reason, ready, restarts, last


def pod_row(pod: dict, now: float, wide: bool = False) -> list[str]:
    status, ready, restarts, last = pod_status(pod)
    total = len((pod.get("spec") or {}).get("containers") or [])
    rs = str(restarts) if not restarts or last is None else f"{restarts} ({human_duration(now - last)} ago)"
    row = [pod["metadata"]["name"], f"{ready}/{total}", status, rs, age(pod, now)]
    if wide:
        row += [(pod.get("status") or {}).get("podIP") or "<none>", (pod.get("spec") or {}).get("nodeName") or "<none>"]
    return row


def node_row(node: dict, now: float) -> list[str]:
    ready = get_condition(node, "Ready")
    status = "Unknown" if ready is None else "Ready" if ready.get("status") == "True" else "NotReady"  # as kubectl
    if (node.get("spec") or {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    roles = sorted(k.split("/", 1)[1] for k in (node["metadata"].get("labels") or {})
                   if k.startswith("node-role.kubernetes.io/") and k.split("/", 1)[1])
    version = ((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")
    return [node["metadata"]["name"], status, ",".join(roles) or "<none>", age(node, now), version]


def event_row(e: dict, now: float) -> list[str]:
    last = age(e, now, "lastTimestamp")
    count = int(e.get("count") or 1)
    if count > 1:
        last = f"{last} (x{count} over {age(e, now, 'firstTimestamp')})"
    io = e.get("involvedObject") or {}
    return [last, e.get("type", ""), e.get("reason", ""), f"{io.get('kind', '').lower()}/{io.get('name', '')}",
            e.get("message", "")]


def endpointslice_row(s: dict, now: float) -> list[str]:
    """kubectl's EndpointSlice columns: the port numbers, the first three addresses (every endpoint,
    terminating ones too: -o yaml shows their conditions)."""
    ports = ",".join(str(p.get("port")) for p in s.get("ports") or []) if s.get("ports") else "<unset>"
    addrs = [a for e in s.get("endpoints") or [] for a in e.get("addresses") or []]
    eps = ",".join(addrs[:3]) + (f" + {len(addrs) - 3} more..." if len(addrs) > 3 else "") if addrs else "<none>"
    return [s["metadata"]["name"], s.get("addressType", ""), ports, eps, age(s, now)]


def configmap_row(c: dict, now: float) -> list[str]:
    """kubectl's ConfigMap columns: DATA counts the keys of data and binaryData."""
    return [c["metadata"]["name"], str(len(c.get("data") or {}) + len(c.get("binaryData") or {})), age(c, now)]


def secret_row(s: dict, now: float) -> list[str]:
    """kubectl's Secret columns: the type and how many keys (never a value)."""
    return [s["metadata"]["name"], s.get("type") or "Opaque", str(len(s.get("data") or {})), age(s, now)]


def serviceaccount_row(sa: dict, now: float) -> list[str]:
    return [sa["metadata"]["name"], str(len(sa.get("secrets") or [])), age(sa, now)]


def lease_row(lease: dict, now: float) -> list[str]:
    """kubectl get leases: NAME, HOLDER (holderIdentity), AGE."""
    return [lease["metadata"]["name"], (lease.get("spec") or {}).get("holderIdentity") or "", age(lease, now)]


def job_status(job: dict) -> str:
    """kubectl's STATUS of a Job, from its conditions."""
    conds = {c["type"] for c in (job.get("status") or {}).get("conditions") or [] if c.get("status") == "True"}
    if "Complete" in conds:
        return "Complete"
    if "Failed" in conds:
        return "Failed"
    if job["metadata"].get("deletionTimestamp"):
        return "Terminating"
    for ctype in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if ctype in conds:
            return ctype
    return "Running"


def job_row(job: dict, now: float) -> list[str]:
    """kubectl's Job columns: STATUS, COMPLETIONS (succeeded/completions; a work queue: /1 of P),
    DURATION (from startTime to completionTime, or now)."""
    spec, st = job.get("spec") or {}, job.get("status") or {}
    done = st.get("succeeded", 0)
    if spec.get("completions") is not None:
        comp = f"{done}/{spec['completions']}"
    elif int(spec.get("parallelism", 1)) > 1:
        comp = f"{done}/1 of {spec['parallelism']}"
    else:
        comp = f"{done}/1"
    start, end = parse_time(st.get("startTime")), parse_time(st.get("completionTime"))
    duration = "" if start is None else human_duration((end if end is not None else now) - start)
    return [job["metadata"]["name"], job_status(job), comp, duration, age(job, now)]


def cronjob_row(cj: dict, now: float) -> list[str]:
    spec, st = cj.get("spec") or {}, cj.get("status") or {}
    last = parse_time(st.get("lastScheduleTime"))
    return [cj["metadata"]["name"], spec.get("schedule", ""), spec.get("timeZone") or "<none>",
            "True" if spec.get("suspend") else "False", str(len(st.get("active") or [])),
            "<none>" if last is None else human_duration(now - last), age(cj, now)]


def ingress_row(ing: dict, now: float) -> list[str]:
    """kubectl's ingress columns: CLASS, HOSTS (at most 4, then "+ N more..."), ADDRESS, PORTS (443 with TLS)."""
    spec = ing.get("spec") or {}
    hosts = [r.get("host") for r in spec.get("rules") or [] if r.get("host")]
    text = ",".join(hosts[:4]) + (f" + {len(hosts) - 4} more..." if len(hosts) > 4 else "") if hosts else "*"
    lb = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    addr = ",".join(e.get("ip") or e.get("hostname") or "" for e in lb)
    return [ing["metadata"]["name"], spec.get("ingressClassName") or "<none>", text, addr,
            "80, 443" if spec.get("tls") else "80", age(ing, now)]


def ingressclass_row(c: dict, now: float) -> list[str]:
    spec = c.get("spec") or {}
    p = spec.get("parameters")
    params = f"{p.get('apiGroup') or ''}/{p.get('kind', '')}/{p.get('name', '')}".lstrip("/") if p else "<none>"
    return [c["metadata"]["name"], spec.get("controller", ""), params, age(c, now)]


COLUMNS = {
    "Ingress": (["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"], ingress_row),
    "IngressClass": (["NAME", "CONTROLLER", "PARAMETERS", "AGE"], ingressclass_row),
    "Job": (["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"], job_row),
    "CronJob": (["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"], cronjob_row),
    "Deployment": (["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"], deployment_row),
    "ReplicaSet": (["NAME", "DESIRED", "CURRENT", "READY", "AGE"], replicaset_row),
    "StatefulSet": (["NAME", "READY", "AGE"], statefulset_row),
    "DaemonSet": (["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"],
                  daemonset_row),
    "Pod": (["NAME", "READY", "STATUS", "RESTARTS", "AGE"], pod_row),
    "Node": (["NAME", "STATUS", "ROLES", "AGE", "VERSION"], node_row),
    "Event": (["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], event_row),
    "EndpointSlice": (["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"], endpointslice_row),
    "ConfigMap": (["NAME", "DATA", "AGE"], configmap_row),
    "Secret": (["NAME", "TYPE", "DATA", "AGE"], secret_row),
    "ServiceAccount": (["NAME", "SECRETS", "AGE"], serviceaccount_row),
    "Lease": (["NAME", "HOLDER", "AGE"], lease_row),
    "IPAddressPool": (lbp.POOL_HEADER, lbp.pool_row),     # MetalLB's CRDs' printer columns
    "L2Advertisement": (lbp.L2_HEADER, lbp.l2_row),
    "BGPPeer": (lbp.PEER_HEADER, lbp.peer_row),
    "BGPAdvertisement": (lbp.BGP_AD_HEADER, lbp.bgp_ad_row),
}


def table(kind: str, objects: list[dict], now: float, show_labels: bool = False, wide: bool = False) -> list[list[str]]:
    """Header and rows of `kubectl get KIND` (events in time order, others by name)."""
    header, row = COLUMNS[kind]
    header = list(header)
    if kind == "Event":
        objects = sorted(objects, key=lambda e: (parse_time(e.get("lastTimestamp")) or 0,
                                                 int(e["metadata"].get("resourceVersion") or 0)))
    else:
        objects = sorted(objects, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
    if wide and kind == "Pod":
        header += ["IP", "NODE"]
        rows = [pod_row(o, now, wide=True) for o in objects]
    else:
        rows = [row(o, now) for o in objects]
    if show_labels and kind != "Event":
        header.append("LABELS")
        rows = [r + [_labels(o)] for r, o in zip(rows, objects)]
    return [header] + rows


def render(rows: list[list[str]], padding: int = 3, min_width: int = 6) -> str:
    """Columns as kubectl's tabwriter lays them out: `get` pads cells by 3 to at least 6;
    `describe` pads by 2 (padding=2, min_width=0). The last column is free."""
    if not rows:
        return ""
    n = max(len(r) for r in rows)
    widths = [max(min_width, max(len(r[i]) for r in rows if i < len(r)) + padding) for i in range(n - 1)]
    lines = []
    for r in rows:
        cells = [c.ljust(widths[i]) if i < n - 1 else c for i, c in enumerate(r)]
        lines.append("".join(cells).rstrip())
    return "\n".join(lines)


def _describe_time(t: str | None) -> str:
    import datetime as dt
    v = parse_time(t)
    if v is None:
        return "<unknown>"
    return dt.datetime.fromtimestamp(v, dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000")


def _map(m: dict | None, sep: str = "=") -> list[str]:
    return [f"{k}{sep}{v}" for k, v in sorted((m or {}).items())] or ["<none>"]


def _field(lines: list[str], name: str, values, width: int = 24) -> None:
    values = values if isinstance(values, list) else [str(values)]
    lines.append(f"{name + ':':<{width}}{values[0]}")
    lines += [" " * width + v for v in values[1:]]


def describe_events(events: list[dict], now: float) -> list[str]:
    """The Events section of `kubectl describe` (oldest first)."""
    if not events:
        return ["Events:  <none>"]
    rows = [["Type", "Reason", "Age", "From", "Message"], ["----", "------", "----", "----", "-------"]]
    for e in sorted(events, key=lambda e: (parse_time(e.get("lastTimestamp")) or 0,
                                           int(e["metadata"].get("resourceVersion") or 0))):
        ago = age(e, now, "lastTimestamp")
        if int(e.get("count") or 1) > 1:
            ago = f"{ago} (x{e['count']} over {age(e, now, 'firstTimestamp')})"
        rows.append([e.get("type", ""), e.get("reason", ""), ago, (e.get("source") or {}).get("component", ""),
                     e.get("message", "")])
    return ["Events:"] + ["  " + line for line in render(rows, 2, 0).splitlines()]


def describe_deployment(d: dict, rss: list[dict], events: list[dict], now: float) -> str:
    """`kubectl describe deployment NAME`."""
    md, spec, st = d["metadata"], d.get("spec") or {}, d.get("status") or {}
    lines: list[str] = []
    _field(lines, "Name", md["name"])
    _field(lines, "Namespace", md.get("namespace", "default"))
    _field(lines, "CreationTimestamp", _describe_time(md.get("creationTimestamp")))
    _field(lines, "Labels", _map(md.get("labels")))
    _field(lines, "Annotations", _map(md.get("annotations"), ": "))
    sel = (spec.get("selector") or {}).get("matchLabels") or {}
    _field(lines, "Selector", ",".join(f"{k}={v}" for k, v in sorted(sel.items())) or "<none>")
    _field(lines, "Replicas", f"{du.replicas(d)} desired | {st.get('updatedReplicas', 0)} updated | "
                              f"{st.get('replicas', 0)} total | {st.get('availableReplicas', 0)} available | "
                              f"{st.get('unavailableReplicas', 0)} unavailable")
    _field(lines, "StrategyType", du.strategy_type(d))
    _field(lines, "MinReadySeconds", du.min_ready_seconds(d))
    if du.is_rolling(d):
        surge, unavail = du.rolling_params(d)
        _field(lines, "RollingUpdateStrategy", f"{unavail} max unavailable, {surge} max surge")
    tmpl = spec.get("template") or {}
    lines.append("Pod Template:")
    lines.append("  Labels:  " + ",".join(_map((tmpl.get("metadata") or {}).get("labels"))))
    lines.append("  Containers:")
    for c in (tmpl.get("spec") or {}).get("containers") or []:
        lines.append(f"   {c.get('name', '')}:")
        lines.append(f"    Image:        {c.get('image', '')}")
        ports = c.get("ports") or []
        lines.append("    Port:         " + (", ".join(f"{p['containerPort']}/{p.get('protocol', 'TCP')}"
                                                       for p in ports) or "<none>"))
        env = c.get("env") or []
        lines.append("    Environment:  " + ("<none>" if not env else f"{env[0]['name']}:  {env_value(env[0])}"))
        lines += [f"      {e['name']}:  {env_value(e)}" for e in env[1:]]
    conds = st.get("conditions") or []
    if conds:
        lines.append("Conditions:")
        rows = [["Type", "Status", "Reason"], ["----", "------", "------"]]
        rows += [[c["type"] + " ", c["status"], c.get("reason", "")] for c in conds]
        lines += ["  " + line for line in render(rows, 2, 0).splitlines()]
    uid = md.get("uid")
    mine = [rs for rs in rss if any(r.get("uid") == uid for r in rs["metadata"].get("ownerReferences") or [])]
    new = next((rs for rs in mine if du.equal_ignore_hash(rs["spec"].get("template"), tmpl)), None)
    olds = [rs for rs in mine if rs is not new and (du.replicas(rs) or du.rs_status(rs, "replicas"))]

    def created(rs):
        return f"{rs['metadata']['name']} ({du.rs_status(rs, 'replicas')}/{du.replicas(rs)} replicas created)"

    lines.append("OldReplicaSets:  " + (", ".join(created(rs) for rs in olds) or "<none>"))
    lines.append("NewReplicaSet:   " + (created(new) if new else "<none>"))
    lines += describe_events(events, now)
    return "\n".join(lines)


def _probe_text(p: dict) -> str:
    """A probe as `kubectl describe pod` prints it: `http-get http://:8080/ delay=0s timeout=1s ...`."""
    if "httpGet" in p:
        h = p["httpGet"]
        what = f"http-get {h.get('scheme', 'HTTP').lower()}://{h.get('host', '')}:{h.get('port', '')}{h.get('path', '/')}"
    elif "tcpSocket" in p:
        what = f"tcp-socket :{p['tcpSocket'].get('port', '')}"
    elif "exec" in p:
        what = "exec [" + " ".join(p["exec"].get("command") or []) + "]"
    elif "grpc" in p:
        what = f"grpc <pod>:{p['grpc'].get('port', '')}"
    else:
        what = "<unknown>"
    return (f"{what} delay={p.get('initialDelaySeconds', 0)}s timeout={p.get('timeoutSeconds', 1)}s "
            f"period={p.get('periodSeconds', 10)}s #success={p.get('successThreshold', 1)} "
            f"#failure={p.get('failureThreshold', 3)}")


def _container_state(lines: list[str], title: str, state: dict) -> None:
    for name, body in (state or {}).items():
        lines.append(f"    {title + ':':<18}{name.capitalize()}")
        for k in ("reason", "exitCode", "startedAt", "finishedAt"):
            if body and body.get(k) is not None:
                label = {"exitCode": "Exit Code", "startedAt": "Started", "finishedAt": "Finished"}.get(k, k.capitalize())
                v = _describe_time(body[k]) if k in ("startedAt", "finishedAt") else body[k]
                lines.append(f"      {label + ':':<16}{v}")
        return
    lines.append(f"    {title + ':':<18}Waiting")


def describe_pod(pod: dict, events: list[dict], now: float) -> str:
    """`kubectl describe pod NAME`: identity, node, status and IPs, the controller, each container
    (image, ports, state, readiness, restarts, probes, env), conditions, tolerations, Events."""
    md, spec, st = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    lines: list[str] = []
    w = 17
    _field(lines, "Name", md["name"], w)
    _field(lines, "Namespace", md.get("namespace", "default"), w)
    _field(lines, "Priority", spec.get("priority", 0), w)
    _field(lines, "Service Account", spec.get("serviceAccountName", "default"), w)
    node = spec.get("nodeName")
    _field(lines, "Node", f"{node}/{st.get('hostIP', '')}" if node else "<none>", w)
    _field(lines, "Start Time", _describe_time(st.get("startTime")) if st.get("startTime") else "<unset>", w)
    _field(lines, "Labels", _map(md.get("labels")), w)
    _field(lines, "Annotations", _map(md.get("annotations"), ": "), w)
    status = pod_status(pod)[0]
    if md.get("deletionTimestamp"):
        _field(lines, "Status", f"Terminating (lasts {human_duration(max(0, (parse_time(md['deletionTimestamp']) or now) - now))})", w)
        _field(lines, "Termination Grace Period", f"{md.get('deletionGracePeriodSeconds', 0)}s", 0)
    else:
        _field(lines, "Status", st.get("phase") or status, w)
    _field(lines, "IP", st.get("podIP") or "", w)
    lines.append("IPs:" + ("" if st.get("podIPs") else "              <none>"))
    lines += [f"  IP:  {i['ip']}" for i in st.get("podIPs") or []]
    ref = next((r for r in md.get("ownerReferences") or [] if r.get("controller")), None)
    if ref:
        _field(lines, "Controlled By", f"{ref['kind']}/{ref['name']}", w)
    lines.append("Containers:")
    cstat = {c.get("name"): c for c in st.get("containerStatuses") or []}
    for c in spec.get("containers") or []:
        cs = cstat.get(c.get("name")) or {}
        lines.append(f"  {c.get('name', '')}:")
        lines.append(f"    {'Image:':<18}{c.get('image', '')}")
        ports = c.get("ports") or []
        lines.append(f"    {'Port:':<18}" + (", ".join(f"{p['containerPort']}/{p.get('protocol', 'TCP')}"
                                                     for p in ports) or "<none>"))
        if c.get("args"):
            lines.append("    Args:")
            lines += [f"      {a}" for a in c["args"]]
        _container_state(lines, "State", cs.get("state") or {})
        if cs.get("lastState"):
            _container_state(lines, "Last State", cs["lastState"])
        lines.append(f"    {'Ready:':<18}{'True' if cs.get('ready') else 'False'}")
        lines.append(f"    {'Restart Count:':<18}{cs.get('restartCount', 0)}")
        for probe, title in (("livenessProbe", "Liveness"), ("readinessProbe", "Readiness"), ("startupProbe", "Startup")):
            if c.get(probe):
                lines.append(f"    {title + ':':<18}{_probe_text(c[probe])}")
        env = c.get("env") or []
        lines.append(f"    {'Environment:':<18}" + ("<none>" if not env else ""))
        lines += [f"      {e['name']}:  {env_value(e)}" for e in env]
    conds = st.get("conditions") or []
    if conds:
        lines.append("Conditions:")
        rows = [["Type", "Status"], ["----", "------"]] + [[c["type"] + " ", c["status"]] for c in conds]
        lines += ["  " + line for line in render(rows, 2, 0).splitlines()]
    _field(lines, "QoS Class", st.get("qosClass", "BestEffort"), 25)
    _field(lines, "Node-Selectors", _map(spec.get("nodeSelector"), ":") if spec.get("nodeSelector") else "<none>", 25)
    tols = [f"{t.get('key', '')}{':' + t['effect'] if t.get('effect') else ''} op={t.get('operator', 'Equal')}"
            + (f" for {t['tolerationSeconds']}s" if t.get("tolerationSeconds") is not None else "")
            for t in spec.get("tolerations") or []]
    _field(lines, "Tolerations", tols or ["<none>"], 25)
    lines += describe_events(events, now)
    return "\n".join(lines)


def describe_node(node: dict, pods: list[dict], events: list[dict], now: float) -> str:
    """`kubectl describe node NAME`: roles, labels, taints, Unschedulable, Lease, conditions,
    addresses, PodCIDR, the pods on it (not terminated), Events."""
    md, spec, st = node["metadata"], node.get("spec") or {}, node.get("status") or {}
    lines: list[str] = []
    w = 20
    _field(lines, "Name", md["name"], w)
    _field(lines, "Roles", node_row(node, now)[2], w)
    _field(lines, "Labels", _map(md.get("labels")), w)
    _field(lines, "Annotations", _map(md.get("annotations"), ": "), w)
    _field(lines, "CreationTimestamp", _describe_time(md.get("creationTimestamp")), w)
    taints = [f"{t['key']}{'=' + t['value'] if t.get('value') else ''}:{t.get('effect', '')}"
              for t in spec.get("taints") or []]
    _field(lines, "Taints", taints or ["<none>"], w)
    _field(lines, "Unschedulable", "true" if spec.get("unschedulable") else "false", w)
    conds = st.get("conditions") or []
    lines.append("Conditions:")
    rows = [["Type", "Status", "LastHeartbeatTime", "LastTransitionTime", "Reason", "Message"],
            ["----", "------", "-----------------", "------------------", "------", "-------"]]
    rows += [[c.get("type", ""), c.get("status", ""), _describe_time(c.get("lastHeartbeatTime")),
              _describe_time(c.get("lastTransitionTime")), c.get("reason", ""), c.get("message", "")] for c in conds]
    lines += ["  " + line for line in render(rows, 2, 0).splitlines()]
    lines.append("Addresses:")
    lines += [f"  {a['type']}:  {a['address']}" for a in st.get("addresses") or []]
    _field(lines, "PodCIDR", spec.get("podCIDR", "<none>"), w)
    _field(lines, "PodCIDRs", ",".join(spec.get("podCIDRs") or []) or "<none>", w)
    live = [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    lines.append(f"Non-terminated Pods:          ({len(live)} in total)")
    rows = [["Namespace", "Name", "Age"], ["---------", "----", "---"]]
    rows += [[p["metadata"].get("namespace", "default"), p["metadata"]["name"], age(p, now)]
             for p in sorted(live, key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"]))]
    lines += ["  " + line for line in render(rows, 2, 0).splitlines()]
    lines += describe_events(events, now)
    return "\n".join(lines)


def env_value(e: dict) -> str:
    """An env entry as `kubectl describe` shows it: its value, or where valueFrom takes it from."""
    vf = e.get("valueFrom") or {}
    if not vf:
        return str(e.get("value", ""))
    for key, what in (("configMapKeyRef", "config map"), ("secretKeyRef", "secret")):
        ref = vf.get(key)
        if isinstance(ref, dict):
            return (f"<set to the key '{ref.get('key', '')}' in {what} '{ref.get('name', '')}'>  "
                    f"Optional: {'true' if ref.get('optional') else 'false'}")
    if isinstance(vf.get("fieldRef"), dict):
        ref = vf["fieldRef"]
        return f" ({ref.get('apiVersion', 'v1')}:{ref.get('fieldPath', '')})"
    if isinstance(vf.get("resourceFieldRef"), dict):
        return f"{vf['resourceFieldRef'].get('resource', '')}"
    return ""
