"""A container's environment as the kubelet makes it when it starts the container: pure functions.

`container_env(pod, container, store, runtime)` -> (env, command, args), from the pod object as the
store holds it, the ConfigMaps and Secrets of the store, and what only the kubelet knows when it starts
the container (the pod's IP, the node's IP, the node's allocatable resources). The order is the
kubelet's:

1. `envFrom`, source by source (a later source overrides an earlier one), each key with the source's
   `prefix`; a ConfigMap or Secret that does not exist is skipped when `optional`, else the container
   is not started (EnvError: the kubelet's CreateContainerConfigError);
2. `env`, entry by entry (overriding envFrom): `value` with `$(VAR)` references to the variables
   defined before it expanded, or `valueFrom`: configMapKeyRef, secretKeyRef (the decoded value),
   fieldRef (metadata.name, namespace, uid, labels['k'], annotations['k'], spec.nodeName,
   spec.serviceAccountName, status.podIP(s), status.hostIP(s)), resourceFieldRef (the container's
   requests/limits; a limit that is not set is the node's allocatable, as the kubelet defaults it);
3. the service environment variables (`service_env`): every Service of the pod's namespace with a
   ClusterIP, Docker-link style, unless `enableServiceLinks: false`; the `kubernetes` Service of
   `default` always. A variable the container defines wins; `$(VAR)` references may name them;
4. `command` and `args` with `$(VAR)` expanded from the final environment.

`$(VAR)` expansion: `$$` is a literal `$`; `$(NAME)` is NAME's value if NAME is defined, else kept
as written; a `$` before anything else, or an unclosed `$(`, is kept as written.
"""
from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName",
               "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs")
SUBSCRIPTED = re.compile(r"^metadata\.(labels|annotations)\['([^']*)'\]$")
RESOURCES = ("limits.cpu", "limits.memory", "limits.ephemeral-storage", "requests.cpu", "requests.memory",
             "requests.ephemeral-storage")


class EnvError(Exception):
    """Why the kubelet cannot make a container's environment (CreateContainerConfigError)."""


@dataclass
class Runtime:
    """What the kubelet knows when it starts a container, beyond the pod object."""
    pod_ip: str
    host_ip: str
    # the node's allocatable: cpu (cores), memory and ephemeral-storage (bytes), as strings or numbers
    allocatable: dict[str, str] = field(default_factory=dict)


def expand(text: str, lookup: dict[str, str]) -> str:
    """`$(VAR)` references in `text` replaced as the kubelet replaces them (see the module's docstring)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end < 0:
                out.append("$(")
                i += 2
            else:
                name = text[i + 2:end]
                out.append(lookup[name] if name in lookup else f"$({name})")
                i = end + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


def parse_quantity(value) -> Decimal:
    """A Kubernetes resource quantity ("250m", "64Mi", "1.5", "2e3") as a number."""
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    s = str(value).strip()
    m = re.fullmatch(r"([+-]?[0-9.]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?", s)
    if not m:
        raise ValueError(f"{s!r} is not a quantity")
    try:
        num = Decimal(m.group(1))
    except InvalidOperation:
        raise ValueError(f"{s!r} is not a quantity") from None
    suf = m.group(2) or ""
    binary = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
    decimal = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
    if suf in binary:
        return num * (Decimal(1024) ** binary[suf])
    if suf in decimal:
        return num * (Decimal(10) ** decimal[suf])
    if suf:
        return num * (Decimal(10) ** int(suf[1:]))
    return num


def resource_value(container: dict, resource: str, divisor, allocatable: dict) -> str:
    """resourceFieldRef: the container's request or limit divided by `divisor`, rounded up (the kubelet's
    rule); a limit not set is the node's allocatable; a request not set is 0."""
    kind, _, name = resource.partition(".")
    res = (container.get("resources") or {})
    got = (res.get(kind) or {}).get(name)
    if got is None and kind == "requests":
        got = (res.get("limits") or {}).get(name)   # the API server defaults a request to its limit
    if got is None:
        got = allocatable.get(name, 0) if kind == "limits" else 0
    div = parse_quantity(divisor if divisor not in (None, "") else "1")
    if div == 0:
        div = Decimal(1)
    return str(int(math.ceil(parse_quantity(got) / div)))


