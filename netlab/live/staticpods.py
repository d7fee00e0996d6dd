"""Static pods: pods defined by manifest files in one node's directory, run by that node's kubelet,
not by a controller (the kubelet's staticPodPath).

Each node of a lab has its directory, /run/netlab/<lab>/manifests/<node>/ (made by the first pass
that looks; root only, as the whole lab directory). Every file in it ending in .yaml, .yml or .json
(hidden files skipped, as the kubelet skips them) holds one Pod (v1). The node's kubelet (the lab's
control loop, at each heartbeat; a node stopped with `netlab node stop` is not looked at) makes a
mirror pod of each in the store, so that `get pods` shows it: named <pod>-<node>, in the file's
namespace, bound to the node (spec.nodeName), with the annotations kubernetes.io/config.mirror
and kubernetes.io/config.hash (a hash of the node, the file's path and its content: the static pod's
UID, which is also the UID the dataplane knows the pod by), kubernetes.io/config.source: file, and an
ownerReference to the Node. As in Kubernetes, static pods tolerate every NoExecute taint.

- `delete pod <pod>-<node>` does not stop the pod: the kubelet removes the mirror at once and makes it
  again (a new object UID, the same static pod UID: the running pod is left alone).
- A changed file: the pod is made anew (its hash, hence its UID, changed).
- A removed file: the mirror is deleted gracefully (terminationGracePeriodSeconds), which stops the
  pod as any deleted pod stops.
- An invalid file (not YAML, not one Pod, a field netlab refuses, a name that does not fit, a
  namespace that does not exist, a name another pod has): reported, not fatal: a Warning event
  FailedStaticPod on the Node naming the file and the problem (once per file content) and a line in
  the control loop's log; the node's other static pods go on.

`decide` is pure (files, nodes, pods, namespaces -> store actions and problems); `StaticPods.sync`
reads the directories and applies it.
"""
from __future__ import annotations

import hashlib
import os

import yaml

from ..controllers.base import Action, create, delete
from ..controllers.validation import default_pod_spec
from ..errors import SpecError
from ..spec.limits import BUILTIN_NAMESPACES
from ..store.meta import fmt_time, is_deleting

MIRROR = "kubernetes.io/config.mirror"
HASH = "kubernetes.io/config.hash"
SOURCE = "kubernetes.io/config.source"
SEEN = "kubernetes.io/config.seen"
SUFFIXES = (".yaml", ".yml", ".json")


def manifests_dir(lab: str, node: str) -> str:
    from ..dataplane import layout
    return os.path.join(layout.lab_dir(lab), "manifests", node)


def read_manifests(directory: str) -> list[tuple[str, str]]:
    """(path, text) of the manifest files of a node's directory, in name order."""
    out = []
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return out
    for name in names:
        path = os.path.join(directory, name)
        if name.startswith(".") or not name.endswith(SUFFIXES) or not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                out.append((path, f.read(1 << 20)))
        except OSError as e:
            out.append((path, f"\0unreadable: {e}"))
    return out


def is_mirror(pod: dict) -> bool:
    return MIRROR in (pod["metadata"].get("annotations") or {})


def static_uid(pod: dict) -> str | None:
    """The static pod's UID (its config hash) when `pod` is a mirror pod, else None."""
    ann = pod["metadata"].get("annotations") or {}
    return ann.get(HASH) if MIRROR in ann else None


def mirror_pod(node: dict, path: str, text: str, namespaces, now: float) -> dict:
    """The mirror pod of manifest `path` (content `text`) on `node`; SpecError when it is invalid."""
    from ..spec.kinds import REGISTRY, Context, ObjectDoc
    where = f"static pod file {path}"
    if text.startswith("\0unreadable: "):
        raise SpecError(where, text[len("\0unreadable: "):], "make it readable by root")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SpecError(where, f"is not valid YAML ({str(e).splitlines()[0]})", "fix the file") from None
    if not isinstance(doc, dict) or doc.get("kind") != "Pod" or doc.get("apiVersion") != "v1":
        raise SpecError(where, "does not hold one Pod (apiVersion: v1, kind: Pod)", "put one Pod in each file")
    ctx = Context(ignored=[])
    try:
        REGISTRY["Pod"].parse(ObjectDoc(doc, where, 0), ctx)
    except SpecError as e:
        raise (ctx.problems[0] if ctx.problems else e) from None
    if ctx.problems:
        raise ctx.problems[0]
    md = doc.get("metadata") or {}
    node_name = node["metadata"]["name"]
    name = f"{md['name']}-{node_name}"
    if len(name) > 63:
        raise SpecError(where, f"mirror pod name {name} is longer than 63 characters", "shorten metadata.name")
    ns = md.get("namespace") or "default"
    if ns not in namespaces:
        raise SpecError(where, f"metadata.namespace '{ns}' does not exist", f"create the Namespace {ns} first")
    uid = hashlib.sha256(f"{node_name}\0{path}\0{text}".encode()).hexdigest()[:32]
    spec = default_pod_spec(doc.get("spec") or {})
    spec["nodeName"] = node_name
    tols = list(spec.get("tolerations") or [])
    if not any(t.get("operator") == "Exists" and not t.get("key") and t.get("effect") == "NoExecute" for t in tols):
        tols.append({"operator": "Exists", "effect": "NoExecute"})
    spec["tolerations"] = tols
    ann = dict(md.get("annotations") or {})
    ann.update({MIRROR: uid, HASH: uid, SOURCE: "file", SEEN: fmt_time(now)})
    meta = {"name": name, "namespace": ns, "labels": dict(md.get("labels") or {}), "annotations": ann,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node_name,
                                 "uid": node["metadata"].get("uid", ""), "controller": True}]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec,
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True",
                                                           "lastProbeTime": None, "lastTransitionTime": fmt_time(now)}]}}


