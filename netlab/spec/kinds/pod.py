"""Pod (v1): a pod's spec, shared with the Deployment's pod template."""
from __future__ import annotations

import ipaddress
import re

from ...controllers.validation import api_error, validate_pod_spec
from ...workload import goflags, images
from ..fields import IANA_SVC_NAME, Fields, shown
from ..limits import CONTROL_PLANE_TAINT
from ..dnsparts import parse_pod_dns
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


def parse_pod_spec(spec: Fields, labels: dict[str, str], claims: tuple[str, ...] = ()) -> PodTemplate:
    """`claims`: a StatefulSet's volumeClaimTemplates' names, volumes of each of its pods (as its
    controller adds them: persistentVolumeClaim volumes, an empty directory here)."""
    # hostNetwork: the pod's containers run in its node's network namespace (netlab/dataplane/hostnet.py)
    host_network = bool(spec.bool("hostNetwork"))
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
    host_ports: dict[tuple[int, str, str], str] = {}   # (hostPort, protocol, hostIP) -> who declares it
    pod_security = parse_pod_security(spec)
    cdocs = list(spec.maps("containers"))
    if not cdocs:
        raise spec.missing("containers", "must list at least one container",
                         "add '- name: app' (with no command netlab runs its built-in test server)")
    failed = False
    volumes = attempt(spec.problems, parse_volumes, spec)
    if volumes is not None:
        declared = {v.name for v in volumes}
        volumes += [Volume(c, "persistentVolumeClaim", {"claimName": c}) for c in claims if c not in declared]
    failed |= volumes is None
    for c in cdocs:  # each container is checked, even after one is refused
        got = attempt(spec.problems, _parse_container, c, containers, used_ports, port_names, host_network,
                      host_ports, pod_security, volumes or [])
        failed |= got is None
        if got is not None:
            containers.append(got)
    # whether `up` restarts a container that ended (netlab/dataplane/plan.py), as the kubelet does
    restart_policy = spec.choice("restartPolicy", RESTART_POLICIES, "Always")
    # a scheduler other than the default one would leave the pod Pending on a cluster that has none
    spec.ignore_unless("schedulerName", "default-scheduler")
    # no meaning for a network dataplane: accepted without a word (resources, probes, volumes, affinity,
    # securityContext, dnsPolicy... are reported as ignored: they would change behaviour on a real cluster)
    spec.skip("serviceAccountName", "serviceAccount", "imagePullSecrets", "automountServiceAccountToken")
    # how long a stopping pod may take (the control loop's graceful deletion reads it); who is
    # preempted first: not emulated, quiet at the defaults
    spec.int("terminationGracePeriodSeconds", 30, lo=0)
    spec.ignore_unless("priority", 0)
    spec.ignore_unless("priorityClassName", "")
    # the pod's hostname (its UTS namespace's); subdomain names the headless Service whose
    # EndpointSlices carry that hostname (a StatefulSet's pods): both DNS labels, as the API server checks
    hostname = spec.name("hostname", "hostname", required=False)
    subdomain = spec.name("subdomain", "subdomain", required=False)
    # dnsPolicy, dnsConfig, hostAliases, enableServiceLinks: the pod's resolv.conf, hosts, service variables
    dns = attempt(spec.problems, parse_pod_dns, spec, subdomain)
    failed |= dns is None
    spec.done()
    if failed:
        raise Reported()
    return PodTemplate(labels, node_name, node_selector, containers, tolerate, restart_policy, hostname,
                       host_network, volumes or [], dns)


def template_of(spec: dict, labels: dict[str, str], where: str, path: str = "spec.template.spec",
                claims: tuple[str, ...] = ()) -> PodTemplate:
    """A pod spec given as a mapping (a stored object's) parsed as a document's is (`parse_pod_spec`):
    `where` names the object and `path` the spec in it, as errors say; raises the first problem found."""
    problems: list = []
    template = attempt(problems, parse_pod_spec, Fields(spec, where, path, [], "PodSpec", problems), labels, claims)
    if problems:
        raise problems[0]
    return template