def field_value(pod: dict, path: str, runtime: Runtime) -> str:
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    m = SUBSCRIPTED.match(path)
    if m:
        return str((md.get(m.group(1)) or {}).get(m.group(2), ""))
    if path == "metadata.name":
        return md.get("name", "")
    if path == "metadata.namespace":
        return md.get("namespace", "default")
    if path == "metadata.uid":
        return md.get("uid", "")
    if path == "spec.nodeName":
        return spec.get("nodeName", "")
    if path == "spec.serviceAccountName":
        return spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    if path in ("status.podIP", "status.podIPs"):
        return runtime.pod_ip
    if path in ("status.hostIP", "status.hostIPs"):
        return runtime.host_ip
    raise EnvError(f"unsupported fieldPath {path!r}")


def secret_value(secret: dict, key: str) -> str | None:
    if key in (secret.get("stringData") or {}):
        return str(secret["stringData"][key])
    data = secret.get("data") or {}
    if key not in data:
        return None
    try:
        return base64.b64decode(str(data[key]), validate=True).decode(errors="replace")
    except (binascii.Error, ValueError):
        return None


def _source(objs: dict, kind: str, ns: str, name: str) -> dict | None:
    return objs.get((kind, ns, name))



def _referenced(objs, kind: str, ns: str, ref: dict):
    """The ConfigMap or Secret an env source names; None when it is missing and `optional` (the kubelet
    then skips it), else EnvError as the kubelet words it."""
    obj = _source(objs, kind, ns, ref.get("name", ""))
    if obj is None and not ref.get("optional"):
        raise EnvError(f'{kind.lower()} "{ref.get("name", "")}" not found')
    return obj

def env_name(name: str) -> str:
    """A Service's name as the prefix of its variables: upper case, '-' as '_'."""
    return name.replace("-", "_").upper()


def _service_vars(svc: dict) -> list[tuple[str, str]]:
    spec = svc.get("spec") or {}
    ip = spec.get("clusterIP") or ""
    ports = spec.get("ports") or []
    if not ports:
        return []
    prefix = env_name(svc["metadata"]["name"])
    out = [(f"{prefix}_SERVICE_HOST", ip), (f"{prefix}_SERVICE_PORT", str(ports[0].get("port")))]
    out += [(f"{prefix}_SERVICE_PORT_{env_name(p['name'])}", str(p.get("port"))) for p in ports if p.get("name")]
    for i, p in enumerate(ports):
        proto = str(p.get("protocol") or "TCP")
        url = f"{proto.lower()}://{ip}:{p.get('port')}"
        if i == 0:
            out.append((f"{prefix}_PORT", url))
        pp = f"{prefix}_PORT_{p.get('port')}_{proto.upper()}"
        out += [(pp, url), (f"{pp}_PROTO", proto.lower()), (f"{pp}_PORT", str(p.get("port"))), (f"{pp}_ADDR", ip)]
    return out


def _has_cluster_ip(svc: dict) -> bool:
    spec = svc.get("spec") or {}
    return spec.get("type") != "ExternalName" and spec.get("clusterIP") not in (None, "", "None")


