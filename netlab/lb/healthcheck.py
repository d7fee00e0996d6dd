"""kube-proxy's service health server (pkg/proxy/healthcheck), as netlab runs it on every node.

kube-proxy answers HTTP on the healthCheckNodePort of each LoadBalancer Service with
externalTrafficPolicy Local that it proxies, on every node: 200 when the node has a ready local endpoint
of the Service, 503 otherwise, so that an external load balancer sends traffic only to nodes that keep
it local. Any method and path; JSON body (tab-indented, no trailing newline), headers
`X-Content-Type-Options: nosniff` and `X-Load-Balancing-Endpoint-Weight: N`:

    {
    	"service": {
    		"namespace": "default",
    		"name": "web"
    	},
    	"localEndpoints": 1,
    	"serviceProxyHealthy": true
    }

N counts the node's ready endpoints of the Service, each address once however many ports it serves
(EndpointsMap.LocalReadyEndpoints). netlab's proxy is healthy whenever it runs (serviceProxyHealthy true).

Where it runs: in each node's built-in server (netlab/workload/netexec.py), which already runs for
every node (its sockets made in the node's namespace), is started, adopted, reloaded and stopped with the lab, and
serves many listeners from one loop. Its config gets one entry for the node itself (`server_entry`),
listening on every healthCheckNodePort; the counts are not in that config but in a small file per node
(`state_text`, `<lab>/run/healthz-<node>.json`, 0600) that each pass of the lab rewrites when the
endpoints change and that the server reads on every request - so endpoint changes need no reload and
the listeners never close while endpoints come and go.

This module is pure and standard library only (the built-in server imports it).
"""
from __future__ import annotations

import json

APP = "kube-proxy-health"           # the built-in server's behaviour on a healthCheckNodePort
SERVER_KEY = "kube-proxy:healthz"   # the node's entry in its built-in server's config (no pod key has a ':')


def proxied_health_checks(cluster) -> list:
    """The Services kube-proxy serves a health check for: proxied ones with a healthCheckNodePort."""
    from ..render.services import is_proxied
    return [s for s in cluster.services if s.health_check_node_port and is_proxied(s)]


def local_ready_endpoints(svc, node: str) -> int:
    """The node's ready endpoints of `svc`, each address once (kube-proxy's LocalReadyEndpoints)."""
    return len({str(e.ip) for eps in svc.endpoints.values() for e in eps if e.ready and e.node == node})


def state_text(cluster, node: str) -> str:
    """What the node's health state file holds: {"ns/name": local ready endpoint count}."""
    counts = {s.key: local_ready_endpoints(s, node) for s in proxied_health_checks(cluster)}
    return json.dumps(counts, sort_keys=True, indent=1) + "\n"


def server_entry(cluster, node_name: str, netns_path: str, state_path: str) -> dict | None:
    """The built-in server's config entry for node `node_name`'s health checks (None: it has none)."""
    ports = [{"port": s.health_check_node_port, "protocol": "TCP",
              "app": {"app": APP, "namespace": s.namespace, "name": s.name, "state": state_path}}
             for s in sorted(proxied_health_checks(cluster), key=lambda s: s.health_check_node_port)]
    if not ports:
        return None
    return {"key": SERVER_KEY, "name": node_name, "netns": netns_path, "ports": ports}


def body(namespace: str, name: str, count: int, healthy: bool = True) -> str:
    """kube-proxy's JSON answer, byte for byte (a Go template with tabs, trimmed of its newlines)."""
    return ("{\n"
            "\t\"service\": {\n"
            f"\t\t\"namespace\": {json.dumps(namespace)},\n"
            f"\t\t\"name\": {json.dumps(name)}\n"
            "\t},\n"
            f"\t\"localEndpoints\": {count},\n"
            f"\t\"serviceProxyHealthy\": {'true' if healthy else 'false'}\n"
            "}")


def answer(namespace: str, name: str, count: int) -> tuple[int, str, list[tuple[str, str]]]:
    """(status, body, extra headers) of kube-proxy's health check handler."""
    headers = [("X-Content-Type-Options", "nosniff"), ("X-Load-Balancing-Endpoint-Weight", str(count))]
    return (200 if count else 503), body(namespace, name, count), headers


def read_count(state_path: str, namespace: str, name: str) -> int:
    """The count the node's state file gives the Service (0 when the file or the entry is missing)."""
    try:
        with open(state_path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return 0
    n = doc.get(f"{namespace}/{name}") if isinstance(doc, dict) else None
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else 0
