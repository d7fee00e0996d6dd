"""A pod spec's env, envFrom, volumes and volumeMounts, checked as the API server checks them.

The values that come from other objects or from the pod itself (valueFrom, envFrom, `$(VAR)`) are
resolved by the kubelet when it starts the container (netlab/workload/podenv.py); the files of the
volumes are planned by netlab/workload/volumes.py. This module only checks what is written and keeps
it: the literal env values, the volumes as written, the mounts.
"""
from __future__ import annotations

import posixpath
import re

from ..errors import SpecError
from .fields import Fields, shown
from .types import Volume, VolumeMount

ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName",
               "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs")
SUBSCRIPTED = re.compile(r"^metadata\.(labels|annotations)\['[^']*'\]$")
RESOURCES = ("limits.cpu", "limits.memory", "limits.ephemeral-storage", "requests.cpu", "requests.memory",
             "requests.ephemeral-storage")
VALUE_FROM = ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
HOST_PATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice",
                   "BlockDevice")
# volume sources netlab gives files to; persistentVolumeClaim and the others are an empty directory
VOLUME_KINDS = ("emptyDir", "hostPath", "configMap", "secret", "downwardAPI", "projected")
NO_STORAGE = ("persistentVolumeClaim", "ephemeral", "nfs", "iscsi", "csi", "cephfs", "rbd", "glusterfs", "fc",
              "azureDisk", "azureFile", "awsElasticBlockStore", "gcePersistentDisk", "cinder", "flexVolume",
              "vsphereVolume", "portworxVolume", "photonPersistentDiskVolume", "scaleIO", "storageos",
              "quobyte", "flocker", "gitRepo", "image")


def parse_env(c: Fields, cname: str) -> tuple[dict[str, str], bool]:
    """(literal values, whether the kubelet has anything to resolve) of a container's env and envFrom."""
    env: dict[str, str] = {}
    kubelet = False
    for e in c.maps("env"):
        ename = e.str("name", required=True)
        if not ENV_NAME.match(ename):
            raise e.error("name", f"{shown(ename)} is not a valid environment variable name",
                          "use letters, digits, '_', '-' and '.', not starting with a digit")
        value = e.str("value", "")
        if e.has("valueFrom"):
            if value:
                raise e.error("valueFrom", "may not be specified when `value` is not empty",
                              "keep value or valueFrom")
            _value_from(e.map("valueFrom"), cname)
            kubelet = True
        elif "$" in value:
            kubelet = True
        env[ename] = value
        e.done()
    for i, src in enumerate(c.list("envFrom")):
        where = f"{c.at('envFrom')}[{i}]"
        if not isinstance(src, dict):
            raise c.error(f"envFrom[{i}]", "must be a mapping", "write configMapRef: {name: ...} or secretRef")
        refs = [k for k in ("configMapRef", "secretRef") if src.get(k) is not None]
        unknown = [k for k in src if k not in ("configMapRef", "secretRef", "prefix")]
        if unknown:
            raise c.error(f"envFrom[{i}].{unknown[0]}", "is not a field of EnvFromSource",
                          "use configMapRef, secretRef and prefix")
        if len(refs) != 1:
            raise c.error(f"envFrom[{i}]", "must specify exactly one of configMapRef or secretRef"
                          if refs else "must specify one of configMapRef or secretRef", "keep one of them")
        ref = src[refs[0]]
        if not isinstance(ref, dict) or not isinstance(ref.get("name"), str) or not ref.get("name"):
            raise c.error(f"envFrom[{i}].{refs[0]}.name", "is required", f"name the {refs[0][:-3]} at {where}")
        kubelet = True
    return env, kubelet


def _value_from(vf: Fields, cname: str) -> None:
    given = [k for k in VALUE_FROM if vf.has(k)]
    if not given:
        raise vf.error(None, "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or "
                       "`secretKeyRef`", "add one of them")
    if len(given) > 1:
        raise vf.error(given[1], "may not have more than one field specified at a time", f"keep only {given[0]}")
    ref = vf.map(given[0])
    if given[0] == "fieldRef":
        path = ref.str("fieldPath", required=True)
        api = ref.str("apiVersion", "v1")
        if api != "v1":
            raise ref.error("apiVersion", f"{shown(api)} is not supported", "use v1")
        if path not in FIELD_PATHS and not SUBSCRIPTED.match(path):
            raise ref.error("fieldPath", f"Unsupported value: {shown(path)}: supported values: "
                            + ", ".join(f'"{p}"' for p in FIELD_PATHS[:4]) + " ...",
                            "use metadata.name, metadata.namespace, metadata.uid, metadata.labels['KEY'], "
                            "metadata.annotations['KEY'], spec.nodeName, spec.serviceAccountName, status.podIP(s) "
                            "or status.hostIP(s)")
    elif given[0] == "resourceFieldRef":
        res = ref.str("resource", required=True)
        if res not in RESOURCES:
            raise ref.error("resource", f"Unsupported value: {shown(res)}", "use " + ", ".join(RESOURCES))
        ref.skip("containerName", "divisor")
    else:
        ref.str("name", required=True)
        ref.str("key", required=True)
        ref.bool("optional")
    ref.done()
    vf.done()


