"""`netlab label` and `netlab annotate`: kubectl label and kubectl annotate on a live lab's objects (pods,
namespaces, nodes, services, deployments, and any other kind the lab's store holds).

The labels (annotations) are written to the lab's store, in one transaction for every object named (all or nothing),
and the lab's control loop is woken, as the other verbs do: its next pass reads the pods' and the
namespaces' labels from the store into the model (Services' endpoints, NetworkPolicies' selectors).
A pod is not made again for a label change (labels are not part of what decides that: Pod.fingerprint).
An annotation is read where Kubernetes reads one (a Deployment's kubernetes.io/change-cause goes to its new
ReplicaSet and `rollout history`, a Service's or an Ingress's annotations to the add-ons that read them).
The pure part (arguments, checks, kubectl's messages) is netlab/controllers/labeling.py.
"""
from __future__ import annotations

import click

from ..controllers import labeling
from . import kubeutil
from .kubeutil import (CLUSTER_SCOPED, SINGULAR, KubeError, kind_of, kubectl_errors, lab_option, namespace_option,
                       out)


def _targets(store, resources: list[str], namespace: str, all_namespaces: bool, select_all: bool,
             selector: str | None, verb: str = "label") -> tuple[str, list[tuple[str, str | None, str]]]:
    """(kind, [(kind, namespace, name)]) of the resource arguments: TYPE NAME..., TYPE/NAME..., or TYPE
    with --all / -l SELECTOR."""
    if not resources:
        raise click.UsageError("give a resource: TYPE NAME..., TYPE/NAME... or TYPE with --all or -l SELECTOR "
                               f"(e.g. netlab {verb} pod a team=blue)")
    if all("/" in r for r in resources):
        kinds = {kind_of(r.split("/", 1)[0]) for r in resources}
        names = [(kind_of(r.split("/", 1)[0]), r.split("/", 1)[1]) for r in resources]
        if any(not n for _, n in names):
            raise click.UsageError("give TYPE/NAME, e.g. pod/a")
        if select_all or selector:
            raise KubeError("error: name cannot be provided when a selector or --all is specified")
        kind = names[0][0] if len(kinds) == 1 else ""
    elif any("/" in r for r in resources):
        raise KubeError("error: there is no need to specify a resource type as a separate argument when passing "
                        f"arguments in resource/name form (e.g. 'netlab {verb} pod/a' instead of 'netlab {verb} pod "
                        "pod/a')")
    else:
        kind = kind_of(resources[0])
        names = [(kind, n) for n in resources[1:]]
        if names and (select_all or selector):
            raise KubeError("error: name cannot be provided when a selector or --all is specified")
        if not names and not (select_all or selector):
            raise KubeError(f"error: resource(s) were provided, but no name was specified; give {resources[0]} "
                            "NAME, --all or -l SELECTOR")
    if names:
        return kind, [(k, None if k in CLUSTER_SCOPED else namespace, n) for k, n in names]
    ns = None if kind in CLUSTER_SCOPED or all_namespaces else namespace
    objs = store.list(kind, ns, label_selector=selector or None)
    if kind == "Namespace":   # the API server's own namespaces are there too
        objs = labeling.namespaces_view(objs, selector)
    return kind, [(kind, None if kind in CLUSTER_SCOPED else o["metadata"].get("namespace", "default"),
                   o["metadata"]["name"]) for o in objs]


def _options(what: str):
    """The arguments and options label and annotate share (kubectl's), for a map of `what`s."""
    def wrap(f):
        for option in reversed([
                click.argument("items", nargs=-1, required=True, metavar="TYPE NAME... KEY=VALUE... KEY-..."),
                click.option("--overwrite", is_flag=True, help=f"Change {what} that already has another value "
                                                               "(without it: an error, nothing changed)."),
                namespace_option,
                click.option("-A", "--all-namespaces", is_flag=True,
                             help="With --all or -l: objects of every namespace."),
                click.option("--all", "select_all", is_flag=True, help="Every object of TYPE (in the namespace)."),
                click.option("-l", "--selector", help="The objects of TYPE with these labels (app=web,tier!=db)."),
                lab_option, kubectl_errors]):
            f = option(f)
        return f
    return wrap


