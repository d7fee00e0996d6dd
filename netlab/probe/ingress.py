"""`netlab probe ingress/NAME/HOST/PATH` (also ingress/NS/NAME/HOST/PATH): an HTTP request with `Host:
HOST` for PATH through the lab's ingress-nginx, as a client outside the cluster sends it, reporting the
pod that answered (the X-Netlab-Pod header netlab's nginx configuration adds: netlab/ingress/config.py).

Where the request goes: the controller Service's LoadBalancer IP on port 80, else its http NodePort on
the address the Ingress's status publishes (a node running a controller pod), else on every node. What
is expected (pure, from the store's objects through the same plan nginx was configured from): the
ready endpoints of the backend of the location nginx picks for HOST and PATH (`config.route`); a
location without endpoints answers 503, the default backend 404: still an answer (reachable), with no
pod named.
"""
from __future__ import annotations

from ..errors import NotFound, SpecError
from ..ingress import NAME, NAMESPACE
from ..ingress import config as ingconfig
from ..render.services import lb_ingress_ips
from .engine import ProbeSpec

KINDS = ("Ingress", "IngressClass", "Service", "EndpointSlice", "Secret")


def _split(rest: str, ingresses: list[dict]) -> tuple[dict, str, str]:
    """(the Ingress, HOST, PATH) of `NAME/HOST/PATH` or `NS/NAME/HOST/PATH`."""
    parts = rest.split("/")
    by = {(i["metadata"].get("namespace", "default"), i["metadata"]["name"]): i for i in ingresses}
    if len(parts) >= 3 and (parts[0], parts[1]) in by and ("default", parts[0]) not in by:
        ing, host, path = by[(parts[0], parts[1])], parts[2], parts[3:]
    elif len(parts) >= 2 and ("default", parts[0]) in by:
        ing, host, path = by[("default", parts[0])], parts[1], parts[2:]
    else:
        raise NotFound(f"no Ingress '{parts[0]}' (ingresses: "
                       f"{', '.join(sorted(f'{n}' if ns == 'default' else f'{ns}/{n}' for ns, n in by)) or 'none'})")
    if not host:
        raise SpecError("target", f"'ingress/{rest}' has no host", "write it as ingress/NAME/HOST/PATH")
    return ing, host, "/" + "/".join(path)


def ingress_checks(cluster, src, rest: str, count: int, objs: dict | None = None):
    """The checks of one ingress target (see the module's docstring) as (label, probes, pods that may
    answer or None), which probe/plan.py makes Checks of. `objs`: the store's objects of KINDS (read
    from the lab's store when None)."""
    cfg = cluster.networking.ingress
    if cfg is None:
        raise NotFound("the lab has no ingress controller: add an `ingress:` map to its Cluster document")
    if objs is None:
        from ..live import store_for
        objs = store_for(cluster.name).snapshot(KINDS)[0]
    ing, host, path = _split(rest, objs.get("Ingress") or [])
    p = ingconfig.plan(objs, ingconfig.Settings(class_name=cfg.class_name))
    key = f"{ing['metadata'].get('namespace', 'default')}/{ing['metadata']['name']}"
    if key not in p.ours:
        raise NotFound(f"Ingress {key} is not served by the lab's ingress-nginx (class {cfg.class_name})")
    _, loc = ingconfig.route(p, host, path)
    backends = {pod for _, _, pod in p.upstreams[loc.upstream].servers} if loc.upstream else None
    svc = next((s for s in cluster.services if s.key == f"{NAMESPACE}/{NAME}"), None)
    if svc is None:
        raise NotFound(f"the controller Service {NAMESPACE}/{NAME} is not in the lab")
    http = next((pt for pt in svc.ports if pt.name == "http"), svc.ports[0])
    targets = [(ip, http.port) for ip in lb_ingress_ips(svc.spec)]
    if not targets and http.node_port:
        published = [e.get("ip") for e in ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []]
        ips = [ip for ip in published if ip] or [str(n.ip) for n in cluster.nodes]
        targets = [(ips[0], http.node_port)]
    if not targets:
        raise NotFound(f"the controller Service {NAMESPACE}/{NAME} has no LoadBalancer IP nor NodePort yet")
    label = f"ingress/{ing['metadata']['name']} {host}{path}"
    checks = []
    for ip, port in targets:
        probes = [ProbeSpec(src.netns, "http", ip, port, 2.0, path=path, label=f"http {ip}:{port}", host=host)
                  for _ in range(max(1, count))]
        checks.append((label, probes, backends))
    return checks