def parse_volumes(spec: Fields) -> list[Volume]:
    out: list[Volume] = []
    for v in spec.maps("volumes"):
        name = v.str("name", required=True)
        if not DNS_LABEL.match(name) or len(name) > 63:
            raise v.error("name", f"{shown(name)} is not a valid volume name",
                          "use at most 63 lowercase letters, digits and '-'")
        if any(x.name == name for x in out):
            raise v.error("name", f'Duplicate value: "{name}"', "give each volume its own name")
        kinds = [k for k in v.data if k != "name"]
        if not kinds:
            raise v.error(None, "must specify a volume type", "add e.g. emptyDir: {}")
        if len(kinds) > 1:
            raise v.error(str(kinds[1]), "may not specify more than 1 volume type", f"keep only {kinds[0]}")
        kind = str(kinds[0])
        src = v.raw(kind, {})
        if not isinstance(src, dict):
            raise v.error(kind, "must be a mapping", f"write {kind}: {{...}}")
        _check_source(v, kind, src)
        if kind not in VOLUME_KINDS:
            v.ignored.append(f"{v.where}: {v.at(kind)} (no storage in netlab: the volume is an empty directory)")
        out.append(Volume(name, kind, src))
    return out


def _rel_path(v: Fields, key: str, path) -> None:
    if not isinstance(path, str) or not path:
        raise v.error(key, "is required", "give a relative file path")
    if path.startswith("/"):
        raise v.error(key, f"Invalid value: {shown(path)}: must be a relative path", "remove the leading '/'")
    if ".." in path.split("/"):
        raise v.error(key, f"Invalid value: {shown(path)}: must not contain '..'", "name a path inside the volume")


def _check_source(v: Fields, kind: str, src: dict) -> None:
    at = kind
    if kind == "hostPath":
        path = src.get("path")
        if not isinstance(path, str) or not path:
            raise v.error(f"{at}.path", "is required", "give the node's path")
        if src.get("type", "") not in HOST_PATH_TYPES:
            raise v.error(f"{at}.type", f"Unsupported value: {shown(src.get('type'))}",
                          "use one of " + ", ".join(repr(t) for t in HOST_PATH_TYPES))
    elif kind == "emptyDir":
        if src.get("medium", "") not in ("", "Memory"):
            raise v.error(f"{at}.medium", f"Unsupported value: {shown(src.get('medium'))}", 'use "" or "Memory"')
        if src.get("medium") == "Memory":
            v.ignored.append(f"{v.where}: {v.at(at)}.medium (no tmpfs of its own: a directory of the pod under "
                             "/run/netlab)")
    elif kind in ("configMap", "secret"):
        key = "name" if kind == "configMap" else "secretName"
        if not isinstance(src.get(key), str) or not src.get(key):
            raise v.error(f"{at}.{key}", "is required", f"name the {kind} to mount")
        _items(v, at, src)
    elif kind == "projected":
        for i, s in enumerate(src.get("sources") or []):
            if isinstance(s, dict) and "serviceAccountToken" in s:
                v.ignored.append(f"{v.where}: {v.at(at)}.sources[{i}].serviceAccountToken (netlab issues no "
                                 "service account token: no file is written)")
            for sub in ("configMap", "secret"):
                if isinstance(s, dict) and isinstance(s.get(sub), dict):
                    if not s[sub].get("name"):
                        raise v.error(f"{at}.sources[{i}].{sub}.name", "is required", f"name the {sub}")
                    _items(v, f"{at}.sources[{i}].{sub}", s[sub])
    elif kind == "downwardAPI":
        for i, item in enumerate(src.get("items") or []):
            _rel_path(v, f"{at}.items[{i}].path", (item or {}).get("path"))
    mode = src.get("defaultMode")
    if mode is not None and (not isinstance(mode, int) or not 0 <= mode <= 0o777):
        raise v.error(f"{at}.defaultMode", f"Invalid value: {shown(mode)}: must be a number between 0 and 0777 "
                      "(octal), both inclusive", "write e.g. 0644 or 420")


def _items(v: Fields, at: str, src: dict) -> None:
    for i, item in enumerate(src.get("items") or []):
        if not isinstance(item, dict) or not item.get("key"):
            raise v.error(f"{at}.items[{i}].key", "is required", "name the key of the object")
        _rel_path(v, f"{at}.items[{i}].path", item.get("path"))
        mode = item.get("mode")
        if mode is not None and (not isinstance(mode, int) or not 0 <= mode <= 0o777):
            raise v.error(f"{at}.items[{i}].mode", f"Invalid value: {shown(mode)}: must be a number between 0 and "
                          "0777 (octal), both inclusive", "write e.g. 0644 or 420")


