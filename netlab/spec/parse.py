"""Parse and validate a scenario: one YAML stream with a `Cluster` document and Kubernetes manifests.

Everything here is pure: no root, no kernel. Errors are `SpecError`s that name the document and the
field, and say how to fix it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import SpecError
from . import kinds
from .fields import shown, type_name
from .kinds import Context, ObjectDoc
from .limits import (BUILTIN_NAMESPACES, CLUSTER_API_VERSIONS, MAX_BYTES, MAX_CLUSTER_NODES, MAX_DEPTH,  # noqa: F401
                     MAX_DOCUMENTS, MAX_LAB_NAME, MAX_NODES, MAX_PODS, MAX_STREAM_NODES)
from .types import Scenario


def load_file(path: str | Path) -> Scenario:
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
    return load_text(text, str(path))


def load_text(text: str, source: str = "<scenario>") -> Scenario:
    if len(text) > MAX_BYTES:
        raise SpecError(source, f"is more than {MAX_BYTES} bytes", "split it")
    docs = _yaml_documents(text, source)
    return parse_documents(docs, source)


def _yaml_documents(text: str, source: str) -> list[Any]:
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
    for node in nodes:
        size = _expanded_size(node, {}, 0)
        if size > MAX_NODES:
            raise SpecError(source, f"a document expands to more than {MAX_NODES} YAML nodes (aliases?)",
                            "write the values out instead of nesting aliases")
        try:
            docs.append(yaml.constructor.SafeConstructor.construct_document(_Constructor(), node))
        except yaml.YAMLError as e:
            raise _yaml_error(e, source) from None
        except (ValueError, TypeError, RecursionError, IndexError, AttributeError, KeyError, OverflowError) as e:
            # PyYAML's constructors fail like this on some tagged values (`!!float ''` is an IndexError)
            first = (str(e).splitlines() or [type(e).__name__])[0]
            raise SpecError(source, f"is not valid YAML: {first}", "fix the YAML") from None
    return docs


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
        if kind in ("Pod", "Deployment", "Service"):
            return f"{kind} {ns or 'default'}/{shown(name)[1:-1]}"
        return f"{kind} {shown(name)[1:-1]}"
    if kind:
        return f"{kind} (document {index + 1})"
    return f"document {index + 1}"


def parse_documents(docs: list[Any], source: str = "<scenario>") -> Scenario:
    flat: list[tuple[int, dict]] = []
    for i, doc in enumerate(docs):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise SpecError(f"document {i + 1}", f"must be a mapping with apiVersion and kind, not {type_name(doc)}",
                            "each YAML document must be a Kubernetes-style object")
        if doc.get("kind") == "List":
            items = doc.get("items")
            if not isinstance(items, list):
                raise SpecError(f"List (document {i + 1})", "items must be a list", "write items as '- item' lines")
            for item in items:
                if not isinstance(item, dict):
                    raise SpecError(f"List (document {i + 1})", f"items must be objects, not {type_name(item)}",
                                    "each item must be a Kubernetes-style object")
                if item.get("kind") == "List":
                    raise SpecError(f"List (document {i + 1})", "has a List inside its items",
                                    "move the inner List's items into the outer List")
                flat.append((i, item))
        else:
            flat.append((i, doc))
    ctx = Context(ignored=[])
    cluster_parser = next(k for k in kinds.registered() if k.cluster)
    clusters = [(i, d) for i, d in flat if d.get("kind") == cluster_parser.kind]
    if len(clusters) > 1:
        raise SpecError(_describe(clusters[1][1], clusters[1][0]), "is a second Cluster document",
                        "a scenario has exactly one Cluster document")
    if clusters:
        i, d = clusters[0]
        cluster_parser.parse(ObjectDoc(d, _describe(d, i), i), ctx)
    else:
        cluster_parser.parse(ObjectDoc({"kind": cluster_parser.kind}, cluster_parser.kind, -1), ctx)

    for i, doc in flat:
        kind = doc.get("kind")
        where = _describe(doc, i)
        if kind == cluster_parser.kind:
            continue
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
    _check_references(ctx)
    return Scenario(name=ctx.name, nodes=ctx.nodes, networking=ctx.networking, namespaces=ctx.namespaces,
                    pods=ctx.pods, deployments=ctx.deployments, services=ctx.services,
                    expectations=ctx.expectations, ignored=ctx.ignored, source=source)


def _check_references(ctx: Context) -> None:
    """What one object says about another: namespaces and nodes exist; the pod count is in bounds."""
    pods, deployments, services = ctx.pods, ctx.deployments, ctx.services
    known_ns = set(BUILTIN_NAMESPACES) | set(ctx.namespaces)
    for obj, kind in [(p, "Pod") for p in pods] + [(d, "Deployment") for d in deployments] + \
                     [(s, "Service") for s in services]:
        if obj.namespace not in known_ns:
            raise SpecError(f"{kind} {obj.namespace}/{obj.name}", f"metadata.namespace '{obj.namespace}' does not exist",
                            f"add a Namespace document named {obj.namespace}")
    node_names = {n.name for n in ctx.nodes}
    for obj, where in [(p.template, f"Pod {p.namespace}/{p.name}") for p in pods] + \
                      [(d.template, f"Deployment {d.namespace}/{d.name}") for d in deployments]:
        path = "spec.nodeName" if where.startswith("Pod") else "spec.template.spec.nodeName"
        if obj.node_name is not None and obj.node_name not in node_names:
            raise SpecError(where, f"{path} '{obj.node_name}' is not a node of this cluster",
                            f"use one of: {', '.join(sorted(node_names))}")
    total = len(pods) + sum(d.replicas for d in deployments)
    if total > MAX_PODS:
        raise SpecError("scenario", f"asks for {total} pods, more than netlab's limit of {MAX_PODS}",
                        "lower the replicas")
