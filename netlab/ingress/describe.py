"""`netlab describe ingress NAME`: kubectl's layout (Name, Labels, Namespace, Address, Ingress Class,
Default backend, TLS, Rules with each backend's endpoints, Annotations, Events), where a backend that
answers 503 says why (a Service or port that does not exist, no ready endpoint), and whether the lab's
ingress-nginx serves the Ingress at all. Pure: store objects in, text out."""
from __future__ import annotations

from ..controllers.printers import describe_events
from . import config


def _backend_text(b: dict, ns: str, objs: dict) -> str:
    services = {(s["metadata"].get("namespace", "default"), s["metadata"]["name"]): s for s in objs.get("Service") or []}
    ups: dict = {}
    problems: list = []
    up, text = config._backend(b, ns, services, objs.get("EndpointSlice") or [], ups, "", problems)
    if up:
        return f"{text} ({','.join(f'{ip}:{port}' for ip, port, _ in ups[up].servers)})"
    return f"{text} (<error: {problems[0].message}>)" if problems else text


def describe_ingress(ing: dict, objs: dict, events: list[dict], now: float, class_name: str | None) -> str:
    md, spec = ing["metadata"], ing.get("spec") or {}
    ns = md.get("namespace", "default")
    lb = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    served = class_name is not None and config.ours(ing, objs.get("IngressClass") or [],
                                                    config.Settings(class_name=class_name))
    labels = md.get("labels") or {}
    ann = {k: v for k, v in (md.get("annotations") or {}).items() if k != "kubectl.kubernetes.io/last-applied-configuration"}
    lines = [f"{'Name:':<18}{md['name']}",
             f"{'Labels:':<18}{','.join(f'{k}={v}' for k, v in sorted(labels.items())) or '<none>'}",
             f"{'Namespace:':<18}{ns}",
             f"{'Address:':<18}{','.join(e.get('ip') or e.get('hostname') or '' for e in lb)}",
             f"{'Ingress Class:':<18}{spec.get('ingressClassName') or '<none>'}"
             + ("" if served else "  (not served: no ingress controller of the lab claims it)"),
             f"{'Default backend:':<18}" + (_backend_text(spec['defaultBackend'], ns, objs)
                                            if spec.get("defaultBackend") else "<default>")]
    if spec.get("tls"):
        lines.append("TLS:")
        for t in spec["tls"]:
            lines.append(f"  {t.get('secretName') or 'SNI routes'} terminates {','.join(t.get('hosts') or [])}")
    lines += ["Rules:", "  Host        Path  Backends", "  ----        ----  --------"]
    for r in spec.get("rules") or []:
        lines.append(f"  {r.get('host') or '*'}")
        for p in (r.get("http") or {}).get("paths") or []:
            lines.append(f"              {p.get('path') or '/'}   {_backend_text(p.get('backend') or {}, ns, objs)}")
    lines.append(f"{'Annotations:':<18}" + ("\n".join(f"{'' if i == 0 else ' ' * 18}{k}: {v}"
                                                     for i, (k, v) in enumerate(sorted(ann.items()))) or "<none>"))
    lines += describe_events(events, now)
    return "\n".join(lines)


def describe_lab_ingress(store, ing: dict, events: list[dict], now: float) -> str:
    """describe_ingress with the store's objects; our class: the add-on's IngressClass (labelled as
    netlab/ingress/addon.py makes it), None when the lab has no ingress-nginx."""
    from ..store.meta import matcher
    from . import CONTROLLER, LABELS
    objs, _ = store.snapshot(("IngressClass", "Service", "EndpointSlice"))
    sel = matcher({"matchLabels": LABELS})
    mine = [c for c in objs.get("IngressClass") or [] if sel(c["metadata"].get("labels"))
            and (c.get("spec") or {}).get("controller") == CONTROLLER]
    return describe_ingress(ing, objs, events, now, mine[0]["metadata"]["name"] if mine else None)