def _parse_container(c: Fields, containers: list[ContainerSpec], used_ports: dict[tuple[int, str], str],
                     port_names: set[str], host_network: bool = False,
                     host_ports: dict | None = None, pod_security: dict | None = None,
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
        port = attempt(c.problems, _parse_port, p, cname, used_ports, port_names, host_network,
                       {} if host_ports is None else host_ports)
        failed |= port is None
        if port is not None:
            ports.append(port)
    # valueFrom, envFrom, $(VAR): resolved by the kubelet when it starts the container (workload/podenv.py)
    env, kubelet_env = parse_env(c, cname)
    mounts = parse_mounts(c, list(volumes))
    working_dir = c.str("workingDir")
    security = parse_container_security(c, pod_security or {})
    command, args, delay_shutdown, apps = _builtin(c, cname, image, command, args, env, ports, used_ports,
                                                   host_network)
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
    return ContainerSpec(cname, image, command, args, ports, env, working_dir, delay_shutdown, apps=apps,
                         security=security, mounts=mounts, kubelet_env=kubelet_env)


def _builtin(c: Fields, cname: str, image, command: list[str], args: list[str], env: dict[str, str],
             ports: list[ContainerPort], used_ports: dict[tuple[int, str], str], host_network: bool = False):
    """A well-known image (agnhost, http-echo, nginx, hello-app: netlab/workload/images.py) or agnhost's
    netexec command line (any image, as Kubernetes' own network tests run it) gets netlab's built-in
    server behaving like it: its ports are added to the container's, its command and args dropped.
    -> (command, args, delay_shutdown, apps)."""
    try:
        got = images.recognise(image, command, args, env)
        if got is None:
            netexec = netexec_ports(command + args)
            if netexec is not None:
                got = images.Recognised(images.NETEXEC, [(p.port, p.protocol, {"app": images.NETEXEC}) for p in netexec],
                                        delay_shutdown=goflags.netexec_delay_shutdown(command + args))
    except goflags.FlagError as e:
        raise c.error("args", f"of container {cname}: netexec {e}",
                      "use agnhost netexec's flags, e.g. --http-port=8080 --udp-port=8081") from None
    except images.ImageError as e:
        raise c.error(e.field, f"of container {cname}: {e.msg}", e.fix) from None
    if got is None:
        return command, args, 0, {}
    if got.command is not None:   # a client run as a real process (agnhost connect)
        return got.command, [], 0, {}
    apps = {}
    for port, proto, app in got.ports:
        if (port, proto) not in used_ports:
            # the API server's default: a hostNetwork pod's ports are host ports
            ports.append(ContainerPort(port, proto, None, host_port=port if host_network else None))
            used_ports[(port, proto)] = f"container {cname}"
        if app.get("app") != images.NETEXEC:
            apps[f"{port}/{proto}"] = app
    if got.name != images.NETEXEC:   # declared ports the program does not open: nothing listens there
        for p in ports:
            apps.setdefault(f"{p.port}/{p.protocol}", {"app": "none", "of": got.name})
    return [], [], got.delay_shutdown, apps


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


def _parse_port(p: Fields, cname: str, used_ports: dict[tuple[int, str], str], port_names: set[str],
               host_network: bool = False, host_ports: dict | None = None) -> ContainerPort:
    num = p.int("containerPort", required=True, lo=1, hi=65535)
    proto = p.str("protocol", "TCP")
    if proto not in PROTOCOLS:
        raise p.error("protocol", f"{shown(proto)} is not supported", "use TCP, UDP or SCTP")
    host_port, host_ip = _parse_host_port(p, num, proto, cname, host_network, {} if host_ports is None else host_ports)
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
    p.done()
    return ContainerPort(num, proto, pname, host_port, host_ip)


def _parse_host_port(p: Fields, num: int, proto: str, cname: str, host_network: bool,
                     host_ports: dict[tuple[int, str, str], str]) -> tuple[int | None, str | None]:
    """hostPort and hostIP as the API server checks them: 0 or absent is none; a hostNetwork pod's
    hostPort is its containerPort (defaulted so; another value is refused); one hostPort/protocol/hostIP
    per pod."""
    hp = p.int("hostPort", 0, lo=0, hi=65535)
    hip = p.str("hostIP")
    if hip is not None:
        try:
            addr = ipaddress.ip_address(hip)
        except ValueError:
            raise p.error("hostIP", f"{shown(hip)} is not an IP address",
                          "give a node address, or leave hostIP out") from None
        if addr.version != 4:
            raise p.error("hostIP", f"{hip} is not an IPv4 address (netlab's nodes have IPv4 addresses only)",
                          "give a node's IPv4 address, or leave hostIP out")
        if addr.is_unspecified:
            hip = None   # 0.0.0.0: every address of the node, as no hostIP
    if host_network:
        if hp and hp != num:
            raise p.error("hostPort", f"Invalid value: {hp}: must match `containerPort` ({num}) when "
                          "`hostNetwork` is true", f"set hostPort to {num} or leave it out")
        hp = num
    if not hp:
        return None, None
    key = (hp, proto, hip or "0.0.0.0")
    if key in host_ports:
        raise p.error("hostPort", f"Duplicate value: {hp}/{proto} is also the hostPort of {host_ports[key]}",
                      "give each hostPort of the pod its own number")
    host_ports[key] = f"container {cname}"
    return hp, hip


def netexec_ports(argv: list[str]) -> list[ContainerPort] | None:
    """agnhost args like ["netexec", "--http-port", "8080", "--udp-port=8081"] -> the ports it serves.

    Accepted spellings: `netexec ...`, `/agnhost netexec ...`, `agnhost netexec ...`; the flags are read as
    Go's flag package reads them (netlab.workload.goflags, which also says what each flag does here).
    Raises goflags.FlagError for a command line netexec or netlab refuses."""
    ports = goflags.netexec_ports(argv)
    return None if ports is None else [ContainerPort(port, proto, None) for port, proto in ports]
