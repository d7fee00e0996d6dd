"""What the controller writes back to the store (pure): each served Ingress's status.loadBalancer.ingress
and its events, as ingress-nginx's status updater and event recorder do.

- Address: with a LoadBalancer controller Service, its LoadBalancer IPs (`lb_ips`, its status's
  addresses: netlab.render.services.lb_status); with a NodePort one, the InternalIPs of the nodes that
  run a controller pod (ingress-nginx's behaviour without --publish-service). Ingresses that are not
  ours are left alone; one that stops being ours has its address removed.
- Events (component nginx-ingress-controller): Normal Sync "Scheduled for sync" when an Ingress is
  first served; a Warning for each problem of the plan (a backend Service or port that does not exist,
  an unusable TLS Secret, a path an older Ingress serves), each once: an event whose
  reason and message the Ingress already has is not repeated.
"""
from __future__ import annotations

from .config import Plan

COMPONENT = "nginx-ingress-controller"


def addresses(service_type: str, lb_ips: list[str], pods: list[dict], nodes: list[dict]) -> list[dict]:
    """status.loadBalancer.ingress entries (see the module's docstring)."""
    if service_type == "LoadBalancer":
        return [{"ip": ip} for ip in lb_ips]
    running = {(p.get("spec") or {}).get("nodeName") for p in pods
               if (p.get("status") or {}).get("phase") == "Running" and not (p.get("metadata") or {}).get("deletionTimestamp")}
    ips = []
    for n in nodes:
        if n["metadata"]["name"] in running:
            ips += [a["address"] for a in (n.get("status") or {}).get("addresses") or [] if a.get("type") == "InternalIP"]
    return [{"ip": ip} for ip in sorted(set(ips), key=lambda x: tuple(int(o) for o in x.split(".")))]


def decide(ingresses: list[dict], plan: Plan, address: list[dict], events: list[dict]) -> tuple[list[dict], list[tuple]]:
    """(Ingresses with a new status, events to record as (ingress, type, reason, message))."""
    ours = set(plan.ours)
    have = {(e["involvedObject"].get("uid"), e.get("reason"), e.get("message")) for e in events
            if e.get("involvedObject", {}).get("kind") == "Ingress"}
    updates, out = [], []
    for ing in ingresses:
        md = ing["metadata"]
        key = f"{md.get('namespace', 'default')}/{md['name']}"
        want = {"loadBalancer": {"ingress": address}} if key in ours and address else {"loadBalancer": {}}
        if (ing.get("status") or {"loadBalancer": {}}) != want:
            updates.append(dict(ing, status=want))
        if key not in ours:
            continue
        todo = [("Normal", "Sync", "Scheduled for sync")]
        # (no ready endpoints is a moment of a rollout, not an event: `describe ingress` shows it)
        todo += [("Warning", p.reason, p.message) for p in plan.problems if p.ingress == key and p.reason != "NoEndpoints"]
        for etype, reason, msg in todo:
            if (md.get("uid"), reason, msg) not in have:
                out.append((ing, etype, reason, msg))
    return updates, out