def _change(items: tuple[str, ...], field: str, verb: str, parse, decide, namespace: str, all_namespaces: bool,
            select_all: bool, selector: str | None, lab: str | None) -> None:
    """label's and annotate's work on metadata.`field`: the settings read (`parse`: exit 2 before anything is
    read), every object named checked by `decide(obj, add, remove)` -> (the new map or None, the line's word,
    warnings) before any is written, all written in one transaction, the loop asked for."""
    resources = [a for a in items if not labeling.is_setting(a)]
    settings = [a for a in items if labeling.is_setting(a)]
    if not settings:
        raise KubeError(f"error: at least one {verb} update is required; write KEY=VALUE or KEY-")
    add, remove = parse(settings)
    t = kubeutil.open_target(lab)
    store = t.store
    command = "label" if field == "labels" else "annotate"
    kind, targets = _targets(store, resources, namespace, all_namespaces, select_all, selector, verb=command)
    if not targets:   # --all or -l matched nothing
        click.echo("No resources found", err=True)
        return
    lines, warnings = [], []
    with store.transaction():   # every object checked before any is written: all or nothing
        writes = []
        for k, ns, name in targets:
            obj = kubeutil.get_or_builtin(store, k, ns, name)   # (the store gets a built-in namespace now)
            new_map, word, said = decide(obj, add, remove)
            warnings += said
            if new_map is not None:
                writes.append((obj, new_map))
            lines.append(f"{SINGULAR[k]}/{name} {word}")
        for obj, new_map in writes:
            new = dict(obj, metadata=dict(obj["metadata"], **{field: new_map}))
            if not new_map:
                new["metadata"].pop(field)
            if "resourceVersion" in obj["metadata"]:
                store.update(new)
            else:
                store.create(new)
    if writes:
        t.wrote()
    for w in warnings:
        click.echo(w, err=True)
    for line in lines:
        out(line)


@click.command()
@_options("a label")
def label(items: tuple[str, ...], overwrite: bool, namespace: str, all_namespaces: bool, select_all: bool,
          selector: str | None, lab: str | None) -> None:
    """Set (KEY=VALUE) or remove (KEY-) labels of objects, like kubectl label: label pod a team=blue,
    label ns x ns=x, label pods --all tier-, label node n1 zone=a.

    \b
    TYPE: pod (po), ns, node (no), svc, deploy and the lab's other kinds. A label that already has
    another value is changed only with --overwrite ("error: 'K' already has a value (V), and
    --overwrite is false", exit 1, nothing changed). Prints TYPE/NAME labeled, unlabeled or not
    labeled. A bad key or value: one line, exit 2, nothing changed. The lab's control loop applies
    what the labels select at once (Services' endpoints, NetworkPolicies); a pod keeps running (same
    UID and IP): labels do not restart it.
    """
    def decide(obj, add, remove):
        said = [f'label "{key}" not found.' for key in labeling.missing_removals(obj, remove)]
        return (*labeling.relabel(obj, add, remove, overwrite), said)
    _change(items, "labels", "label", labeling.parse, decide, namespace, all_namespaces, select_all, selector, lab)


@click.command()
@_options("an annotation")
def annotate(items: tuple[str, ...], overwrite: bool, namespace: str, all_namespaces: bool, select_all: bool,
             selector: str | None, lab: str | None) -> None:
    """Set (KEY=VALUE) or remove (KEY-) annotations of objects, like kubectl annotate:
    annotate deploy web kubernetes.io/change-cause="v2: new image", annotate svc web team=blue,
    annotate pods --all owner-.

    \b
    TYPE: as for label. A value is any text (everything after the first '='). An annotation that
    already has another value is changed only with --overwrite ("error: --overwrite is false but found
    the following declared annotation(s): 'K' already has a value (V)", exit 1, nothing changed), except
    kubernetes.io/change-cause, which `rollout history` shows for the Deployment's next revision. Prints
    TYPE/NAME annotated. A bad key, or annotations over 256 KiB: one line, exit 2, nothing changed.
    """
    def decide(obj, add, remove):   # kubectl says annotated whether or not anything changed
        return labeling.reannotate(obj, add, remove, overwrite), "annotated", []
    _change(items, "annotations", "annotation", labeling.parse_annotations, decide, namespace, all_namespaces,
            select_all, selector, lab)


COMMANDS = (label, annotate)

__all__ = ["COMMANDS", "annotate", "label"]
