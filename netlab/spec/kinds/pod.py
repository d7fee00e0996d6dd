"""Pod (v1): a pod's spec, shared with the Deployment's pod template."""
from __future__ import annotations

import re

from ...controllers.validation import api_error, validate_pod_spec
from ...workload import goflags
from ..fields import IANA_SVC_NAME, Fields, shown
from ..limits import CONTROL_PLANE_TAINT
from ..podparts import parse_env, parse_mounts, parse_volumes
from ..security import parse_container_security, parse_pod_security
from ..types import PROTOCOLS, RESTART_POLICIES, ContainerPort, ContainerSpec, PodSpec, PodTemplate, Volume
from . import Context, ObjectDoc, Reported, attempt, object_meta, register


@register("Pod", "v1", order=2)
def parse_pod(doc: ObjectDoc, ctx: Context) -> None:
    top, meta, name, namespace = object_meta(doc, ctx)
    labels = meta.strmap("labels")
    meta.done()
    spec = top.map("spec")
    if len(name) > 63:
        raise meta.error("name", f"{shown(name)} is longer than 63 characters",
                         "netlab uses the pod name as the pod's hostname: shorten it")
    template = attempt(ctx.problems, parse_pod_spec, spec, labels)
    top.done()
    if template is None:
        raise Reported()
    ctx.pods.append(PodSpec(namespace, name, template))


def parse_pod_spec(spec: Fields, labels: dict[str, str]) -> PodTemplate:
    if spec.bool("hostNetwork"):
        raise spec.error("hostNetwork", "true is not supported", "remove hostNetwork: netlab gives every pod its own namespace")
    node_name = spec.str("nodeName")
    node_selector = spec.strmap("nodeSelector")
    tolerate = False
    for tol in spec.maps("tolerations"):
        key = tol.str("key")
        tol.skip("operator", "effect", "value", "tolerationSeconds")
        tol.done()
        if key in (CONTROL_PLANE_TAINT, "node-role.kubernetes.io/master") or key is None:
            tolerate = True
    containers: list[ContainerSpec] = []
    used_ports: dict[tuple[int, str], str] = {}
    port_names: set[str] = set()
    pod_security = parse_pod_security(spec)
    cdocs = list(spec.maps("containers"))
    if not cdocs:
        raise spec.missing("containers", "must list at least one container",
                         "add '- name: app' (with no command netlab runs its built-in test server)")
    failed = False
    volumes = attempt(spec.problems, parse_volumes, spec)
    failed |= volumes is None
    for c in cdocs:  # each container is checked, even after one is refused
        got = attempt(spec.problems, _parse_container, c, containers, used_ports, port_names,
                      pod_security, volumes or [])
        failed |= got is None
        if got is not None:
            containers.append(got)
    # whether `up` restarts a container that ended (netlab/dataplane/plan.py), as the kubelet does
    restart_policy = spec.choice("restartPolicy", RESTART_POLICIES, "Always")
    # a scheduler other than the default one would leave the pod Pending on a cluster that has none
    spec.ignore_unless("schedulerName", "default-scheduler")
    # no meaning for a network dataplane: accepted without a word (resources, probes, volumes, affinity,
    # securityContext, dnsPolicy... are reported as ignored: they would change behaviour on a real cluster)
    spec.skip("serviceAccountName", "serviceAccount", "imagePullSecrets", "enableServiceLinks",
              "automountServiceAccountToken")
    # how long a stopping pod may take (the control loop's graceful deletion reads it); who is
    # preempted first: not emulated, quiet at the defaults
    spec.int("terminationGracePeriodSeconds", 30, lo=0)
    spec.ignore_unless("priority", 0)
    spec.ignore_unless("priorityClassName", "")
    spec.done()
    if failed:
        raise Reported()
    return PodTemplate(labels, node_name, node_selector, containers, tolerate, restart_policy, volumes or [])


def _parse_container(c: Fields, containers: list[ContainerSpec], used_ports: dict[tuple[int, str], str],
                     port_names: set[str], pod_security: dict | None = None,
                     volumes: list[Volume] = ()) -> ContainerSpec:
    cname = c.name("name")
    if any(x.name == cname for x in containers):
        raise c.error("name", f"'{cname}' is used by two containers", "give each container its own name")
    image = c.str("image")
    command = c.strlist("command")
    args = c.strlist("args")
    ports = []
    failed = False
    for p in c.maps("ports"):  # each port is checked, even after one is refused
        port = attempt(c.problems, _parse_port, p, cname, used_ports, port_names)
        failed |= port is None
        if port is not None:
            ports.append(port)
    # agnhost's netexec, as Kubernetes' own network tests run it: netlab's built-in server.
    try:
        netexec = netexec_ports(command + args)
    except goflags.FlagError as e:
        raise c.error("args", f"of container {cname}: netexec {e}",
                      "use agnhost netexec's flags, e.g. --http-port=8080 --udp-port=8081") from None
    delay_shutdown = 0
    if netexec is not None:
        delay_shutdown = goflags.netexec_delay_shutdown(command + args)
        for port in netexec:
            if (port.port, port.protocol) not in used_ports:
                ports.append(port)
                used_ports[(port.port, port.protocol)] = f"container {cname}"
        command, args = [], []
    # valueFrom, envFrom, $(VAR): resolved by the kubelet when it starts the container (workload/podenv.py)
    env, kubelet_env = parse_env(c, cname)
    mounts = parse_mounts(c, list(volumes))
    working_dir = c.str("workingDir")
    security = parse_container_security(c, pod_security or {})
    # no meaning for a network dataplane: accepted without a word
    c.skip("imagePullPolicy", "terminationMessagePath", "terminationMessagePolicy", "stdin", "stdinOnce", "tty")
    # the kubelet's probes run in the control loop (netlab/live/kubelet.py), checked as the API server does
    c.skip("readinessProbe", "livenessProbe", "startupProbe")
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        if isinstance(c.data.get(probe), dict) and "grpc" in c.data[probe]:
            raise c.error(f"{probe}.grpc", "is not run by netlab's kubelet (no gRPC health client)",
                          "probe the port with tcpSocket, or httpGet or exec a health command")
    if c.has("lifecycle"):
        _parse_lifecycle(c.map("lifecycle"), cname)
    prefix, _, me = c.path.rpartition(".")
    for line in validate_pod_spec({"containers": [c.data]}, "", prefix or "spec"):
        raise api_error(c.where, line.replace("containers[0]", me, 1))
    c.done()
    if failed:
        raise Reported()
    kubelet_env = kubelet_env or any("$(" in x for x in command + args)
    return ContainerSpec(cname, image, command, args, ports, env, working_dir, delay_shutdown, security, mounts,
                         kubelet_env)


