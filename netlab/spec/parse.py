"""Parse and validate a scenario: one YAML stream with a `Cluster` document and Kubernetes manifests.

Everything here is pure: no root, no kernel. Errors are `SpecError`s that name the document and the
field, and say how to fix it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import SpecError, SpecProblems
from . import kinds
from .fields import Fields, shown, type_name
from .kinds import Context, ObjectDoc
from .kinds.inert import STORED
from .capacity import MachineLimits, Readings
from .limits import (BUILTIN_NAMESPACES, CLUSTER_API_VERSIONS, MAX_BYTES, MAX_DEPTH,  # noqa: F401
                     MAX_DOCUMENTS, MAX_LAB_NAME, MAX_NODES, MAX_PROBLEMS, MAX_STREAM_NODES)
from .types import Scenario


def load_file(path: str | Path, limits: MachineLimits | None = None) -> Scenario:
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as e:
        raise SpecError("", f"cannot read scenario {path}: {e.strerror}", "give the path of a YAML file") from None
    if size > MAX_BYTES:
        raise SpecError(str(path), f"is {size} bytes, more than the {MAX_BYTES} a scenario may have",
                        "split it or remove what netlab does not need")
    if not p.is_file():
        raise SpecError("", f"scenario {path} is not a file", "give the path of a YAML file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SpecError(str(path), "is not UTF-8 text", "save the scenario as UTF-8 YAML") from None
    except OSError as e:
        raise SpecError("", f"cannot read scenario {path}: {e.strerror}", "check the path") from None
    return load_text(text, str(path), limits)


def load_text(text: str, source: str = "<scenario>", limits: MachineLimits | None = None) -> Scenario:
    return load_texts([(text, source)], source, limits)


def load_texts(inputs: list[tuple[str, str]], source: str | None = None,
               limits: MachineLimits | None = None) -> Scenario:
    """One scenario from several (text, source) inputs, as `kubectl apply -f a -f b` takes them.
    `limits`: what the machine holds (netlab/dataplane/machine.py reads it; None: only the kernel's
    constant limits are checked, the pure paths' default)."""
    if sum(len(text) for text, _ in inputs) > MAX_BYTES:
        raise SpecError(source or inputs[0][1], f"is more than {MAX_BYTES} bytes", "split it")
    docs: list[Any] = []
    dups: dict[int, list[SpecError]] = {}
    # with several inputs, errors name the file of a document and number documents within it
    origins: list[tuple[str, int]] | None = [] if len(inputs) > 1 else None
    for text, src in inputs:
        found, duplicates = _yaml_documents(text, src)
        if origins is not None:
            origins.extend((src, j) for j in range(len(found)))
        for i, items in duplicates.items():
            where = _where(found[i], len(docs) + i, origins)
            dups[len(docs) + i] = [SpecError(where, f"duplicate key {path} at line {line} (first at line {first})",
                                             "remove one of them (or separate documents with ---)")
                                   for path, line, first in items]
        docs.extend(found)
    return parse_documents(docs, source or inputs[0][1], dups, origins, limits)


def load_document(text: str, source: str) -> Any:
    """One YAML (or JSON) document read as strictly as a scenario's (duplicate keys, depth and size refused,
    one line naming `source`): `patch -p`'s patch. An empty text is None."""
    found, duplicates = _yaml_documents(text, source)
    for path, line, first in duplicates.get(0, []):
        raise SpecError(source, f"duplicate key {path} at line {line} (first at line {first})", "remove one of them")
    if len(found) > 1:
        raise SpecError(source, f"holds {len(found)} documents", "give one patch")
    return found[0] if found else None


def _where(doc: Any, i: int, origins: list[tuple[str, int]] | None) -> str:
    """How errors name document `i` (of all inputs): `_describe`, after its file when there are several."""
    if origins is None:
        return _describe(doc, i) if isinstance(doc, dict) else f"document {i + 1}"
    src, j = origins[i]
    return f"{src}: " + (_describe(doc, j) if isinstance(doc, dict) else f"document {j + 1}")


def _duplicate_keys(root: Any) -> list[tuple[str, int, int]]:
    """(key path, line, line of the first one) of every key given twice in one mapping: PyYAML keeps
    the last silently, kubectl refuses the document. Aliased nodes are looked at once; a path is a
    linked (parent, step) pair, made into text only for a duplicate (this runs on every node)."""
    out, done = [], set()
    stack: list[tuple[Any, Any]] = [(root, None)]
    collections = (yaml.MappingNode, yaml.SequenceNode)
    while stack:
        node, path = stack.pop()
        if id(node) in done:
            continue
        done.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                scalar = isinstance(key, yaml.ScalarNode)
                if scalar:
                    if key.tag == "tag:yaml.org,2002:merge":
                        continue
                    ident = (key.tag, key.value)
                    if ident in first:
                        out.append(((path, "." + key.value), key.start_mark.line + 1, first[ident]))
                    else:
                        first[ident] = key.start_mark.line + 1
                if isinstance(value, collections):
                    stack.append((value, (path, "." + key.value if scalar else ".?")))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((value, (path, f"[{i}]")) for i, value in enumerate(node.value)
                         if isinstance(value, collections))
    return sorted(((_path_text(p), line, first_line) for p, line, first_line in out), key=lambda d: d[1])


def _path_text(path: Any) -> str:
    steps = []
    while path is not None:
        path, step = path
        steps.append(step)
    text = "".join(reversed(steps)).lstrip(".")
    return shown(text, 200)[1:-1]


def _yaml_documents(text: str, source: str) -> tuple[list[Any], dict[int, list[tuple[str, int, int]]]]:
    """The documents of a YAML stream, and the keys given twice in each (by document index)."""
    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        _check_depth(loader_cls(text), source)
        loader = loader_cls(text)
        try:
            nodes = []
            while loader.check_node():
                nodes.append(loader.get_node())
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        raise _yaml_error(e, source) from None
    except (ValueError, RecursionError) as e:
        raise SpecError(source, f"is not valid YAML: {e}", "fix the YAML syntax") from None
    docs = []
    dups = {}
    for node in nodes:
        size = _expanded_size(node, {}, 0)
        if size > MAX_NODES:
            raise SpecError(source, f"a document expands to more than {MAX_NODES} YAML nodes (aliases?)",
                            "write the values out instead of nesting aliases")
        found = _duplicate_keys(node)
        if found:
            dups[len(docs)] = found
        try:
            docs.append(yaml.constructor.SafeConstructor.construct_document(_Constructor(), node))
        except yaml.YAMLError as e:
            raise _yaml_error(e, source) from None
        except (ValueError, TypeError, RecursionError, IndexError, AttributeError, KeyError, OverflowError) as e:
            # PyYAML's constructors fail like this on some tagged values (`!!float ''` is an IndexError)
            first = (str(e).splitlines() or [type(e).__name__])[0]
            raise SpecError(source, f"is not valid YAML: {first}", "fix the YAML") from None
    return docs, dups


def _yaml_error(e: yaml.YAMLError, source: str) -> SpecError:
    """The problem and its position, not the context line ("while constructing a mapping")."""
    mark = getattr(e, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(e, "problem", None) or (str(e).splitlines() or [type(e).__name__])[0]
    return SpecError(source, f"is not valid YAML{where}: {problem}", "fix the YAML syntax")


def _check_depth(loader: Any, source: str) -> None:
    """Refuse deeply nested collections before composing: the C composer recurses without a limit
    (a few ten thousand '[' overflow the stack and kill the process). Also refuse, while only reading
    events (fast), a stream with too many nodes or documents: composing an 8 MB file of millions of
    tiny nodes would take many seconds before the limits below could say no."""
    try:
        depth = nodes = docs = 0
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.NodeEvent):
                nodes += 1
                if nodes > MAX_STREAM_NODES:
                    raise SpecError(source, f"has more than {MAX_STREAM_NODES} YAML nodes",
                                    "a scenario this large is not useful; split it or write less")
            elif isinstance(event, yaml.DocumentStartEvent):
                docs += 1
                if docs > MAX_DOCUMENTS:
                    raise SpecError(source, f"has more than {MAX_DOCUMENTS} YAML documents", "split it")
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    raise SpecError(source, f"nests collections more than {MAX_DEPTH} levels deep at line "
                                    f"{mark.line + 1}, column {mark.column + 1}", "flatten the YAML")
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    except yaml.YAMLError as e:
        # libyaml (in PyYAML >= 6.0.4's wheels) has a nesting limit of its own, and its scanner reads
        # far ahead in flow context, so it may stop before the events above reach netlab's limit: the
        # message is netlab's either way.
        problem = str(getattr(e, "problem", None) or e)
        if "nesting" not in problem:
            raise
        mark = getattr(e, "problem_mark", None)
        where = f" (the YAML library stopped at line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise SpecError(source, f"nests collections more than {MAX_DEPTH} levels deep{where}",
                        "flatten the YAML") from None
    finally:
        loader.dispose()


