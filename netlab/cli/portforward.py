"""`netlab port-forward`: kubectl port-forward TYPE/NAME [LOCAL_PORT:]REMOTE_PORT ... on a live lab.

A local port of this machine (on 127.0.0.1 by default) is forwarded to a port of one pod: each connection
accepted is answered by a connection opened from inside the pod's network namespace to its own loopback,
as the kubelet's port-forward (the container runtime's) opens it, and the bytes are copied both ways until
both sides have closed. Nothing is added to any namespace: no rule, route or interface; the host's root
namespace gets a listening socket of this command's, which ends with it (Ctrl-C).

The pod: pod/NAME (or NAME), or one Running pod of svc/NAME's selector or deploy/NAME's, a Ready one first,
as kubectl picks it; a Service's port is forwarded to its targetPort on that pod (a named one looked up in
the pod's containers), as kubectl translates it. The pure parts (the ports' syntax, the pod, the port
translation) are functions of the store's objects, tested without root; the forwarding is `Forwarder`.
"""
from __future__ import annotations

import selectors
import socket
import sys
import threading

import click

from .kubeutil import KINDS, KubeError, kubectl_errors, lab_option, namespace_option, not_found

# ------------------------------------------------------------------ pure: ports, pod, translation


def parse_ports(specs: tuple[str, ...]) -> list[tuple[int, str]]:
    """kubectl's [LOCAL_PORT:]REMOTE_PORT specs: (local port, 0 for one chosen by the kernel; remote port as
    given, a number or a Service port's name) each."""
    out = []
    for spec in specs:
        local, sep, remote = spec.partition(":")
        if not sep:
            local, remote = spec, spec
        if not remote:
            raise KubeError(f"error: invalid port format {spec!r}: give [LOCAL_PORT:]REMOTE_PORT, e.g. 8080:80")
        if local == "":
            local = "0"
        if not local.isdigit() or int(local) > 65535:
            raise KubeError(f"error: invalid port format {spec!r}: local port {local!r} is not a port number")
        if remote.isdigit() and not 0 < int(remote) <= 65535:
            raise KubeError(f"error: invalid port format {spec!r}: remote port {remote} is not between 1 and 65535")
        out.append((int(local), remote))
    return out


def choose_pod(store, kind: str, namespace: str, name: str) -> tuple[dict, dict | None]:
    """The pod to forward to and the Service it was found through (None for a pod or a Deployment)."""
    from ..controllers.base import is_pod_ready
    from ..store.meta import is_deleting, labels_of, matcher, selector_is_empty
    obj = store.try_get(kind, namespace, name)
    if obj is None:
        raise not_found(kind, name)
    if kind == "Pod":
        return obj, None
    # a Service's selector (a map), a workload's (a LabelSelector: matchLabels, matchExpressions); an empty
    # one selects nothing here (a Service without a selector has no pods of its own)
    selector = (obj.get("spec") or {}).get("selector") or {}
    selects = matcher(selector)
    pods = [] if selector_is_empty(selector) else [
        p for p in store.list("Pod", namespace) if not is_deleting(p) and selects(labels_of(p))
        and (p.get("status") or {}).get("phase") == "Running"]
    if not pods:
        shown = selector if kind == "Service" else (selector.get("matchLabels") or {})
        raise KubeError(f"error: no running pod for {kind.lower()}/{name} (its selector "
                        f"{','.join(f'{k}={v}' for k, v in sorted(shown.items())) or 'selects nothing'})")
    pods.sort(key=lambda p: (not is_pod_ready(p), p["metadata"]["name"]))
    return pods[0], (obj if kind == "Service" else None)


def remote_port(pod: dict, service: dict | None, remote: str) -> int:
    """The pod's port for `remote`: a Service's port (number or name) translated to its targetPort, a named
    target port looked up in the pod's containers; else the number given (a pod's port by name too)."""
    def named(port_name: str) -> int:
        for c in (pod.get("spec") or {}).get("containers") or []:
            for p in c.get("ports") or []:
                if p.get("name") == port_name:
                    return int(p["containerPort"])
        raise KubeError(f"error: pod {pod['metadata']['name']} has no container port named {port_name!r}")
    if service is None:
        return int(remote) if remote.isdigit() else named(remote)
    for p in (service.get("spec") or {}).get("ports") or []:
        if str(p.get("port")) == remote or (p.get("name") and p.get("name") == remote):
            if p.get("protocol", "TCP") != "TCP":
                continue
            target = p.get("targetPort", p.get("port"))
            return int(target) if isinstance(target, int) or str(target).isdigit() else named(str(target))
    raise KubeError(f"error: Service {service['metadata']['name']} does not have a service port {remote}")


# ------------------------------------------------------------------ the forwarding (root: the pod's netns)

