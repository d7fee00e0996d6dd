"""Well-known test images run as themselves: which built-in behaviour a container gets from its image and
its command line. Pure functions, standard library only.

netlab runs no images. A container whose image is one of these gets netlab's built-in server (one
process per node, netexec.py) answering as that image's program would, whatever `command`/`args` say
for it (facts learnt from each project's documentation and source; deviations marked):

* registry.k8s.io/e2e-test-images/agnhost (also k8s.gcr.io/e2e-test-images/agnhost and
  gcr.io/kubernetes-e2e-test-images/agnhost; any tag). Its entrypoint is `/agnhost` and its default
  command `pause`; the subcommand is the first argument (`command: [/agnhost, X]`, or `args: [X]`):
  - `netexec`: the built-in server itself (agnhost.py, goflags.py);
  - `serve-hostname`: the pod's hostname, over HTTP (default, any path), or raw TCP (`--tcp`: the
    hostname written on connect, then closed) or UDP (`--udp`: the hostname to any datagram), on
    `--port` (9376); `--close` adds `Connection: close`; `--http` with `--tcp`/`--udp` is refused
    (agnhost exits: "Can't server TCP/UDP mode and HTTP mode at the same time");
  - `pause`: runs, serves nothing;
  - `porter`: for each env var SERVE_PORT_<n> / SERVE_TCP_PORT_<n>, HTTP on port n answering the
    var's value to any request; SERVE_UDP_PORT_<n>: the value to any datagram; `--json-response`:
    `{"Method":M,"Body":V}`; SERVE_TLS_PORT_<n>, SERVE_SCTP_PORT_<n> are refused (no TLS, no SCTP);
  - `connect HOST:PORT [--timeout=D] [--protocol=tcp]`: a client that exits 0 once a TCP connection to
    HOST:PORT succeeds, 1 otherwise (REFUSED / TIMEOUT / OTHER on stderr): run as a real process of the
    container (`python -m netlab.workload.connect`); HOST must be an IP address (no DNS in the lab);
  - any other subcommand is refused, naming these.
* hashicorp/http-echo: `-text` (or env ECHO_TEXT; neither: refused, the program would exit 127) on every
  path, followed by a newline, with status `-status-code` (200); `/health` answers `{"status":"ok"}`;
  listens on `-listen` (`:5678`).
* nginx (nginx, nginx:TAG, library/nginx, docker.io/library/nginx, nginxinc/nginx-unprivileged): nginx's
  default page ("Welcome to nginx!") on `/` and `/index.html`, its 404 page elsewhere, on port 80
  (nginx-unprivileged: 8080).
* gcr.io/google-samples/hello-app (us-docker.pkg.dev/google-samples/containers/gke/hello-app): on every
  path `Hello, world!\\nVersion: <tag as X.Y.Z>\\nHostname: <pod>\\n`, on port 8080 (env PORT overrides).
* netlab.dev/cluster-dns (netlab's own; any tag): the lab's cluster DNS server (the coredns add-on,
  netlab/dns/addon.py), run as a real process of the container (`python -m netlab.dns.server`), so
  the kubelet restarts it when it ends; its args `--zone PATH [--listen ADDR] [--port 53]
  [--health-port 8080] [--ready-port 8181]` are checked here and passed on.
* registry.k8s.io/ingress-nginx/controller (any tag): the ingress-nginx add-on's controller
  (netlab/ingress/addon.py), run as a real process (`python -m netlab.ingress.controller`), which runs
  the real /usr/sbin/nginx with the configuration the control loop publishes; of the controller's
  flags (`/nginx-ingress-controller --flag=value ...`) `--conf-dir` (required), `--run-dir`,
  `--healthz-port`, `--ingress-class` and `--controller-class` are read, the others accepted unused.

* quay.io/metallb/speaker (any tag): MetalLB's layer-2 speaker (the add-on netlab/lb/addon.py makes
  when the lab has an IPAddressPool), run as a real process of the container (`python -m
  netlab.lb.speaker`): it answers ARP for the LB IPs the lab's election gave its node and sends
  gratuitous ARP when it gains one; MetalLB's flags --port and --log-level honoured, its memberlist/BGP
  flags accepted and ignored, netlab's --netlab-announcements=PATH required.

A known image's `command` other than its own program (e.g. `sh -c ...`) is refused: the built-in
behaviour cannot run a shell script. Any other image: `command`/`args` run from the host (preflight.py
checks the program exists, for `validate` and `up` alike); no command: the built-in netexec server on the
declared ports, as before.
"""
from __future__ import annotations