class _Constructor(yaml.constructor.SafeConstructor):
    pass


def _expanded_size(node: Any, memo: dict[int, int], depth: int) -> int:
    """Number of nodes the document has once aliases are expanded (memoised, so it is cheap)."""
    if depth > 200:
        return MAX_NODES + 1
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = MAX_NODES + 1  # a cycle counts as too big
    if isinstance(node, yaml.SequenceNode):
        total = 1 + sum(_expanded_size(n, memo, depth + 1) for n in node.value)
    elif isinstance(node, yaml.MappingNode):
        total = 1 + sum(_expanded_size(k, memo, depth + 1) + _expanded_size(v, memo, depth + 1)
                        for k, v in node.value)
    else:
        total = 1
    memo[key] = min(total, MAX_NODES + 1)
    return memo[key]


def _describe(doc: dict, index: int) -> str:
    kind = doc.get("kind") if isinstance(doc.get("kind"), str) else None
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    name = meta.get("name") if isinstance(meta.get("name"), str) else None
    ns = meta.get("namespace") if isinstance(meta.get("namespace"), str) else None
    if kind and name:
        if kind in ("Pod", "Deployment", "Service", "ReplicaSet", "ConfigMap", "Secret", "ServiceAccount",
                    "EndpointSlice", "Endpoints", "StatefulSet", "DaemonSet", "Job", "CronJob"):
            return f"{kind} {ns or 'default'}/{shown(name)[1:-1]}"
        return f"{kind} {shown(name)[1:-1]}"
    if kind:
        return f"{kind} (document {index + 1})"
    return f"document {index + 1}"


