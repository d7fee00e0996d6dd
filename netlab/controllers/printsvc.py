"""`kubectl describe service NAME`: the stored Service (labels, annotations, selector, type,
LoadBalancer Ingress from its status with the ipMode), what the lab's model allocated for it when
it is known (ClusterIP, NodePorts, endpoints), and its events (MetalLB's IPAllocated,
AllocationFailed...). Fields follow kubectl's describer; a field the lab does not have is left out."""
from __future__ import annotations

from netlab.controllers.printers import _field, _map, describe_events

W = 26


def describe_service(svc: dict, model, events: list[dict], now: float) -> str:
    """`model`: the lab's model Service (netlab.model.objects.Service) or None."""
    md, spec, st = svc["metadata"], svc.get("spec") or {}, svc.get("status") or {}
    lines: list[str] = []
    _field(lines, "Name", md["name"], W)
    _field(lines, "Namespace", md.get("namespace", "default"), W)
    _field(lines, "Labels", _map(md.get("labels")), W)
    ann = {k: v for k, v in (md.get("annotations") or {}).items()
           if k != "kubectl.kubernetes.io/last-applied-configuration"}
    _field(lines, "Annotations", _map(ann, ": "), W)
    _field(lines, "Selector", ",".join(_map(spec.get("selector"))), W)
    kind = spec.get("type") or "ClusterIP"
    _field(lines, "Type", kind, W)
    if model is not None and model.cluster_ip is not None:
        _field(lines, "IP Family Policy", "SingleStack", W)
        _field(lines, "IP Families", "IPv4", W)
        _field(lines, "IP", str(model.cluster_ip), W)
        _field(lines, "IPs", str(model.cluster_ip), W)
    if spec.get("loadBalancerIP"):
        _field(lines, "IP", spec["loadBalancerIP"], W)   # (kubectl names the requested address IP too)
    ingress = (st.get("loadBalancer") or {}).get("ingress") or []
    if ingress:
        _field(lines, "LoadBalancer Ingress", ", ".join(
            f"{e.get('ip') or e.get('hostname')}" + (f" ({e['ipMode']})" if e.get("ipMode") else "") for e in ingress), W)
    ports = model.ports if model is not None else []
    for i, p in enumerate(spec.get("ports") or []):
        name = p.get("name") or "<unset>"
        proto = p.get("protocol") or "TCP"
        _field(lines, "Port", f"{name}  {p.get('port')}/{proto}", W)
        _field(lines, "TargetPort", f"{p.get('targetPort', p.get('port'))}/{proto}", W)
        node_port = p.get("nodePort") or (ports[i].node_port if i < len(ports) else None)
        if kind in ("NodePort", "LoadBalancer") and node_port:
            _field(lines, "NodePort", f"{name}  {node_port}/{proto}", W)
        if model is not None:
            eps = model.endpoints.get(p.get("name") or "", [])
            text = ",".join(f"{e.ip}:{e.port}" for e in eps if getattr(e, "ready", True)) or "<none>"
            _field(lines, "Endpoints", text, W)
    _field(lines, "Session Affinity", spec.get("sessionAffinity") or "None", W)
    if kind in ("NodePort", "LoadBalancer"):
        _field(lines, "External Traffic Policy", spec.get("externalTrafficPolicy") or "Cluster", W)
    _field(lines, "Internal Traffic Policy", spec.get("internalTrafficPolicy") or "Cluster", W)
    if spec.get("loadBalancerClass"):
        _field(lines, "LoadBalancer Class", spec["loadBalancerClass"], W)
    return "\n".join(lines + describe_events(events, now))