def parse_mounts(c: Fields, volumes: list[Volume]) -> list[VolumeMount]:
    out: list[VolumeMount] = []
    names = {v.name for v in volumes}
    for m in c.maps("volumeMounts"):
        name = m.str("name", required=True)
        if name not in names:
            raise m.error("name", f'Not found: "{name}"', "declare the volume under spec.volumes")
        path = m.str("mountPath", required=True)
        if not path:
            raise m.error("mountPath", "Required value", "give the path in the container")
        if not path.startswith("/"):
            raise m.error("mountPath", f"{shown(path)} is not an absolute path", "start it with '/'")
        if any(posixpath.normpath(x.mount_path) == posixpath.normpath(path) for x in out):
            raise m.error("mountPath", f'Invalid value: "{path}": must be unique', "mount one volume per path")
        sub = m.str("subPath", "")
        if sub:
            _rel_path(m, "subPath", sub)
        m.skip("mountPropagation", "subPathExpr", "recursiveReadOnly")
        out.append(VolumeMount(name, path, m.bool("readOnly"), sub))
        m.done()
    return out


def references(pspec: dict) -> list[tuple[str, str, bool, str]]:
    """(kind, name, optional, field path) of the ConfigMaps and Secrets a pod spec's volumes and env
    name: what must exist for its containers to start."""
    out = []
    for i, vol in enumerate(pspec.get("volumes") or []):
        if not isinstance(vol, dict):
            continue
        if isinstance(vol.get("configMap"), dict):
            cm = vol["configMap"]
            out.append(("ConfigMap", cm.get("name"), bool(cm.get("optional")), f"spec.volumes[{i}].configMap.name"))
        if isinstance(vol.get("secret"), dict):
            s = vol["secret"]
            out.append(("Secret", s.get("secretName"), bool(s.get("optional")), f"spec.volumes[{i}].secret.secretName"))
        if isinstance(vol.get("projected"), dict):
            for j, s in enumerate(vol["projected"].get("sources") or []):
                for sk, kind in (("configMap", "ConfigMap"), ("secret", "Secret")):
                    if isinstance((s or {}).get(sk), dict):
                        out.append((kind, s[sk].get("name"), bool(s[sk].get("optional")),
                                    f"spec.volumes[{i}].projected.sources[{j}].{sk}.name"))
    for i, c in enumerate(pspec.get("containers") or []):
        if not isinstance(c, dict):
            continue
        for j, e in enumerate(c.get("env") or []):
            vf = (e or {}).get("valueFrom") or {}
            for sk, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                if isinstance(vf.get(sk), dict):
                    out.append((kind, vf[sk].get("name"), bool(vf[sk].get("optional")),
                                f"spec.containers[{i}].env[{j}].valueFrom.{sk}.name"))
        for j, src in enumerate(c.get("envFrom") or []):
            for sk, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                if isinstance((src or {}).get(sk), dict):
                    out.append((kind, src[sk].get("name"), bool(src[sk].get("optional")),
                                f"spec.containers[{i}].envFrom[{j}].{sk}.name"))
    return out


def pod_specs_of(doc: dict) -> list[tuple[str, dict]]:
    """(path prefix, pod spec) of a manifest: a Pod's spec, a workload's template (spec.template.spec),
    a CronJob's (spec.jobTemplate.spec.template.spec)."""
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return []
    if doc.get("kind") == "Pod":
        return [("", spec)]
    for prefix, path in (("spec.template.", ("template", "spec")),
                         ("spec.jobTemplate.spec.template.", ("jobTemplate", "spec", "template", "spec"))):
        node = spec
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            return [(prefix, node)]
    return []


def check_references(documents: list[dict], existing: set[tuple[str, str, str]] = frozenset()) -> None:
    """Refuse a pod (or a workload's pod template) whose volumes or env name a ConfigMap or Secret that is
    neither among `documents` nor `existing` ((kind, namespace, name) of the lab's store), unless the
    reference is optional: its containers could never start."""
    have = set(existing)
    for d in documents:
        if isinstance(d, dict) and d.get("kind") in ("ConfigMap", "Secret"):
            md = d.get("metadata") or {}
            have.add((d["kind"], md.get("namespace") or "default", md.get("name")))
    for d in documents:
        if not isinstance(d, dict):
            continue
        md = d.get("metadata") or {}
        ns = md.get("namespace") or "default"
        for prefix, pspec in pod_specs_of(d):
            for kind, name, optional, path in references(pspec):
                if optional or (kind, ns, name) in have:
                    continue
                raise SpecError(f"{d.get('kind')} {ns}/{md.get('name')}",
                                f"{prefix}{path}: {kind} {name!r} does not exist in namespace {ns}",
                                f"add a {kind} named {name!r} to the manifests (or apply it first), or set "
                                "optional: true")


def stored_sources(store, applied: bool = True) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of the ConfigMaps and Secrets in a lab's store (`applied=False`: only
    those no apply wrote, which `up`'s prune keeps)."""
    out = set()
    for kind in ("ConfigMap", "Secret"):
        for obj in store.list(kind):
            md = obj.get("metadata") or {}
            if not applied and "kubectl.kubernetes.io/last-applied-configuration" in (md.get("annotations") or {}):
                continue
            out.add((kind, md.get("namespace") or "default", md.get("name")))
    return out