def decide(nodes: list[dict], files: dict[str, list[tuple[str, str]]], pods: list[dict], namespaces,
           now: float) -> tuple[list[Action], list[tuple[dict, str, str]]]:
    """(store actions, problems as (node, file, message)): a mirror pod for each valid manifest of
    each node in `files` (the nodes whose kubelet looked), none for the rest (see the module doc)."""
    by_key = {(p["metadata"].get("namespace", "default"), p["metadata"]["name"]): p for p in pods}
    looked = set(files)
    wanted: dict[tuple[str, str], dict] = {}
    problems: list[tuple[dict, str, str]] = []
    for node in nodes:
        for path, text in files.get(node["metadata"]["name"], []):
            try:
                m = mirror_pod(node, path, text, namespaces, now)
            except SpecError as e:
                problems.append((node, path, str(e)))
                continue
            key = (m["metadata"]["namespace"], m["metadata"]["name"])
            cur = by_key.get(key)
            if key in wanted or (cur is not None and not is_mirror(cur)):
                problems.append((node, path, f"static pod file {path}: pod {key[0]}/{key[1]} exists already; "
                                             "rename the pod in the file"))
                continue
            wanted[key] = m
    actions: list[Action] = []
    for key, m in wanted.items():
        cur = by_key.get(key)
        if cur is None:
            actions.append(create(m))
        elif is_deleting(cur) or static_uid(cur) != m["metadata"]["annotations"][HASH]:
            # the mirror was deleted (it comes back) or the file changed (the pod is made anew)
            actions.append(delete(cur, grace_seconds=0))
            actions.append(create(m))
    for key, cur in by_key.items():
        if not is_mirror(cur) or key in wanted or is_deleting(cur):
            continue
        node = (cur.get("spec") or {}).get("nodeName")
        if node in looked:   # its file is gone: the pod stops as a deleted pod does
            actions.append(delete(cur, grace_seconds=(cur.get("spec") or {}).get("terminationGracePeriodSeconds", 30)))
    return actions, problems


class StaticPods:
    """The static-pod part of the lab's kubelets (kept by LiveLab: which problems were reported)."""

    def __init__(self, lab: str):
        self.lab = lab
        self.reported: dict[str, str] = {}   # file -> the problem last reported for it

    def sync(self, store, now: float, down=()) -> list[str]:
        """Look at the nodes' directories and write the mirror pods; returns log lines of new problems."""
        from ..controllers.runner import apply_actions
        from ..store.events import record_event
        nodes = [n for n in store.list("Node") if n["metadata"]["name"] not in down and not is_deleting(n)]
        files = {}
        for n in nodes:
            d = manifests_dir(self.lab, n["metadata"]["name"])
            if not os.path.isdir(d):
                # root only, the parent too (os.makedirs gives only the leaf its mode)
                for path in (os.path.dirname(d), d):
                    os.makedirs(path, mode=0o700, exist_ok=True)
                    os.chmod(path, 0o700)
            files[n["metadata"]["name"]] = read_manifests(d)
        namespaces = set(BUILTIN_NAMESPACES) | {ns["metadata"]["name"] for ns in store.list("Namespace")}
        # read-only pods from the store's snapshot cache (decide builds new objects; 10,000 pods parsed
        # again on every heartbeat was seconds of a big lab's bring-up)
        actions, problems = decide(nodes, files, store.snapshot(("Pod",))[0]["Pod"], namespaces, now)
        if actions:
            apply_actions(store, actions, now)
        lines = []
        seen = set()
        for node, path, msg in problems:
            seen.add(path)
            if self.reported.get(path) == msg:
                continue
            self.reported[path] = msg
            lines.append(f"kubelet {node['metadata']['name']}: {msg}")
            record_event(store, node, "Warning", "FailedStaticPod", msg, "kubelet", now)
        self.reported = {p: m for p, m in self.reported.items() if p in seen}
        return lines