def parse_documents(docs: list[Any], source: str = "<scenario>",
                    duplicates: dict[int, list[SpecError]] | None = None,
                    origins: list[tuple[str, int]] | None = None, limits: MachineLimits | None = None) -> Scenario:
    """The scenario of a list of documents. Every problem found is reported (one line each, up to
    MAX_PROBLEMS): each document is checked even when one before it is refused. `origins`: the
    (file, index in it) of each document when they come from several inputs (errors name the file).
    `limits`: what the machine holds (see load_texts)."""
    duplicates = duplicates or {}
    ctx = Context(ignored=[], limits=limits)
    flat: list[tuple[int, dict]] = []
    for i, doc in enumerate(docs):
        if i in duplicates:  # which of two values was meant is not known: the document is not used
            ctx.problems.extend(duplicates[i])
            continue
        try:
            flat.extend((i, item) for item in _objects(doc, i, origins))
        except SpecError as e:
            ctx.problems.append(e)
    if not flat and not ctx.problems:
        raise SpecError(source, "has no objects (kubectl would say: no objects passed to apply)",
                        "write a Cluster document or Kubernetes manifests in it, or run `netlab up` with no file "
                        "to build the built-in default lab")
    cluster_parser = next(k for k in kinds.registered() if k.cluster)
    clusters = [(i, d) for i, d in flat if d.get("kind") == cluster_parser.kind]
    for i, d in clusters[1:]:
        ctx.problems.append(SpecError(_where(d, i, origins), "is a second Cluster document",
                                      "a scenario has exactly one Cluster document"))
    if clusters:
        i, d = clusters[0]
        kinds.attempt(ctx.problems, cluster_parser.parse, ObjectDoc(d, _where(d, i, origins), i), ctx)
    if ctx.networking is None:  # no Cluster document, or a refused one: the others are checked against the default
        default = Context(ignored=ctx.ignored if not clusters else [])
        cluster_parser.parse(ObjectDoc({"kind": cluster_parser.kind}, cluster_parser.kind, -1), default)
        ctx.name, ctx.nodes, ctx.networking, ctx.expectations = \
            default.name, default.nodes, default.networking, default.expectations
    for where, doc in ctx.generated:   # what the Cluster document stands for (its loadBalancer: pools)
        kinds.attempt(ctx.problems, kinds.REGISTRY[doc["kind"]].parse, ObjectDoc(doc, where, -1), ctx)
    for i, doc in flat:
        if doc.get("kind") != cluster_parser.kind:
            kinds.attempt(ctx.problems, _parse_object, i, doc, ctx, origins)
    if not ctx.problems:
        kinds.attempt(ctx.problems, _check_references, ctx)
    if len(ctx.problems) == 1:
        raise ctx.problems[0]
    if ctx.problems:
        raise SpecProblems(ctx.problems, MAX_PROBLEMS)
    return Scenario(name=ctx.name, nodes=ctx.nodes, networking=ctx.networking,
                    namespaces=list(dict.fromkeys(ctx.namespaces)),
                    pods=ctx.pods, deployments=ctx.deployments, services=ctx.services,
                    expectations=ctx.expectations, ignored=ctx.ignored, source=source,
                    replicasets=ctx.replicasets, inert=ctx.inert, addons=ctx.addons, slices=ctx.slices,
                    statefulsets=ctx.statefulsets, templates=ctx.templates,
                    policies=ctx.policies, namespace_labels=ctx.namespace_labels,
                    documents=[d for _, d in flat if d.get("kind") != cluster_parser.kind] +
                    [d for _, d in ctx.generated])