class Forwarder:
    """Listeners on `addresses` x `ports` ((local, remote) pairs), each connection forwarded to the remote
    port on the loopback of the network namespace at `netns_path`."""

    def __init__(self, netns_path: str, addresses: list[str], ports: list[tuple[int, int]], say=click.echo):
        self.netns_path, self.say = netns_path, say
        self.listeners: list[tuple[socket.socket, int]] = []
        failed = []
        for local, remote in ports:
            for addr in addresses:
                family = socket.AF_INET6 if ":" in addr else socket.AF_INET
                s = socket.socket(family, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((addr, local))
                    s.listen(64)
                except OSError as e:
                    s.close()
                    failed.append(f"Unable to listen on port {local}: {addr}:{local}: {e.strerror}")
                    continue
                local = s.getsockname()[1]   # (0: the port the kernel chose, then the same on each address)
                self.listeners.append((s, remote))
                shown = f"[{addr}]" if family == socket.AF_INET6 else addr
                say(f"Forwarding from {shown}:{local} -> {remote}")
        for f in failed:
            click.echo(f, err=True)
        if not self.listeners:
            raise KubeError("error: unable to listen on any of the requested ports: "
                            f"{', '.join(str(p) for p, _ in ports)}")

    def connect(self, port: int) -> socket.socket:
        """A connection to `port` on the pod's loopback, opened from inside its network namespace."""
        from ..dataplane.nsfs import in_netns

        def opened() -> socket.socket:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        return in_netns(self.netns_path, opened)

    def serve(self, stop: threading.Event) -> None:
        """Accept and forward until `stop` is set (each connection on a thread of its own)."""
        sel = selectors.DefaultSelector()
        for s, remote in self.listeners:
            sel.register(s, selectors.EVENT_READ, remote)
        try:
            while not stop.is_set():
                for key, _ in sel.select(timeout=0.2):
                    client, _ = key.fileobj.accept()
                    local = key.fileobj.getsockname()[1]
                    self.say(f"Handling connection for {local}")
                    threading.Thread(target=self._forward, args=(client, key.data, local), daemon=True).start()
        finally:
            sel.close()
            for s, _ in self.listeners:
                s.close()

    def _forward(self, client: socket.socket, remote: int, local: int) -> None:
        try:
            upstream = self.connect(remote)
        except OSError as e:
            click.echo(f"E an error occurred forwarding {local} -> {remote}: connect to 127.0.0.1:{remote} in the "
                       f"pod: {e.strerror or e}", err=True)
            client.close()
            return
        upstream.settimeout(None)
        pump(client, upstream)


def pump(a: socket.socket, b: socket.socket, chunk: int = 65536) -> None:
    """Copy bytes both ways until both directions have ended (an EOF is passed on as a half close)."""
    sel = selectors.DefaultSelector()
    peer = {a: b, b: a}
    open_ = {a, b}
    for s in open_:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    try:
        while open_:
            for key, _ in sel.select():
                src = key.fileobj
                try:
                    data = src.recv(chunk)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if data:
                    dst = peer[src]
                    dst.setblocking(True)
                    try:
                        dst.sendall(data)
                    except OSError:
                        return
                    finally:
                        dst.setblocking(False)
                    continue
                sel.unregister(src)
                open_.discard(src)
                try:
                    peer[src].shutdown(socket.SHUT_WR)
                except OSError:
                    pass
    finally:
        sel.close()
        a.close()
        b.close()


# ------------------------------------------------------------------ the command

FORWARDABLE = ("Pod", "Service", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet")


@click.command("port-forward")
@click.argument("target", metavar="TYPE/NAME")
@click.argument("ports", nargs=-1, required=True, metavar="[LOCAL_PORT:]REMOTE_PORT...")
@click.option("--address", default="localhost", show_default=True,
              help="Local addresses to listen on, comma-separated (localhost: 127.0.0.1 and ::1).")
@namespace_option
@lab_option
@kubectl_errors
def port_forward(target: str, ports: tuple[str, ...], address: str, namespace: str, lab: str | None) -> None:
    """Forward local ports to a pod, like kubectl port-forward TYPE/NAME [LOCAL_PORT:]REMOTE_PORT...

    \b
      sudo netlab port-forward svc/web 8080:80     # then, on this machine: curl localhost:8080
      sudo netlab port-forward pod/web-0 :8080      # a free local port, printed

    TYPE/NAME: pod/NAME (or NAME), or one Running pod of svc/, deploy/, rs/, sts/ or ds/NAME (a Ready one
    first); a Service's port (number or name) is forwarded to its targetPort. Each connection is opened from
    inside the pod's network namespace to its loopback, as the kubelet's port-forward does; nothing is added
    to any namespace. Runs until Ctrl-C."""
    import os
    import signal

    from .. import names
    from ..dataplane.host import require_root
    from ..dataplane.nsfs import netns_path
    from . import kubeutil
    word, slash, name = target.partition("/")
    kind = KINDS.get(word.lower()) if slash else "Pod"
    name = name if slash else word
    if kind not in FORWARDABLE or not name:
        raise KubeError(f"error: cannot forward to {target!r}: give pod/NAME, svc/NAME, deploy/NAME, rs/NAME, "
                        "sts/NAME or ds/NAME")
    specs = parse_ports(ports)
    require_root("forward a port into a pod's network namespace")
    t = kubeutil.open_target(lab)
    pod, svc = choose_pod(t.store, kind, namespace, name)
    phase = (pod.get("status") or {}).get("phase") or "Pending"
    if phase != "Running":
        raise KubeError(f"error: unable to forward port because pod is not running. Current status={phase}")
    pairs = [(local, remote_port(pod, svc, remote)) for local, remote in specs]
    path = netns_path(names.pod_netns(t.name, namespace, pod["metadata"]["name"]))
    if not os.path.exists(path):
        raise KubeError(f"error: pod {pod['metadata']['name']}'s network namespace is not on this machine (it runs on "
                        f"node {(pod.get('spec') or {}).get('nodeName')}): run port-forward on that node's host")
    addresses = []
    for a in address.split(","):
        a = a.strip()
        addresses += ["127.0.0.1", "::1"] if a == "localhost" else [a]
    forwarder = Forwarder(path, addresses, pairs)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sys.stdout.flush()
    try:
        forwarder.serve(stop)
    except KeyboardInterrupt:
        pass


COMMANDS = (port_forward,)