LIFECYCLE_HANDLERS = ("exec", "httpGet", "sleep")


def _parse_lifecycle(lc: Fields, cname: str) -> None:
    """lifecycle.preStop: run by the control loop's kubelet when the pod is deleted (netlab/live/
    terminate.py): exec (a command in the pod's namespaces), httpGet (from the node's namespace), sleep.
    lifecycle.postStart: checked the same way, reported as ignored (netlab runs no postStart hook).
    tcpSocket (Kubernetes keeps it only for compatibility and never runs it) and anything else are
    refused."""
    for hook in ("preStop", "postStart"):
        if not lc.has(hook):
            continue
        h = lc.map(hook)
        given = [k for k in h.data if k in ("exec", "httpGet", "sleep", "tcpSocket")]
        if not given:
            other = next(iter(h.data), None)
            raise h.error(str(other) if other is not None else None,
                          f"is not a handler netlab's kubelet runs (container {cname})" if other is not None
                          else f"names no handler (container {cname})",
                          "use one of exec (command), httpGet (path, port) or sleep (seconds)")
        if len(given) > 1:
            raise h.error(given[1], f"is a second handler of container {cname}'s {hook}", f"keep only {given[0]}")
        kind = given[0]
        if kind == "tcpSocket":
            raise h.error("tcpSocket", f"is not run by any kubelet (container {cname}: kept by Kubernetes for "
                          "compatibility only)", "use exec, httpGet or sleep")
        if kind == "exec":
            cmd = h.map("exec").strlist("command")
            if not cmd:
                raise h.error("exec.command", f"is empty (container {cname})", "give the command to run as a list")
        elif kind == "httpGet":
            hg = h.map("httpGet")
            port = hg.raw("port")
            if port is None:
                raise hg.missing("port", f"is required (container {cname})", f"set {hg.at('port')}")
            if hg.raw("scheme", "HTTP") not in ("HTTP", "HTTPS"):
                raise hg.error("scheme", f"must be HTTP or HTTPS (container {cname})", "use HTTP")
            hg.skip("path", "host", "httpHeaders")
        else:
            sl = h.map("sleep")
            sl.int("seconds", required=True, lo=0)
            sl.done()
        h.skip(kind)
        h.done()
        if hook == "postStart":
            lc.ignored.append(f"{lc.where}: {lc.at('postStart')} (netlab's kubelet runs no postStart hook)")
    lc.ignore_unless("stopSignal", "SIGTERM")
    lc.done()


def _parse_port(p: Fields, cname: str, used_ports: dict[tuple[int, str], str], port_names: set[str]) -> ContainerPort:
    num = p.int("containerPort", required=True, lo=1, hi=65535)
    proto = p.str("protocol", "TCP")
    if proto not in PROTOCOLS:
        raise p.error("protocol", f"{shown(proto)} is not supported", "use TCP, UDP or SCTP")
    pname = p.str("name")
    if pname is not None:
        if len(pname) > 15 or not IANA_SVC_NAME.match(pname) or not re.search("[a-z]", pname):
            raise p.error("name", f"{shown(pname)} is not a valid port name",
                          "use at most 15 lowercase letters, digits and '-', with at least one letter")
        if pname in port_names:
            raise p.error("name", f"'{pname}' is used by two ports of this pod", "give each port its own name")
        port_names.add(pname)
    if (num, proto) in used_ports:
        raise p.error("containerPort", f"{num}/{proto} is also declared by {used_ports[(num, proto)]}",
                      "declare each port once per pod")
    used_ports[(num, proto)] = f"container {cname}"
    p.done()  # hostPort, hostIP: reported as ignored (netlab opens no port on the node for a pod)
    return ContainerPort(num, proto, pname)


def netexec_ports(argv: list[str]) -> list[ContainerPort] | None:
    """agnhost args like ["netexec", "--http-port", "8080", "--udp-port=8081"] -> the ports it serves.

    Accepted spellings: `netexec ...`, `/agnhost netexec ...`, `agnhost netexec ...`; the flags are read as
    Go's flag package reads them (netlab.workload.goflags, which also says what each flag does here).
    Raises goflags.FlagError for a command line netexec or netlab refuses."""
    ports = goflags.netexec_ports(argv)
    return None if ports is None else [ContainerPort(port, proto, None) for port, proto in ports]