def service_env(namespace: str, enable_links: bool, services: list[dict]) -> dict[str, str]:
    """The service environment variables the kubelet gives a container of a pod in `namespace`
    (`services`: the store's Services, all namespaces): those of the namespace's Services with a
    ClusterIP when `enable_links`, and the `kubernetes` Service of `default` in every pod (a Service of
    the pod's own namespace of that name wins). Sorted by Service name for a stable order."""
    chosen: dict[str, dict] = {}
    for svc in services:
        md = svc.get("metadata") or {}
        if not _has_cluster_ip(svc):
            continue
        if enable_links and md.get("namespace", "default") == namespace:
            chosen[md["name"]] = svc
    for svc in services:
        md = svc.get("metadata") or {}
        if md.get("namespace", "default") == "default" and md.get("name") == "kubernetes" \
                and _has_cluster_ip(svc) and "kubernetes" not in chosen:
            chosen["kubernetes"] = svc
    out: dict[str, str] = {}
    for name in sorted(chosen):
        out.update(_service_vars(chosen[name]))
    return out


def container_env(pod: dict, cname: str, objs: dict, runtime: Runtime,
                  services: list[dict] | None = None) -> tuple[dict[str, str], list[str], list[str]]:
    """(environment, command, args) of container `cname` of `pod` (the store's object); `objs` maps
    (kind, namespace, name) to the store's ConfigMaps and Secrets; `services`: the store's Services
    (None: no service variables). Raises EnvError with the kubelet's message when a source that is
    not optional is missing."""
    md = pod.get("metadata") or {}
    ns = md.get("namespace", "default")
    spec = pod.get("spec") or {}
    container = next((c for c in spec.get("containers") or [] if c.get("name") == cname), None)
    if container is None:
        raise EnvError(f"pod has no container {cname!r}")
    links = (spec.get("enableServiceLinks") is not False)
    svc_env = service_env(ns, links, services) if services is not None else {}
    env: dict[str, str] = {}
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix") or ""
        for kind, ref_key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            ref = src.get(ref_key)
            if ref is None:
                continue
            obj = _referenced(objs, kind, ns, ref)
            if obj is None:
                continue
            if kind == "ConfigMap":
                items = {k: str(v) for k, v in (obj.get("data") or {}).items()}
            else:
                items = {k: secret_value(obj, k) or "" for k in
                         list(obj.get("data") or {}) + list(obj.get("stringData") or {})}
            for k, v in items.items():
                env[prefix + k] = v
    for e in container.get("env") or []:
        name = e.get("name", "")
        vf = e.get("valueFrom")
        if not vf:
            env[name] = expand(str(e.get("value") or ""), {**svc_env, **env})
            continue
        if "fieldRef" in vf:
            env[name] = field_value(pod, (vf["fieldRef"] or {}).get("fieldPath", ""), runtime)
        elif "resourceFieldRef" in vf:
            ref = vf["resourceFieldRef"] or {}
            target = container
            if ref.get("containerName"):
                target = next((c for c in spec.get("containers") or [] if c.get("name") == ref["containerName"]),
                              container)
            env[name] = resource_value(target, ref.get("resource", ""), ref.get("divisor"), runtime.allocatable)
        else:
            for kind, ref_key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                ref = vf.get(ref_key)
                if ref is None:
                    continue
                obj = _referenced(objs, kind, ns, ref)
                if obj is None:
                    break
                key = ref.get("key", "")
                value = (str(obj["data"][key]) if key in (obj.get("data") or {}) else None) \
                    if kind == "ConfigMap" else secret_value(obj, key)
                if value is None:
                    if ref.get("optional"):
                        break
                    raise EnvError(f"couldn't find key {key} in {kind} {ns}/{ref.get('name', '')}")
                env[name] = value
                break
    env = {**svc_env, **env}   # the container's own variables win
    command = [expand(str(x), env) for x in container.get("command") or []]
    args = [expand(str(x), env) for x in container.get("args") or []]
    return env, command, args


def uses_kubelet_env(container: dict) -> bool:
    """Whether a container's environment or command line needs the kubelet (references to resolve)."""
    if container.get("envFrom"):
        return True
    if any(e.get("valueFrom") or "$" in str(e.get("value") or "") for e in container.get("env") or []):
        return True
    return any("$(" in str(x) for x in (container.get("command") or []) + (container.get("args") or []))
