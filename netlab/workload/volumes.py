"""A pod's volumes as the kubelet sets them up: what directory each volume is, which files it holds,
and what each container mounts where. Pure: `plan(pod, base, objs, runtime)` decides; the kernel layer
(netlab/dataplane/volumes.py) makes the directories and files and the container's launch mounts them.

- emptyDir: a directory of the pod (`base/<pod uid>/<volume>`), shared by its containers, removed with
  the pod (`medium: Memory` is noted: no tmpfs of its own, see dataplane/volumes.py).
- hostPath: the node's path (netlab's nodes share the host's filesystem), checked by its `type` as the
  kubelet checks it (DirectoryOrCreate and FileOrCreate create what is missing).
- configMap, secret: a file per key (`items` choose keys and paths), mode `defaultMode` (0644) or the
  item's `mode`; a secret's data decoded; a missing object or key stops the pod's containers from
  starting unless `optional` (then the volume is empty).
- downwardAPI: a file per item (fieldRef, resourceFieldRef; labels and annotations as `key="value"`
  lines); projected: the files of its configMap, secret and downwardAPI sources together.
- anything else (persistentVolumeClaim...): an empty directory of the pod (no storage in netlab).

A mount of `subPath` mounts that path inside the volume. The files are written as the kubelet's atomic
writer does: a new timestamped directory, the `..data` symbolic link switched to it in one rename, and
each top-level name a link through `..data` (so a container never reads a half-written update).
"""
from __future__ import annotations

import base64
import binascii
import posixpath
from dataclasses import dataclass, field

from .podenv import EnvError, Runtime, field_value, resource_value

DEFAULT_MODE = 0o644


class VolumeError(Exception):
    """Why the kubelet cannot set a pod's volume up (its containers do not start: FailedMount)."""


@dataclass
class VolumeDir:
    name: str
    kind: str
    path: str                             # the directory (or hostPath's path) on the host
    files: dict[str, tuple[bytes, int]] | None = None    # relative path -> (content, mode): an atomic-writer volume
    memory: bool = False                  # emptyDir medium Memory (no tmpfs of its own)
    host_type: str | None = None          # hostPath's type ("" : no check)


@dataclass
class Mount:
    source: str
    target: str
    read_only: bool = False


@dataclass
class VolumePlan:
    dirs: list[VolumeDir] = field(default_factory=list)
    mounts: dict[str, list[Mount]] = field(default_factory=dict)   # container name -> its mounts, in order


def _decode(value) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise VolumeError("invalid base64 data") from None