def _objects(doc: Any, i: int, origins: list[tuple[str, int]] | None = None) -> list[dict]:
    """The objects of one document: itself, or the items of a List."""
    if doc is None:
        return []
    if not isinstance(doc, dict):
        raise SpecError(_where(doc, i, origins), f"must be a mapping with apiVersion and kind, not {type_name(doc)}",
                        "each YAML document must be a Kubernetes-style object")
    if doc.get("kind") != "List":
        return [doc]
    where = _where({"kind": "List"}, i, origins)
    items = doc.get("items")
    if items is None:  # absent: a misspelt `item:` is named as the unknown field it is
        raise Fields(doc, where, "", [], "List").missing("items", "must be a list", "write items as '- item' lines")
    if not isinstance(items, list):
        raise SpecError(where, "items must be a list", "write items as '- item' lines")
    for item in items:
        if not isinstance(item, dict):
            raise SpecError(where, f"items must be objects, not {type_name(item)}",
                            "each item must be a Kubernetes-style object")
        if item.get("kind") == "List":
            raise SpecError(where, "has a List inside its items", "move the inner List's items into the outer List")
    return items


def _parse_object(i: int, doc: dict, ctx: Context, origins: list[tuple[str, int]] | None = None) -> None:
    kind = doc.get("kind")
    where = _where(doc, i, origins)
    if kind is None or kind == "":
        raise SpecError(where, "has no kind", f"set kind to one of {kinds.kinds_text()}")
    parser = kinds.REGISTRY.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise SpecError(where, f"kind {shown(kind)} is not supported", f"netlab understands {kinds.kinds_text()}")
    api = doc.get("apiVersion")
    if api not in parser.api_versions:
        raise SpecError(where, f"apiVersion {shown(api) if api is not None else 'is missing and'} "
                        f"does not match kind {kind}", f"use apiVersion: {parser.api_versions[0]}")
    parser.parse(ObjectDoc(doc, where, i), ctx)


def _check_references(ctx: Context) -> None:
    """What one object says about another: namespaces and nodes exist; the pod count is in bounds.
    An object is named as its document is (after its file, when there are several inputs)."""
    pods, deployments, services = ctx.pods, ctx.deployments, ctx.services
    known_ns = set(BUILTIN_NAMESPACES) | set(ctx.namespaces)

    def where(kind: str, obj: Any) -> str:
        return ctx.seen.get((kind, obj.namespace, obj.name), f"{kind} {obj.namespace}/{obj.name}")
    replicasets = ctx.replicasets
    for obj, kind in [(p, "Pod") for p in pods] + [(d, "Deployment") for d in deployments] + \
                     [(r, "ReplicaSet") for r in replicasets] + [(s, "Service") for s in services] + \
                     [(s, s.kind) for s in ctx.slices] + [(s, "StatefulSet") for s in ctx.statefulsets]:
        if obj.namespace not in known_ns:
            raise SpecError(where(kind, obj), f"metadata.namespace '{obj.namespace}' does not exist",
                            f"add a Namespace document named {obj.namespace}")
    # ConfigMap, Secret, ServiceAccount, DaemonSet, Job, CronJob, NetworkPolicy (add-ons' objects are not checked: their
    # namespace comes with the add-on's install)
    for (kind, ns, _), at in ctx.seen.items():
        if kind in STORED + ("DaemonSet", "Job", "CronJob", "NetworkPolicy") and ns not in known_ns:
            raise SpecError(at, f"metadata.namespace '{ns}' does not exist", f"add a Namespace document named {ns}")
    node_names = {n.name for n in ctx.nodes}
    for obj, kind in [(p, "Pod") for p in pods] + [(d, "Deployment") for d in deployments] + \
                     [(r, "ReplicaSet") for r in replicasets] + [(s, "StatefulSet") for s in ctx.statefulsets]:
        path = "spec.nodeName" if kind == "Pod" else "spec.template.spec.nodeName"
        node_name = obj.template.node_name
        if node_name is not None and node_name not in node_names:
            raise SpecError(where(kind, obj), f"{path} '{node_name}' is not a node of this cluster",
                            f"use one of: {', '.join(sorted(node_names))}")
    workloads = [(where("Pod", p), "", 1, p.template) for p in pods] + \
        [(where(kind, o), "spec.replicas", o.replicas, o.template)
         for kind, objs in (("Deployment", deployments), ("ReplicaSet", replicasets),
                            ("StatefulSet", ctx.statefulsets)) for o in objs]
    check_machine(ctx.name, len(ctx.nodes), workloads, ctx.limits)


