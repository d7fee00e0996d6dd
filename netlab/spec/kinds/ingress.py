"""Ingress and IngressClass (networking.k8s.io/v1), checked as the API server's validation checks them
(k8s.io/kubernetes pkg/apis/networking/validation, read for facts):

- Ingress: at least one of spec.defaultBackend and spec.rules; a rule's host a DNS-1123 subdomain,
  optionally with one leading `*.` label, not an IP address; each path of `http.paths` with a pathType
  (Exact, Prefix or ImplementationSpecific; required in v1); Exact and Prefix paths absolute ('/...')
  without `//`, `/./`, `/../`, `%2f` and not ending in `/.` or `/..`; an ImplementationSpecific path
  empty or starting with '/'; a backend with exactly one of `service` and `resource`; a service backend
  with a name (DNS-1123 label) and exactly one of port.number (1-65535) and port.name (IANA service
  name); tls entries with hosts (subdomains, wildcards allowed) and a secretName; ingressClassName a
  subdomain; the deprecated annotation kubernetes.io/ingress.class and spec.ingressClassName naming
  different classes is refused, as the API server refuses it.
- A `resource` backend (an object of another API, e.g. a storage bucket) passes the API server but
  ingress-nginx does not serve it: netlab refuses it, naming the fix (a Service backend).
- An Ingress of a lab whose Cluster document has no `ingress:` map is stored and served by nothing
  (as on a cluster without an ingress controller): `up`/`apply` say so once.
- IngressClass (cluster-scoped): spec.controller required, a domain-prefixed path of at most 250
  characters (e.g. k8s.io/ingress-nginx); spec.parameters accepted and not used.
"""
from __future__ import annotations

import ipaddress
import re

from ..fields import DNS1123_LABEL, DNS1123_SUBDOMAIN, IANA_SVC_NAME, Fields, shown
from . import Context, ObjectDoc, Reported, attempt, object_meta, register