import sys

from . import goflags
from .agnhost import parse_duration
from .goflags import BOOL, INT, STRING, FlagError

NETEXEC = "netexec"



def netlab_python() -> str:
    """The interpreter a container that runs netlab's own program starts: netlab's environment's
    `bin/python3`, one path however netlab itself was started (`python`, `python3`, the `netlab`
    script): the container's command is part of the pod's spec, and a different spelling of the same
    interpreter would make the next `up` rebuild the pod."""
    import os
    cand = os.path.join(sys.prefix, "bin", "python3")
    return cand if os.access(cand, os.X_OK) else sys.executable

class ImageError(ValueError):
    """A known image's command line that its program (or netlab) refuses: `field` (command or args),
    `msg` and `fix` make the one-line error."""

    def __init__(self, field: str, msg: str, fix: str):
        super().__init__(msg)
        self.field, self.msg, self.fix = field, msg, fix


class Recognised:
    """What a known image's container runs: `ports` [(port, protocol, app)] served by the built-in
    server (app: a JSON-able dict, {"app": NAME, ...}); or `command`, a real process (agnhost connect)."""

    def __init__(self, name: str, ports=(), command=None, delay_shutdown: int = 0):
        self.name, self.ports, self.command, self.delay_shutdown = name, list(ports), command, delay_shutdown