def _runs_program(template) -> bool:
    """Whether a pod of `template` runs a program of the host's (a process of its own), not only
    netlab's built-in server (one process per node)."""
    return any((c.command or c.args) and not c.apps for c in template.containers)


def check_machine(lab: str, nodes: int, workloads: list[tuple[str, str, int, Any]],
                  limits: MachineLimits | None, live_pods: int | None = None) -> None:
    """Refuse pods beyond what the machine holds (`capacity.pod_limits`): the error names the document
    whose pods cross the binding limit (in the order of `workloads`: the parser's is Pods first, then
    Deployments, ReplicaSets and StatefulSets), the limit (its value and where it comes from) and the fix.
    `workloads`: (where, field, pods, pod template) of every object that makes pods; a template None (a
    stored one the parser refuses now, as `set image` can make) is counted as running a program.
    `up` (`live_pods` None): the scenario's pods, a document named with its field ("spec.replicas 5 brings
    the scenario to ..."). `apply` and `scale` (netlab/live/manifests.py: check_room): `live_pods` pods in
    lab `lab` already, `pods` those a workload adds ("5 more pods bring lab NAME to ...")."""
    workloads = [w for w in workloads if w[2] > 0]
    if not workloads:
        return
    limits = limits or MachineLimits(Readings())
    present = live_pods or 0
    total = present + sum(n for _, _, n, _ in workloads)
    runs = sum(n for _, _, n, t in workloads if t is None or _runs_program(t))
    over = limits.pods_over(lab, total, nodes, runs / total)
    if over is None:
        return
    running = present
    for at, path, n, _ in workloads:
        running += n
        if running > over.value:
            break
    if live_pods is not None:
        says = f"{n} more pods bring lab {lab}"
    else:
        says = f"{path} {n} brings the scenario" if path else "brings the scenario"
    raise SpecError(at, f"{says} to {total} pods, but {over.text('pods')}", over.fix)


def check_scenario_machine(scenario: Scenario, limits: MachineLimits) -> None:
    """A parsed scenario against what the machine holds (`netlab up` through the Python API, which may
    have parsed it without `limits`): the same refusals as the parser's."""
    over = limits.nodes_over(scenario.name, len(scenario.nodes))
    if over is not None:
        raise SpecError(f"Cluster {scenario.name}",
                        f"nodes lists {len(scenario.nodes)} nodes, but {over.text('nodes')}", over.fix)
    check_machine(scenario.name, len(scenario.nodes), scenario_workloads(scenario), limits)


def scenario_workloads(scenario: Scenario) -> list[tuple[str, str, int, Any]]:
    """`check_machine`'s workloads of a parsed scenario (named as the parser names their documents)."""
    return [(f"Pod {p.namespace}/{p.name}", "", 1, p.template) for p in scenario.pods] + \
        [(f"{kind} {o.namespace}/{o.name}", "spec.replicas", o.replicas, o.template)
         for kind, objs in (("Deployment", scenario.deployments), ("ReplicaSet", scenario.replicasets),
                            ("StatefulSet", scenario.statefulsets)) for o in objs]