PATH_TYPES = ("Exact", "Prefix", "ImplementationSpecific")
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
_CONTROLLER = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/[A-Za-z0-9/._~%!$&'()*+,;=:-]+$")
_BAD_SEGMENTS = ("//", "/./", "/../", "%2f", "%2F")


def check_host(f: Fields, key: str, host, wildcard: bool = True) -> str:
    if not isinstance(host, str):
        raise f.error(key, f"must be a string, not {shown(host)}", "write a host name like foo.example.com")
    try:
        ipaddress.ip_address(host)
        is_ip = True
    except ValueError:
        is_ip = False
    if is_ip:
        raise f.error(key, f"{shown(host)} is an IP address", "use a host name (rules match the Host header)")
    name = host[2:] if wildcard and host.startswith("*.") else host
    if len(host) > 253 or not DNS1123_SUBDOMAIN.match(name):
        raise f.error(key, f"{shown(host)} is not a valid host name",
                      "use lowercase letters, digits, '-' and '.' (a leading '*.' for a wildcard)")
    return host


def _backend(b: Fields) -> None:
    svc, res = b.has("service"), b.has("resource")
    if svc and res:
        raise b.error("resource", "is set with service", "give one of service and resource")
    if res:
        raise b.error("resource", "is a resource backend: ingress-nginx serves Service backends only",
                      "use service: {name: NAME, port: {number: PORT}}")
    if not svc:
        raise b.missing("service", "is required (a backend names a Service)", "add service: {name: NAME, port: {number: PORT}}")
    s = b.map("service")
    name = s.str("name", required=True)
    if not DNS1123_LABEL.match(name) or len(name) > 63:
        raise s.error("name", f"{shown(name)} is not a valid Service name", "use a DNS-1123 label (the Service's name)")
    port = s.map("port")
    number, pname = port.int("number", None, lo=1, hi=65535), port.str("name")
    if number is not None and pname is not None:
        raise port.error("name", "is set with number", "give one of port.number and port.name")
    if number is None and pname is None:
        raise port.missing("number", "is required (or port.name)", "add port: {number: 80}")
    if pname is not None and (len(pname) > 15 or not IANA_SVC_NAME.match(pname) or not re.search("[a-z]", pname)):
        raise port.error("name", f"{shown(pname)} is not a valid port name", "use the Service port's name")
    port.done()
    s.done()
    b.done()


def _path(p: Fields) -> None:
    kind = p.str("pathType")
    if kind is None:
        raise p.missing("pathType", "is required", f"add pathType: one of {', '.join(PATH_TYPES)}")
    if kind not in PATH_TYPES:
        raise p.error("pathType", f"{shown(kind)} is not supported", f"use one of: {', '.join(PATH_TYPES)}")
    path = p.str("path", "")
    if kind in ("Exact", "Prefix") or path:
        if not path.startswith("/"):
            raise p.error("path", f"{shown(path)} must be an absolute path", "start it with '/'")
    if kind in ("Exact", "Prefix"):
        bad = next((s for s in _BAD_SEGMENTS if s in path), None)
        if bad or path.endswith(("/..", "/.")):
            raise p.error("path", f"{shown(path)} must not contain {shown(bad or '/.. or /. at its end')}",
                          "write the path in its plain form")
    _backend(p.map("backend"))
    p.done()


def _spec(spec: Fields, annotations: dict[str, str]) -> None:
    cls = spec.str("ingressClassName")
    if cls is not None and (len(cls) > 253 or not DNS1123_SUBDOMAIN.match(cls)):
        raise spec.error("ingressClassName", f"{shown(cls)} is not a valid IngressClass name",
                         "use a DNS-1123 subdomain, e.g. nginx")
    ann = annotations.get(CLASS_ANNOTATION)
    if cls is not None and ann is not None and ann != cls:
        raise spec.error("ingressClassName", f"{shown(cls)} differs from annotation {CLASS_ANNOTATION} {shown(ann)}",
                         "drop the deprecated annotation (or make both name the same class)")
    if spec.has("defaultBackend"):
        _backend(spec.map("defaultBackend"))
    rules = list(spec.maps("rules"))
    if not rules and not spec.has("defaultBackend"):
        raise spec.missing("rules", "must list a rule (or give a defaultBackend)",
                           "add rules: [{host: foo.example.com, http: {paths: [...]}}] or defaultBackend")
    for r in rules:
        if r.has("host"):
            check_host(r, "host", r.raw("host"))
        r.raw("host")
        if r.has("http"):
            http = r.map("http")
            paths = list(http.maps("paths"))
            if not paths:
                raise http.missing("paths", "must list at least one path", "add paths: [{path: /, pathType: Prefix, ...}]")
            for p in paths:
                _path(p)
            http.done()
        r.done()
    for t in spec.maps("tls"):
        for i, h in enumerate(t.list("hosts")):
            check_host(t, f"hosts[{i}]", h)
        name = t.str("secretName")
        if name is not None and (len(name) > 253 or not DNS1123_SUBDOMAIN.match(name)):
            raise t.error("secretName", f"{shown(name)} is not a valid Secret name", "name a kubernetes.io/tls Secret")
        t.done()
    spec.done()


@register("Ingress", "networking.k8s.io/v1", order=23)
def parse_ingress(doc: ObjectDoc, ctx: Context) -> None:
    top, meta, _, _ = object_meta(doc, ctx)
    meta.strmap("labels")
    annotations = meta.strmap("annotations", labels=False)
    meta.done()
    got = attempt(ctx.problems, lambda: _spec(top.map("spec"), annotations) or True)
    top.done()
    if got is None:
        raise Reported()
    if ctx.networking is not None and ctx.networking.ingress is None:
        # stored as on a cluster without an ingress controller: nothing serves it
        ctx.inert.append(f"{doc.where} (no ingress controller: add an `ingress:` map to the Cluster document)")


@register("IngressClass", "networking.k8s.io/v1", order=24)
def parse_ingressclass(doc: ObjectDoc, ctx: Context) -> None:
    top, meta, _, _ = object_meta(doc, ctx, namespaced=False)
    meta.strmap("labels")
    annotations = meta.strmap("annotations", labels=False)
    meta.done()
    default = annotations.get(DEFAULT_CLASS_ANNOTATION)
    if default is not None and default not in ("true", "false"):
        raise meta.error(f"annotations.{DEFAULT_CLASS_ANNOTATION}", f"{shown(default)} is not true or false",
                         "write \"true\" or \"false\"")
    spec = top.map("spec")
    controller = spec.str("controller")
    if controller is None:
        raise spec.missing("controller", "is required", "add controller: k8s.io/ingress-nginx")
    if len(controller) > 250 or not _CONTROLLER.match(controller):
        raise spec.error("controller", f"{shown(controller)} is not a domain-prefixed path",
                         "write it like k8s.io/ingress-nginx")
    spec.skip("parameters")
    spec.done()
    top.done()