def _object_files(kind: str, obj: dict | None, src: dict, ns: str, name: str) -> dict[str, tuple[bytes, int]]:
    """The files of a configMap or secret source (a volume, or a projected volume's source)."""
    what = "configmap" if kind == "configMap" else "secret"
    if obj is None:
        if src.get("optional"):
            return {}
        raise VolumeError(f'{what} "{name}" not found')
    data: dict[str, bytes] = {}
    if kind == "configMap":
        data.update({k: str(v).encode() for k, v in (obj.get("data") or {}).items()})
        data.update({k: _decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    else:
        data.update({k: _decode(v) for k, v in (obj.get("data") or {}).items()})
        data.update({k: str(v).encode() for k, v in (obj.get("stringData") or {}).items()})
    mode = src.get("defaultMode", DEFAULT_MODE)
    items = src.get("items")
    if not items:
        return {k: (v, mode) for k, v in data.items()}
    out = {}
    for item in items:
        key = item.get("key")
        if key not in data:
            if src.get("optional"):
                continue
            raise VolumeError(f"{what} {ns}/{name} has no key {key!r} (named by items)")
        out[item["path"]] = (data[key], item.get("mode", mode))
    return out


def _downward_files(pod: dict, src: dict, runtime: Runtime, default_mode: int) -> dict[str, tuple[bytes, int]]:
    md = pod.get("metadata") or {}
    out = {}
    for item in src.get("items") or []:
        mode = item.get("mode", default_mode)
        if item.get("fieldRef"):
            path = item["fieldRef"].get("fieldPath", "")
            if path in ("metadata.labels", "metadata.annotations"):
                values = md.get(path.split(".")[1]) or {}
                text = "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
            else:
                try:
                    text = field_value(pod, path, runtime)
                except EnvError as e:
                    raise VolumeError(str(e)) from None
        elif item.get("resourceFieldRef"):
            ref = item["resourceFieldRef"]
            cname = ref.get("containerName")
            target = next((c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == cname), None)
            if target is None:
                raise VolumeError(f"resourceFieldRef names no container of the pod ({cname!r})")
            text = resource_value(target, ref.get("resource", ""), ref.get("divisor"), runtime.allocatable)
        else:
            continue
        out[item["path"]] = (text.encode(), mode)
    return out


def plan(pod: dict, base: str, objs: dict, runtime: Runtime) -> VolumePlan:
    """The volumes of `pod` (the store's object): `base` is the directory of the lab's pod volumes,
    `objs` maps (kind, namespace, name) to the store's ConfigMaps and Secrets. Raises VolumeError with
    the kubelet's reason when a volume cannot be set up."""
    md = pod.get("metadata") or {}
    ns = md.get("namespace", "default")
    uid = md.get("uid") or f"{ns}_{md.get('name', '')}"
    spec = pod.get("spec") or {}
    out = VolumePlan()
    by_name: dict[str, VolumeDir] = {}
    for vol in spec.get("volumes") or []:
        name = vol["name"]
        kind = next(k for k in vol if k != "name")
        src = vol.get(kind) or {}
        own = posixpath.join(base, uid, name)
        where = f'volume "{name}"'
        try:
            if kind == "hostPath":
                d = VolumeDir(name, kind, posixpath.normpath(src["path"]), host_type=src.get("type", "") or "")
            elif kind == "emptyDir":
                d = VolumeDir(name, kind, own, memory=src.get("medium") == "Memory")
            elif kind in ("configMap", "secret"):
                oname = src.get("name") if kind == "configMap" else src.get("secretName")
                obj = objs.get(("ConfigMap" if kind == "configMap" else "Secret", ns, oname))
                d = VolumeDir(name, kind, own, _object_files(kind, obj, src, ns, oname))
            elif kind == "downwardAPI":
                d = VolumeDir(name, kind, own, _downward_files(pod, src, runtime, src.get("defaultMode", DEFAULT_MODE)))
            elif kind == "projected":
                files: dict[str, tuple[bytes, int]] = {}
                mode = src.get("defaultMode", DEFAULT_MODE)
                for s in src.get("sources") or []:
                    for sk in ("configMap", "secret"):
                        if isinstance(s.get(sk), dict):
                            sub = dict(s[sk])
                            sub.setdefault("defaultMode", mode)
                            obj = objs.get(("ConfigMap" if sk == "configMap" else "Secret", ns, sub.get("name")))
                            files.update(_object_files(sk, obj, sub, ns, sub.get("name")))
                    if isinstance(s.get("downwardAPI"), dict):
                        files.update(_downward_files(pod, s["downwardAPI"], runtime, mode))
                d = VolumeDir(name, kind, own, files)
            else:   # persistentVolumeClaim and other storage: an empty directory of the pod
                d = VolumeDir(name, kind, own)
        except VolumeError as e:
            raise VolumeError(f"MountVolume.SetUp failed for {where}: {e}") from None
        out.dirs.append(d)
        by_name[name] = d
    for c in spec.get("containers") or []:
        mounts = []
        for m in c.get("volumeMounts") or []:
            d = by_name.get(m.get("name"))
            if d is None:
                raise VolumeError(f'volumeMount "{m.get("name")}" names no volume of the pod')
            source = d.path
            if m.get("subPath"):
                source = posixpath.join(d.path, m["subPath"])
            # configMap, secret, downwardAPI and projected volumes are always read-only in the container
            ro = bool(m.get("readOnly")) or d.files is not None
            mounts.append(Mount(source, m["mountPath"], ro))
        out.mounts[c["name"]] = mounts
    return out


@dataclass
class Launch:
    """How the kubelet starts one container: its environment (valueFrom, envFrom and $(VAR) resolved),
    its command line ($(VAR) expanded), its mounts; or why it cannot (`error`, `reason`: the container
    waits: CreateContainerConfigError for its env, ContainerCreating for a volume)."""
    env: dict[str, str] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)
    error: str = ""
    reason: str = ""


def launches(pod: dict, base: str, objs: dict, runtime: Runtime,
             services: list[dict] | None = None) -> tuple[VolumePlan | None, dict[str, Launch]]:
    """The volume plan of `pod` (None when a volume cannot be set up) and the Launch of each of its
    containers (by name); `services`: the Services whose variables the containers get."""
    from .podenv import container_env
    out: dict[str, Launch] = {}
    try:
        vp: VolumePlan | None = plan(pod, base, objs, runtime)
        verr = ""
    except VolumeError as e:
        vp, verr = None, str(e)
    for c in (pod.get("spec") or {}).get("containers") or []:
        name = c.get("name", "")
        if verr:
            out[name] = Launch(error=verr, reason="ContainerCreating")
            continue
        try:
            env, command, args = container_env(pod, name, objs, runtime, services)
        except EnvError as e:
            out[name] = Launch(error=str(e), reason="CreateContainerConfigError")
            continue
        out[name] = Launch(env, _program(c.get("image"), command, args, env),
                           list(vp.mounts.get(name, [])) if vp else [])
    return vp, out


def _program(image, command: list[str], args: list[str], env: dict[str, str]) -> list[str]:
    """The argv the container runs: a well-known image's own program where netlab runs one as a real
    process (agnhost connect, netlab.dev/cluster-dns: workload/images.py), else command + args."""
    from . import goflags
    from .images import ImageError, recognise
    try:
        got = recognise(image, command, args, env)
    except (ImageError, goflags.FlagError):   # refused when the pod was parsed: not reached
        got = None
    return list(got.command) if got is not None and got.command is not None else command + args
