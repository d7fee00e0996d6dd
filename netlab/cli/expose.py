"""`netlab expose`: kubectl expose on a live lab: a Service made for a Deployment, ReplicaSet, Pod or Service,
its selector and ports taken from that object unless given.

As kubectl does it (facts from kubectl's expose command and its Service generator):
- the selector is the object's: a Deployment's or ReplicaSet's spec.selector.matchLabels (matchExpressions
  cannot be written as a Service's selector: refused), a Pod's labels, a Service's selector; --selector
  replaces it (KEY=VALUE,... only);
- the ports: --port (and --target-port, default the same number; --protocol, default TCP), else every port
  the object declares (the pod template's containerPorts, a Service's ports), named port-1, port-2, ...
  when there are several; none at all is an error;
- the Service is named --name or after the object and carries the object's labels; an existing Service of
  that name is refused (AlreadyExists), nothing changed.
The Service is then written as `apply` writes one (the same parser and API-server checks, exit 2 with one line
for a bad port or type; its ClusterIP and node ports allocated by the lab), and the control loop programs it.
"""
from __future__ import annotations

import click

from . import kubeutil
from .kubeutil import KubeError, get_obj, kubectl_errors, lab_option, namespace_option, refs

EXPOSABLE = ("Deployment", "ReplicaSet", "Pod", "Service")
TYPES = ("ClusterIP", "NodePort", "LoadBalancer")


def selector_of(obj: dict, given: str | None) -> dict[str, str]:
    """The new Service's selector: --selector, else the object's (see the module's docstring)."""
    if given:
        sel = {}
        for part in given.split(","):
            key, eq, value = part.partition("=")
            if not eq or not key or "!" in key or value.startswith("="):
                raise KubeError(f"error: --selector {given!r}: expose takes KEY=VALUE[,KEY=VALUE...] (a Service's "
                                "selector is labels that must all match)")
            sel[key.strip()] = value.strip()
        return sel
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind == "Pod":
        sel = dict((obj.get("metadata") or {}).get("labels") or {})
    elif kind == "Service":
        sel = dict(spec.get("selector") or {})
    else:
        s = spec.get("selector") or {}
        if s.get("matchExpressions"):
            raise KubeError(f"error: couldn't convert expressions - \"{kind.lower()}\" has a selector with "
                            "matchExpressions, which a Service's selector cannot say; give --selector KEY=VALUE")
        sel = dict(s.get("matchLabels") or {})
    if not sel:
        raise KubeError("error: couldn't retrieve selectors via --selector flag or introspection; give --selector "
                        "KEY=VALUE")
    return sel


def ports_of(obj: dict) -> list[dict]:
    """The ports the object declares, as the Service's ports (port and targetPort the same number)."""
    if obj.get("kind") == "Service":
        return [{"port": p.get("port"), "targetPort": p.get("targetPort", p.get("port")),
                 "protocol": p.get("protocol", "TCP")} for p in (obj.get("spec") or {}).get("ports") or []]
    spec = obj.get("spec") or {}
    pod_spec = spec if obj.get("kind") == "Pod" else ((spec.get("template") or {}).get("spec") or {})
    return [{"port": p.get("containerPort"), "targetPort": p.get("containerPort"), "protocol": p.get("protocol", "TCP")}
            for c in pod_spec.get("containers") or [] for p in c.get("ports") or []]


def service_for(obj: dict, name: str, port: int | None, target_port: str | None, protocol: str | None,
                svc_type: str | None, selector: str | None, external_ip: str | None) -> dict:
    """The Service kubectl expose would create for `obj` (a pure function: the module's docstring)."""
    sel = selector_of(obj, selector)   # (kubectl looks for the selector first)
    if port is not None:
        target: int | str = port if target_port is None else (int(target_port) if target_port.isdigit()
                                                               else target_port)
        ports = [{"port": port, "targetPort": target, "protocol": protocol or "TCP"}]
    else:
        if target_port is not None:
            raise KubeError("error: --target-port needs --port here (the object's own ports are taken as they are)")
        ports = ports_of(obj)
        if protocol:
            ports = [dict(p, protocol=protocol) for p in ports]
        if not ports:
            raise KubeError("error: couldn't find port via --port flag or introspection; give --port N")
    if len(ports) > 1:
        ports = [dict(p, name=f"port-{i}") for i, p in enumerate(ports, 1)]
    md = obj.get("metadata") or {}
    spec: dict = {"selector": sel, "ports": ports}
    if svc_type:
        spec["type"] = svc_type
    if external_ip:
        spec["externalIPs"] = [external_ip]
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": md.get("namespace", "default")}, "spec": spec}
    if md.get("labels"):
        svc["metadata"]["labels"] = dict(md["labels"])
    return svc


@click.command()
@click.argument("args", nargs=-1, required=True, metavar="TYPE NAME | TYPE/NAME")
@click.option("--port", type=click.IntRange(1, 65535), help="The Service's port (default: every port the object "
                                                             "declares).")
@click.option("--target-port", help="The pods' port, a number or a containerPort's name (default: --port).")
@click.option("--protocol", type=click.Choice(["TCP", "UDP", "SCTP"]), help="The ports' protocol (default: TCP, or "
                                                                            "the object's).")
@click.option("--name", "svc_name", help="The Service's name (default: the object's).")
@click.option("--type", "svc_type", type=click.Choice(TYPES), help="The Service's type (default: ClusterIP).")
@click.option("--selector", help="The Service's selector, KEY=VALUE[,...] (default: the object's).")
@click.option("--external-ip", help="An external IP the Service also answers on (spec.externalIPs).")
@kubeutil.dry_run_option
@kubeutil.output_option
@namespace_option
@lab_option
@kubectl_errors
def expose(args: tuple[str, ...], port: int | None, target_port: str | None, protocol: str | None,
           svc_name: str | None, svc_type: str | None, selector: str | None, external_ip: str | None,
           dry_run: str, output: str | None, namespace: str, lab: str | None) -> None:
    """Make a Service for a Deployment, ReplicaSet, Pod or Service, like kubectl expose:
    expose deploy web --port 80 --target-port 8080 --type NodePort.

    \b
    The selector and ports are the object's unless given (a Deployment's matchLabels, its pod template's
    containerPorts, named port-1, port-2 ... when there are several). Prints service/NAME exposed. An
    existing Service of that name: kubectl's AlreadyExists, exit 1. A port or type the API server would
    refuse: one line, exit 2. Nothing is written either way.
    """
    pairs = refs(args)
    if len(pairs) != 1:
        raise KubeError("error: expose takes one object: TYPE NAME or TYPE/NAME")
    kind, name = pairs[0]
    if kind not in EXPOSABLE:
        raise KubeError(f"error: cannot expose a {kind}; expose a Deployment, ReplicaSet, Pod or Service")
    t = kubeutil.open_target(lab)
    obj = get_obj(t.store, kind, namespace, name)
    svc = service_for(obj, svc_name or name, port, target_port, protocol, svc_type, selector, external_ip)
    kubeutil.make(lab, [svc], f"expose {kind.lower()}/{name}", dry_run, output,
                  [f"service/{svc['metadata']['name']} exposed"], target=t)


COMMANDS = (expose,)

__all__ = ["COMMANDS", "expose", "service_for"]