def image_name(image: str | None) -> tuple[str, str]:
    """'registry.k8s.io/e2e-test-images/agnhost:2.39@sha256:..' -> ('registry.k8s.io/e2e-test-images/agnhost',
    '2.39'); Docker Hub's defaults made explicit away: 'docker.io/library/nginx' -> 'nginx'."""
    name = (image or "").split("@", 1)[0]
    tag = ""
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    for prefix in ("docker.io/library/", "index.docker.io/library/", "library/", "docker.io/", "index.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    return name, tag


AGNHOST = ("registry.k8s.io/e2e-test-images/agnhost", "k8s.gcr.io/e2e-test-images/agnhost",
           "gcr.io/kubernetes-e2e-test-images/agnhost", "gcr.io/k8s-staging-e2e-test-images/agnhost")
HTTP_ECHO = ("hashicorp/http-echo",)
NGINX = {"nginx": 80, "nginxinc/nginx-unprivileged": 8080}
HELLO_APP = ("gcr.io/google-samples/hello-app", "us-docker.pkg.dev/google-samples/containers/gke/hello-app")
CLUSTER_DNS = "netlab.dev/cluster-dns"   # the lab's cluster DNS server (netlab/dns/server.py)
METALLB_SPEAKER = "quay.io/metallb/speaker"   # MetalLB's layer-2 speaker (netlab/lb/speaker.py)
INGRESS_NGINX = ("registry.k8s.io/ingress-nginx/controller", "k8s.gcr.io/ingress-nginx/controller")
SUBCOMMANDS = ("netexec", "serve-hostname", "pause", "porter", "connect")


def known(image: str | None) -> str | None:
    """The program netlab emulates for `image` (agnhost, http-echo, nginx, hello-app), or None."""
    name, _ = image_name(image)
    if name in AGNHOST:
        return "agnhost"
    if name in HTTP_ECHO:
        return "http-echo"
    if name in NGINX:
        return "nginx"
    if name in HELLO_APP:
        return "hello-app"
    if name == CLUSTER_DNS:
        return "cluster-dns"
    if name == METALLB_SPEAKER:
        return "metallb-speaker"
    if name in INGRESS_NGINX:
        return "ingress-nginx"
    return None


def _basename(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _own_argv(program: str, entry: tuple[str, ...], command: list[str], args: list[str]) -> list[str]:
    """The arguments the image's program gets: `command` must be its own program (one of `entry`, by
    name) or absent (the image's entrypoint takes `args`)."""
    if not command:
        return list(args)
    if _basename(command[0]) in entry:
        return command[1:] + list(args)
    raise ImageError("command", f"runs {command[0]!r} in image {program}: netlab emulates {program}'s own program "
                     "only (it runs no image, so no shell or script of it)",
                     f"drop command (the image's entrypoint) or use {entry[0]!r}")


def recognise(image: str | None, command: list[str], args: list[str], env: dict[str, str]) -> Recognised | None:
    """The built-in behaviour of a container of a known image, or None for any other image."""
    what = known(image)
    if what == "agnhost":
        return _agnhost(command, args, env)
    if what == "http-echo":
        return _http_echo(_own_argv("hashicorp/http-echo", ("http-echo",), command, args), env)
    if what == "nginx":
        _own_argv("nginx", ("nginx", "docker-entrypoint.sh", "nginx-debug"), command, args)
        return Recognised("nginx", [(NGINX[image_name(image)[0]], "TCP", {"app": "nginx"})])
    if what == "hello-app":
        _own_argv("hello-app", ("hello-app",), command, args)
        tag = image_name(image)[1] or "1.0"
        parts = (tag.split(".") + ["0", "0"])[:3] if tag.replace(".", "").isdigit() else ["1", "0", "0"]
        port = _port_text(env.get("PORT", "8080"), "env PORT")
        return Recognised("hello-app", [(port, "TCP", {"app": "hello-app", "version": ".".join(parts)})])
    if what == "cluster-dns":
        return _cluster_dns(_own_argv(CLUSTER_DNS, ("cluster-dns", "netlab-dns"), command, args))
    if what == "metallb-speaker":
        return _metallb_speaker(_own_argv(METALLB_SPEAKER, ("speaker",), command, args))
    if what == "ingress-nginx":
        return _ingress_nginx(list(command) + list(args))
    return None


def _ingress_nginx(argv: list[str]) -> Recognised:
    """registry.k8s.io/ingress-nginx/controller: netlab's supervisor of a real nginx, with the flags it reads."""
    if argv and _basename(argv[0]) in ("nginx-ingress-controller", "/nginx-ingress-controller"):
        argv = argv[1:]
    elif argv and not argv[0].startswith("-"):
        raise ImageError("command", f"runs {argv[0]!r} in image ingress-nginx/controller: netlab runs the "
                         "controller's own program only", "use args: [/nginx-ingress-controller, --conf-dir=...]")
    values = {"conf-dir": "", "run-dir": "/tmp/nginx", "healthz-port": "10254", "ingress-class": "nginx",
              "controller-class": "k8s.io/ingress-nginx"}
    for a in argv:
        if not a.startswith("--") or "=" not in a:
            raise ImageError("args", f"ingress-nginx: {a!r} is not a --flag=value", "write flags as --name=value")
        k, _, v = a[2:].partition("=")
        if k in values:
            values[k] = v
    if not values["conf-dir"]:
        raise ImageError("args", "ingress-nginx has no --conf-dir", "add --conf-dir=/etc/ingress-controller")
    if not values["healthz-port"].isdigit() or not 1 <= int(values["healthz-port"]) <= 65535:
        raise ImageError("args", f"ingress-nginx --healthz-port={values['healthz-port']} is not a port",
                         "give a port number")
    return Recognised("ingress-nginx", command=[netlab_python(), "-m", "netlab.ingress.controller",
                                                "--conf-dir", values["conf-dir"], "--run-dir", values["run-dir"],
                                                "--healthz-port", values["healthz-port"]])


def _port_text(text: str, what: str) -> int:
    if text.isdigit() and 1 <= int(text) <= 65535:
        return int(text)
    raise ImageError("args", f"{what} {text!r} is not a port (1-65535)", "give a port number")


def _agnhost(command: list[str], args: list[str], env: dict[str, str]) -> Recognised:
    argv = _own_argv("agnhost", ("agnhost",), command, args) if not command or _basename(command[0]) == "agnhost" \
        else command + list(args)   # `command: [netexec, ...]`: the subcommand as the command
    sub, flags = (argv[0], argv[1:]) if argv else ("pause", [])
    where = "command" if command else "args"
    try:
        if sub == "netexec":
            ports = goflags.netexec_ports(["netexec"] + flags) or []
            return Recognised(NETEXEC, [(p, proto, {"app": NETEXEC}) for p, proto in ports],
                              delay_shutdown=goflags.netexec_delay_shutdown(["netexec"] + flags))
        if sub == "serve-hostname":
            return _serve_hostname(flags)
        if sub == "pause":
            _parse_interspersed(flags, {}, 0, "pause")
            return Recognised("pause")
        if sub == "porter":
            return _porter(flags, env)
        if sub == "connect":
            return _connect(flags)
    except FlagError as e:
        raise ImageError(where, f"agnhost {sub}: {e}", f"use agnhost {sub}'s flags") from None
    raise ImageError(where, f"agnhost subcommand {sub!r} is not emulated by netlab",
                     f"use one of {', '.join(SUBCOMMANDS)}")


def _parse_interspersed(argv: list[str], flags: dict, nargs: int, sub: str):
    """cobra/pflag: flags and positional arguments in any order (`--` ends the flags); exactly `nargs`
    positional arguments."""
    flag_args, positional, i = [], [], 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            positional += argv[i:]
            break
        if len(a) < 2 or a[0] != "-":
            positional.append(a)
            continue
        flag_args.append(a)
        name = a.lstrip("-").partition("=")[0]
        if "=" not in a and flags.get(name, (BOOL,))[0] != BOOL and i < len(argv):
            flag_args.append(argv[i])   # its value
            i += 1
    values, _ = goflags.parse(flag_args, flags)
    if len(positional) != nargs:
        raise FlagError(f"accepts {nargs} arg(s), received {len(positional)}")
    return values, positional


def _serve_hostname(flags: list[str]) -> Recognised:
    values, _ = _parse_interspersed(flags, {"tcp": (BOOL, False), "udp": (BOOL, False), "http": (BOOL, True),
                                            "close": (BOOL, False), "port": (INT, 9376)}, 0, "serve-hostname")
    if values["http"] and (values["tcp"] or values["udp"]):
        raise FlagError("--http with --tcp or --udp: agnhost exits (\"Can't server TCP/UDP mode and HTTP mode at "
                        "the same time\"); add --http=false")
    port = values["port"]
    if not 1 <= port <= 65535:
        raise FlagError(f"--port={port} is not a port (1-65535)")
    out = []
    if values["http"]:
        out.append((port, "TCP", {"app": "serve-hostname", "mode": "http", "close": values["close"]}))
    if values["tcp"]:
        out.append((port, "TCP", {"app": "serve-hostname", "mode": "tcp"}))
    if values["udp"]:
        out.append((port, "UDP", {"app": "serve-hostname", "mode": "udp"}))
    return Recognised("serve-hostname", out)


PORTER_PREFIXES = (("SERVE_PORT_", "TCP"), ("SERVE_TCP_PORT_", "TCP"), ("SERVE_UDP_PORT_", "UDP"),
                   ("SERVE_TLS_PORT_", "TLS"), ("SERVE_SCTP_PORT_", "SCTP"))


def _porter(flags: list[str], env: dict[str, str]) -> Recognised:
    values, _ = _parse_interspersed(flags, {"json-response": (BOOL, False)}, 0, "porter")
    out = []
    for key, value in sorted(env.items()):
        for prefix, proto in PORTER_PREFIXES:
            if key.startswith(prefix):
                if proto in ("TLS", "SCTP"):
                    raise FlagError(f"env {key}: porter's {proto} ports are not emulated by netlab")
                port = key[len(prefix):]
                if not (port.isdigit() and 1 <= int(port) <= 65535):
                    raise FlagError(f"env {key}: {port!r} is not a port (porter's server on it fails)")
                out.append((int(port), proto, {"app": "porter", "value": value, "json": values["json-response"]}))
                break
    return Recognised("porter", out)


def _connect(flags: list[str]) -> Recognised:
    values, (dest,) = _parse_interspersed(flags, {"timeout": (STRING, "0s"), "protocol": (STRING, "tcp"),
                                                  "udp-data": (STRING, "hostname"),
                                                  "sctp-data": (STRING, "hostname")}, 1, "connect")
    if values["protocol"] not in ("", "tcp"):
        raise FlagError(f"--protocol={values['protocol']}: netlab's connect emulates tcp only")
    try:
        timeout = parse_duration(values["timeout"])
    except ValueError as e:
        raise FlagError(f"invalid argument {values['timeout']!r} for --timeout: {e}") from None
    return Recognised("connect", command=[netlab_python(), "-m", "netlab.workload.connect", dest, f"{timeout:g}"])


def _cluster_dns(argv: list[str]) -> Recognised:
    """netlab.dev/cluster-dns: `python -m netlab.dns.server` with the container's flags, checked first."""
    try:
        values, _ = _parse_interspersed(argv, {"zone": (STRING, ""), "listen": (STRING, "0.0.0.0"),
                                               "port": (INT, 53), "health-port": (INT, 8080),
                                               "ready-port": (INT, 8181)}, 0, "cluster-dns")
    except FlagError as e:
        raise ImageError("args", f"cluster-dns: {e}", "give --zone PATH and optionally --listen, --port, "
                         "--health-port, --ready-port") from None
    if not values["zone"]:
        raise ImageError("args", "cluster-dns has no --zone", "add --zone PATH (the zone file netlab writes)")
    for flag in ("port", "health-port", "ready-port"):
        if not 1 <= values[flag] <= 65535:
            raise ImageError("args", f"cluster-dns --{flag}={values[flag]} is not a port (1-65535)",
                             "give a port number")
    return Recognised("cluster-dns", command=[netlab_python(), "-m", "netlab.dns.server", "--zone", values["zone"],
                                              "--listen", values["listen"], "--port", str(values["port"]),
                                              "--health-port", str(values["health-port"]),
                                              "--ready-port", str(values["ready-port"])])


def _metallb_speaker(argv: list[str]) -> Recognised:
    """quay.io/metallb/speaker: `python -m netlab.lb.speaker` (layer 2 only). MetalLB's own flags
    --port (7472) and --log-level are honoured, its others accepted and ignored (memberlist, BGP, FRR
    settings: netlab's speakers read the lab's decision); netlab's --netlab-announcements names the file
    the control loop writes (netlab/lb/addon.py mounts it)."""
    flags = {"port": (INT, 7472), "log-level": (STRING, "info"), "netlab-announcements": (STRING, ""),
             "host": (STRING, ""), "node-name": (STRING, ""), "ml-bindaddr": (STRING, ""),
             "ml-bindport": (STRING, ""), "ml-labels": (STRING, ""), "ml-namespace": (STRING, ""),
             "ml-secret-key-path": (STRING, ""), "lb-class": (STRING, ""), "enable-pprof": (BOOL, False),
             "ignore-exclude-lb": (BOOL, False), "interfaces-to-exclude": (STRING, "")}
    try:
        values, _ = _parse_interspersed(argv, flags, 0, "speaker")
    except FlagError as e:
        raise ImageError("args", f"speaker: {e}", "give MetalLB's speaker flags (--port, --log-level ...)") from None
    if not values["netlab-announcements"]:
        raise ImageError("args", "speaker has no --netlab-announcements",
                         "add --netlab-announcements=PATH (the file netlab's control loop writes; "
                         "the add-on mounts the lab's LB directory at /etc/metallb-netlab)")
    if not 1 <= values["port"] <= 65535:
        raise ImageError("args", f"speaker --port={values['port']} is not a port (1-65535)", "give a port number")
    if values["log-level"] not in ("all", "debug", "info", "warn", "error", "none"):
        raise ImageError("args", f"speaker --log-level={values['log-level']} is not a log level",
                         "use one of all, debug, info, warn, error, none")
    argv_out = [netlab_python(), "-m", "netlab.lb.speaker", "--announcements", values["netlab-announcements"],
                "--port", str(values["port"]), "--log-level", values["log-level"]]
    if values["node-name"]:
        argv_out += ["--node-name", values["node-name"]]
    return Recognised("metallb-speaker", command=argv_out)


def _http_echo(argv: list[str], env: dict[str, str]) -> Recognised:
    try:
        values, rest = goflags.parse(argv, {"listen": (STRING, ":5678"), "text": (STRING, ""),
                                            "status-code": (INT, 200), "version": (BOOL, False)})
    except FlagError as e:
        raise ImageError("args", f"http-echo: {e}", "use http-echo's flags, e.g. -text=hello -listen=:5678") from None
    if rest:
        raise ImageError("args", f"http-echo: too many arguments ({rest[0]!r}): it exits 127",
                         "give its flags as -name=value")
    text = values["text"] or env.get("ECHO_TEXT", "")
    if not text:
        raise ImageError("args", "http-echo has no -text (nor env ECHO_TEXT): it exits 127",
                         "add -text=SOMETHING to args")
    host, _, port = values["listen"].rpartition(":")
    port_n = _port_text(port, "http-echo -listen")
    if not 100 <= values["status-code"] <= 999:
        raise ImageError("args", f"http-echo -status-code={values['status-code']} is not an HTTP status",
                         "use 100-999")
    return Recognised("http-echo", [(port_n, "TCP", {"app": "http-echo", "text": text,
                                                     "status": values["status-code"]})])
