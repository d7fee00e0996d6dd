"""kubectl's verbs on a live lab: apply, diff, replace, delete, scale, set image|env, patch, edit, wait, describe
(rollout is in rollout.py, cordon/uncordon/drain in nodes.py, get in get.py and getlive.py).

Each verb reads and writes the lab's store (netlab/live, netlab/store) and leaves the rest to the
lab's control loop, which it starts if it is not running; the pure parts (messages, checks) are
netlab/controllers/verbs.py, validation.py and printers.py. Names, flags, output and exit codes are
kubectl's; bad input files follow netlab's rule (one line naming the document, the field and the
fix; exit 2; nothing written).
"""
from __future__ import annotations

import time

import click

from ..controllers import verbs
from ..controllers.validation import ControllerError
from ..store.meta import is_deleting, key_of
from . import kubeutil
from .kubeutil import (DRY_RUN_SUFFIX, SINGULAR, Clock, KubeError, dry_run_option, duration, get_obj, kind_of,
                       kubectl_errors, lab_option, namespace_option, not_found, ns_of, out, refs, wait_change)

FILES_HELP = ("A manifest file, a directory (its *.yaml, *.yml, *.json files in name order) or - (stdin); "
              "may be given several times.")


# ------------------------------------------------------------------ reading manifests

def read_manifests(files: tuple[str, ...], target, verb: str = "apply") -> tuple[list[dict], object]:
    """The objects of the -f inputs, read and checked by netlab/live/manifests.py."""
    from ..live import manifests
    from ..spec.sources import read_inputs
    return manifests.read_manifests(read_inputs(list(files)), target, verb)


# ------------------------------------------------------------------ apply

@click.command()
@click.option("-f", "--filename", "files", multiple=True, required=True, metavar="FILE", help=FILES_HELP)
@click.option("--prune", is_flag=True, help="Delete objects an earlier apply made that the input no longer has "
                                            "(with -l SELECTOR or --all, as kubectl).")
@click.option("-l", "--selector", help="With --prune: only objects with these labels are pruned.")
@click.option("--all", "prune_all", is_flag=True, help="With --prune: every object an earlier apply made.")
@dry_run_option
@lab_option
@kubectl_errors
def apply(files: tuple[str, ...], prune: bool, selector: str | None, prune_all: bool, dry_run: str,
          lab: str | None) -> None:
    """Create or update objects from manifests, like kubectl apply -f (Deployments, Services, Pods,
    Namespaces, EndpointSlices and Endpoints written by hand; a Cluster document is refused: nodes and
    networking change only through `up`).

    \b
    Fields set by other verbs (scale, set image ...) that the file never set are kept (kubectl's
    three-way merge). Without --prune nothing is deleted; `netlab up` applies the whole scenario
    with prune. Bad input, or more pods than this machine holds (the limits `up` checks): one line naming
    the document, field and fix, exit 2, nothing written.
    """
    from ..live import manifests
    from ..live.objects import Applied
    from ..spec.sources import read_inputs
    from .common import warn_ignored
    if prune and not selector and not prune_all:
        raise KubeError("error: all resources selected for prune without explicitly passing --all. To prune all "
                        "resources, pass the --all flag. If you did not mean to prune all resources, specify a "
                        "label selector")
    if (selector or prune_all) and not prune:
        raise click.UsageError("-l and --all are for --prune here; add --prune")
    t = kubeutil.open_target(lab)
    with kubeutil.dry_run_if(t, dry_run):
        applied = manifests.apply_manifests(t, read_inputs(list(files)), prune, selector, on_read=warn_ignored)
    for a in applied:
        line = str(a) if a.action != "recreated" else str(Applied(a.kind, a.namespace, a.name, "configured"))
        out(line + DRY_RUN_SUFFIX[dry_run])


# ------------------------------------------------------------------ diff

def diff_file_name(obj: dict) -> str:
    """kubectl diff's name of an object's file: group.version.Kind.namespace.name
    (`apps.v1.Deployment.default.web`, `v1.Service.default.web`; the namespace empty for a cluster-scoped kind)."""
    group, _, version = obj.get("apiVersion", "v1").rpartition("/")
    md = obj["metadata"]
    return (f"{group}." if group else "") + f"{version}.{obj['kind']}.{md.get('namespace') or ''}.{md['name']}"


def diff_texts(live: dict | None, merged: dict) -> tuple[str | None, str]:
    """The two files kubectl diff compares for one object: YAML, keys sorted, without status and managedFields;
    a Secret's values masked as kubectl masks them (`***`, or `*** (before)` / `*** (after)` where they differ)."""
    import yaml

    from ..live.objects import LAST_APPLIED

    def shown(o: dict) -> dict:
        o = {k: v for k, v in o.items() if k != "status"}
        o["metadata"] = {k: v for k, v in o["metadata"].items() if k != "managedFields"}
        return o
    a, b = (shown(live) if live is not None else None), shown(merged)

    def mask(old: dict, new: dict) -> None:
        for k in old.keys() | new.keys():
            same = old.get(k) == new.get(k)
            if k in old:
                old[k] = "***" if same else "*** (before)"
            if k in new:
                new[k] = "***" if same else "*** (after)"
    if merged.get("kind") == "Secret":
        for field in ("data", "stringData"):
            old, new = dict((a or {}).get(field) or {}), dict(b.get(field) or {})
            mask(old, new)
            if a is not None and field in a:
                a[field] = old
            if field in b:
                b[field] = new
        # its last applied configuration holds the values too (kubectl's diff shows them there)
        ann_a = dict(a["metadata"].get("annotations") or {}) if a is not None else {}
        ann_b = dict(b["metadata"].get("annotations") or {})
        old, new = ({k: v for k, v in ann.items() if k == LAST_APPLIED} for ann in (ann_a, ann_b))
        mask(old, new)
        ann_a.update(old)
        ann_b.update(new)
        if ann_a:
            a["metadata"]["annotations"] = ann_a
        if ann_b:
            b["metadata"]["annotations"] = ann_b
    dump = lambda o: yaml.safe_dump(o, sort_keys=True)   # noqa: E731
    return (dump(a) if a is not None else None), dump(b)


@click.command()
@click.option("-f", "--filename", "files", multiple=True, required=True, metavar="FILE", help=FILES_HELP)
@lab_option
@kubectl_errors
def diff(files: tuple[str, ...], lab: str | None) -> None:
    """Show what `apply -f` of the files would change, without changing anything, like kubectl diff -f.

    \b
      netlab diff -f web.yaml        # diff -u -N of each object as it is and as apply would leave it

    The apply runs as `apply` runs it (the same checks, three-way merge, defaults and allocations) in a
    transaction of the lab's store that is then rolled back. Each object it would create or change is written
    to a file in LIVE-* and MERGED-* directories (named as kubectl names them, without status; a Secret's
    values masked), compared by `diff -u -N` or by $KUBECTL_EXTERNAL_DIFF. Exit status 0: no differences, 1:
    differences, above 1: an error (bad input: one line, exit 2)."""
    import os
    import shlex
    import shutil
    import subprocess
    import tempfile

    from ..live import manifests
    from ..spec.sources import read_inputs
    from .common import warn_ignored
    argv = shlex.split(os.environ.get("KUBECTL_EXTERNAL_DIFF") or "diff -u -N")
    if not argv or shutil.which(argv[0]) is None:   # (before the dry run: nothing to compare with)
        raise KubeError(f"error: no diff program {argv[0] if argv else ''!r} found: install diffutils, or set "
                        "KUBECTL_EXTERNAL_DIFF")
    t = kubeutil.open_target(lab)
    changes = manifests.diff_manifests(t, read_inputs(list(files)), on_read=warn_ignored)
    base = tempfile.mkdtemp(prefix="netlab-diff-")
    try:
        live_dir, merged_dir = os.path.join(base, "LIVE"), os.path.join(base, "MERGED")
        os.mkdir(live_dir)
        os.mkdir(merged_dir)
        for _, live, merged in changes:
            before, after = diff_texts(live, merged)
            name = diff_file_name(merged)
            if before is not None:
                with open(os.path.join(live_dir, name), "w") as f:
                    f.write(before)
            with open(os.path.join(merged_dir, name), "w") as f:
                f.write(after)
        r = subprocess.run([*argv, live_dir, merged_dir], stdout=subprocess.PIPE, text=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    click.echo(r.stdout, nl=False)
    click.get_current_context().exit(r.returncode)


# ------------------------------------------------------------------ replace

@click.command()
@click.option("-f", "--filename", "files", multiple=True, required=True, metavar="FILE", help=FILES_HELP)
@click.option("--force", is_flag=True, help="Delete each object and create it anew (so a Pod's spec may change).")
@dry_run_option
@lab_option
@kubectl_errors
def replace(files: tuple[str, ...], force: bool, dry_run: str, lab: str | None) -> None:
    """Replace objects by the ones in manifests, like kubectl replace -f: each must exist, and becomes what the
    file says (a field the file leaves out is gone, not kept as `apply` keeps it).

    \b
      netlab get deploy web -o yaml > web.yaml; (edit web.yaml); netlab replace -f web.yaml

    Checked as `apply` checks a file (one line naming the document, field and fix, exit 2, nothing written). A
    resourceVersion in the file must still be the object's (else Conflict: someone changed it since); the
    status and the metadata the server sets are the object's. A Pod's spec cannot change, except with --force,
    which deletes each object and creates it again (its pods, ReplicaSets, ClusterIP are then new unless the
    file gives them). All objects are replaced in one transaction, or none."""
    from ..live import manifests
    from ..spec.sources import read_inputs
    from .common import warn_ignored
    t = kubeutil.open_target(lab)
    try:
        with kubeutil.dry_run_if(t, dry_run):
            replaced = manifests.replace_manifests(t, read_inputs(list(files)), force, on_read=warn_ignored)
    except manifests.Forbidden as e:
        raise KubeError(str(e)) from None
    for a in replaced:
        if force:
            out(f'{SINGULAR[a.kind]} "{a.name}" deleted' + DRY_RUN_SUFFIX[dry_run])
        out(f"{SINGULAR[a.kind]}/{a.name} replaced" + DRY_RUN_SUFFIX[dry_run])


# ------------------------------------------------------------------ delete

def pod_grace(pod: dict, grace_period: int, now: bool, force: bool) -> float:
    """kubectl's grace period for a pod: the pod's own (terminationGracePeriodSeconds) unless
    --grace-period N (N >= 0) or --now (1); 0 only with --force (else 1, as kubectl)."""
    if now:
        return 1
    if grace_period >= 0:
        return 0 if grace_period == 0 and force else max(grace_period, 1)
    if force:
        return 0
    return float((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))


def _delete_one(store, kind: str, ns: str | None, name: str, grace_period: int, now: bool, force: bool) -> dict:
    obj = store.try_get(kind, ns, name)
    if obj is None:
        raise not_found(kind, name)
    if kind == "Pod":
        # a pod no node runs goes at once, as the API server deletes it (no kubelet to confirm)
        grace = pod_grace(obj, grace_period, now, force) if (obj.get("spec") or {}).get("nodeName") else 0
        return store.delete(kind, ns, name, grace_seconds=grace)
    if kind == "Namespace":
        # the namespace controller's part: what is in it goes first (pods gracefully)
        from ..spec.kinds.inert import inert_kinds
        for k in ("Deployment", "ReplicaSet", "StatefulSet", "Service", "EndpointSlice", "NetworkPolicy",
                  "BGPPeer", "BGPAdvertisement", "Pod") + tuple(k for k in inert_kinds() if k != "NetworkPolicy"):
            for o in store.list(k, name):
                if not is_deleting(o):
                    _delete_one(store, k, name, o["metadata"]["name"], grace_period, now, force)
        return store.delete(kind, None, name, grace_seconds=0) if not store.list("Pod", name) else obj
    return store.delete(kind, ns, name, grace_seconds=0)


@click.command()
@click.argument("args", nargs=-1)
@click.option("-f", "--filename", "files", multiple=True, metavar="FILE", help=FILES_HELP)
@namespace_option
@click.option("-l", "--selector", help="Delete the objects of TYPE with these labels.")
@click.option("--grace-period", type=int, default=-1, show_default=True,
              help="Seconds a pod has to stop; -1: its terminationGracePeriodSeconds; 0 needs --force.")
@click.option("--now", is_flag=True, help="Grace period 1 (immediate shutdown).")
@click.option("--force", is_flag=True, help="With --grace-period=0: remove pods at once, without waiting.")
@click.option("--wait", type=click.BOOL, default=True, show_default=True,
              help="Wait until the objects are gone (--wait=false returns at once).")
@click.option("--timeout", default="0s", help="How long to wait (0: no limit).")
@click.option("--ignore-not-found", is_flag=True, help="Missing objects are not an error.")
@lab_option
@kubectl_errors
def delete(args: tuple[str, ...], files: tuple[str, ...], namespace: str, selector: str | None, grace_period: int,
           now: bool, force: bool, wait: bool, timeout: str, ignore_not_found: bool, lab: str | None) -> None:
    """Delete objects by TYPE NAME..., TYPE/NAME..., TYPE -l SELECTOR or -f FILE, like kubectl delete.

    \b
    TYPE: deploy, rs, pod (po), svc, ns, netpol. A pod stops gracefully: it leaves the Services' endpoints at
    once, then gets SIGTERM and its grace period; a Deployment's ReplicaSets and pods follow it
    (background cascading deletion).
    """
    limit = duration(timeout)
    t = kubeutil.open_target(lab)
    store = t.store
    if files:
        if args or selector:
            raise click.UsageError("give objects either with -f or as TYPE NAME, not both")
        objs, _ = read_manifests(files, t, verb="delete")
        targets = [(k, n, ns or namespace) for k, ns, n in map(key_of, objs)]
    elif selector:
        if len(args) != 1:
            raise click.UsageError("with -l give one TYPE, e.g. delete pods -l app=web")
        kind = kind_of(args[0])
        targets = [(kind, o["metadata"]["name"], namespace)
                   for o in store.list(kind, ns_of(kind, namespace), label_selector=selector)]
        if not targets:
            out("No resources found")
            return
    else:
        targets = [(k, n, namespace) for k, n in refs(args)]
    if grace_period == 0 and force:
        click.echo("Warning: Immediate deletion does not wait for confirmation that the running resource has been "
                   "terminated. The resource may continue to run on the cluster indefinitely.", err=True)
    # what existed when the command began, of the objects in Namespaces the same file deletes: one that its
    # Namespace took with it is reported deleted (kubectl finds it still there, the namespace controller being
    # slower than its next request; here the Namespace's objects go at once)
    file_namespaces = {name for kind, name, _ in targets if kind == "Namespace"} if files else set()
    existed = {(kind, ns_of(kind, ns), name) for kind, name, ns in targets
               if ns_of(kind, ns) in file_namespaces and store.try_get(kind, ns_of(kind, ns), name) is not None}
    gone, missing = [], []
    namespaces_gone: set[str] = set()
    for kind, name, ns in targets:
        try:
            with store.transaction():
                uid = (store.try_get(kind, ns_of(kind, ns), name) or {}).get("metadata", {}).get("uid")
                _delete_one(store, kind, ns_of(kind, ns), name, grace_period, now, force)
        except KubeError:
            if (kind, ns_of(kind, ns), name) in existed and ns_of(kind, ns) in namespaces_gone:
                out(f'{SINGULAR[kind]} "{name}" deleted')
                continue
            if not ignore_not_found:
                missing.append((kind, name))
            continue
        if kind == "Namespace":
            namespaces_gone.add(name)
        t.wrote()
        out(f'{SINGULAR[kind]} "{name}" deleted')
        gone.append((kind, ns_of(kind, ns), name, uid))
    if wait and gone:
        clock = Clock(limit)
        rev = store.revision()
        while True:
            # a Namespace waits for its pods, then goes (no namespace controller runs in the loop)
            for kind, ns, name, _ in gone:
                if kind == "Namespace" and store.try_get(kind, None, name) and not store.list("Pod", name):
                    store.delete(kind, None, name, grace_seconds=0)
            # as kubectl, the object deleted (its uid) is waited for: a StatefulSet's pod made again with the
            # same name, or a static pod's mirror that comes back at once, is another object
            left = [g for g in gone if (cur := store.try_get(*g[:3])) is not None
                    and cur["metadata"].get("uid", g[3]) == g[3]]
            if not left:
                break
            if clock.over():
                kind, ns, name, _ = left[0]
                raise KubeError(f"error: timed out waiting for the condition on {SINGULAR[kind].split('.')[0]}s/{name}")
            rev = wait_change(store, rev, clock)
    if missing:
        raise not_found(*missing[0])


# ------------------------------------------------------------------ scale

@click.command()
@click.argument("args", nargs=-1, required=True)
@click.option("--replicas", type=int, required=True, help="The new number of replicas.")
@click.option("--current-replicas", type=int, default=-1, help="Only if the current count is this (-1: any).")
@namespace_option
@lab_option
@kubectl_errors
def scale(args: tuple[str, ...], replicas: int, current_replicas: int, namespace: str, lab: str | None) -> None:
    """Set a Deployment's (or ReplicaSet's, StatefulSet's) replicas: scale deploy/NAME --replicas N.
    More pods than this machine holds (the limits `up` checks) are refused: exit 2, nothing written."""
    t = kubeutil.open_target(lab)
    for kind, name in refs(args):
        with t.store.transaction():
            obj = get_obj(t.store, kind, namespace, name)
            new = verbs.scale(obj, replicas)
            have = (obj.get("spec") or {}).get("replicas", 1)
            if current_replicas >= 0 and have != current_replicas:
                raise KubeError(f"error: Expected replicas to be {current_replicas}, was {have}")
            if replicas > have:
                from ..live.manifests import check_room, pods_added, stored_template
                what = f"{SINGULAR[kind]}/{name}"
                check_room(t, [(what, "spec.replicas", pods_added(t.store, new), stored_template(new, what))])
            t.store.update(new)
        t.wrote()
        out(f"{SINGULAR[kind]}/{name} scaled")


# ------------------------------------------------------------------ set image | env

@click.group("set")
def set_() -> None:
    """Change a Deployment's pod template (image, env): a change starts a rollout."""


def _deployment(store, args, namespace):
    out_ = []
    for kind, name in refs(args):
        if kind != "Deployment":
            raise KubeError(f"error: netlab sets the pod template of Deployments only, not {SINGULAR[kind]}/{name}")
        out_.append(get_obj(store, kind, namespace, name))
    return out_


def _split_args(items: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Resources (TYPE/NAME, TYPE NAME) and KEY=VALUE / KEY- settings, as kubectl separates them."""
    res = [a for a in items if "=" not in a and not a.endswith("-")]
    settings = [a for a in items if a not in res]
    return res, settings


@set_.command("image")
@click.argument("items", nargs=-1, required=True, metavar="TYPE/NAME CONTAINER=IMAGE...")
@namespace_option
@lab_option
@kubectl_errors
def set_image(items: tuple[str, ...], namespace: str, lab: str | None) -> None:
    """Set container images: set image deploy/web web=IMAGE (CONTAINER * sets every container)."""
    res, settings = _split_args(items)
    images = {}
    for s in settings:
        cname, _, image = s.partition("=")
        if not cname or not image:
            raise KubeError(f"error: {s!r}: write CONTAINER=IMAGE")
        images[cname] = image
    if not images:
        raise KubeError("error: at least one image update is required; write CONTAINER=IMAGE")
    t = kubeutil.open_target(lab)
    for d in _deployment(t.store, res, namespace):
        new, msg = verbs.set_image(d, images)
        if new != d:
            t.store.update(new)
            t.wrote()
            out(msg)


def set_env_of(d: dict, settings: list[str], containers: str = "*") -> dict:
    """The Deployment with env NAME=VALUE set and NAME- removed in the containers named (* all)."""
    from ..controllers.base import clone
    new = clone(d)
    cs = [c for c in (((new.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
          if containers in ("*", c.get("name"))]
    if not cs:
        raise ControllerError(f'unable to find container named "{containers}" in deployment/{d["metadata"]["name"]}')
    for s in settings:
        if s.endswith("-") and "=" not in s:
            key = s[:-1]
            for c in cs:
                c["env"] = [e for e in c.get("env") or [] if e.get("name") != key]
                if not c["env"]:
                    c.pop("env")
            continue
        key, _, value = s.partition("=")
        if not key:
            raise ControllerError(f"invalid env: {s!r}; write NAME=VALUE or NAME-")
        for c in cs:
            env = c.setdefault("env", [])
            hit = next((e for e in env if e.get("name") == key), None)
            if hit is None:
                env.append({"name": key, "value": value})
            else:
                hit.clear()
                hit.update({"name": key, "value": value})
    return new


@set_.command("env")
@click.argument("items", nargs=-1, required=True, metavar="TYPE/NAME NAME=VALUE|NAME-...")
@click.option("-c", "--containers", default="*", show_default=True, help="The containers to change.")
@namespace_option
@lab_option
@kubectl_errors
def set_env(items: tuple[str, ...], containers: str, namespace: str, lab: str | None) -> None:
    """Set (NAME=VALUE) or remove (NAME-) environment variables of a Deployment's containers."""
    res, settings = _split_args(items)
    if not settings:
        raise KubeError("error: at least one environment variable must be provided; write NAME=VALUE or NAME-")
    t = kubeutil.open_target(lab)
    for d in _deployment(t.store, res, namespace):
        new = set_env_of(d, settings, containers)
        if new != d:
            t.store.update(new)
            t.wrote()
            out(f"deployment.apps/{d['metadata']['name']} env updated")


# ------------------------------------------------------------------ patch

@click.command()
@click.argument("args", nargs=-1, required=True)
@click.option("-p", "--patch", "patch_text", metavar="PATCH", help="The patch, JSON or YAML.")
@click.option("--patch-file", type=click.File("r"), metavar="FILE", help="A file holding the patch (- : stdin).")
@click.option("--type", "ptype", type=click.Choice(["strategic", "merge", "json"]), default="strategic",
              show_default=True, help="strategic merge patch, JSON merge patch (RFC 7386) or JSON patch (RFC 6902).")
@dry_run_option
@namespace_option
@lab_option
@kubectl_errors
def patch(args: tuple[str, ...], patch_text: str | None, patch_file, ptype: str, dry_run: str, namespace: str,
          lab: str | None) -> None:
    """Update fields of an object with a patch, like kubectl patch TYPE NAME -p PATCH:

    \b
      netlab patch svc web -p '{"spec": {"type": "NodePort"}}'
      netlab patch deploy/web -p '{"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "x"}]}}}}'
      netlab patch deploy web --type json -p '[{"op": "replace", "path": "/spec/replicas", "value": 3}]'

    The patched object is checked as `apply` checks a manifest (the strict parser, the API server's
    validation, the pods this machine holds): bad input is one line naming the field and the fix, exit 2,
    nothing written. Its status, server-set metadata and a Pod's spec (which the API server keeps) cannot be
    patched; a changed pod template starts a rollout. See netlab/controllers/patch.py for the patch types.
    """
    from ..errors import SpecError
    from ..live import manifests
    from ..spec.parse import load_document
    from .common import warn_ignored
    if (patch_text is None) == (patch_file is None):
        raise click.UsageError("give the patch with -p PATCH or --patch-file FILE (one of them)")
    source = "--patch-file " + patch_file.name if patch_file is not None else "--patch"
    found = refs(args)
    if len(found) != 1:
        raise KubeError("error: netlab patches one object at a time; give one TYPE/NAME")
    kind, name = found[0]
    body = load_document(patch_file.read() if patch_file is not None else patch_text, source)
    if body is None:
        raise SpecError(source, "is empty", "give the fields to change, e.g. -p '{\"spec\": {\"replicas\": 3}}'")
    t = kubeutil.open_target(lab)
    live = kubeutil.get_or_builtin(t.store, kind, namespace, name)
    try:
        with kubeutil.dry_run_if(t, dry_run):
            a = manifests.patch_object(t, live, body, ptype, source, on_read=warn_ignored)
    except manifests.Forbidden as e:
        raise KubeError(str(e)) from None
    out(f"{SINGULAR[kind]}/{name} patched" + (" (no change)" if a.action == "unchanged" else "")
        + DRY_RUN_SUFFIX[dry_run])


# ------------------------------------------------------------------ edit

EDIT_HEADER = """# Please edit the object below. Lines beginning with a '#' will be ignored, and an empty file
# will abort the edit. What you change is applied to the object as it is when you save (a merge patch,
# checked as `netlab apply` checks a file); if it is refused, this file is opened again with why.
# (status is not shown: the controllers and kubelets write it)
"""


def _editor() -> list[str]:
    import os
    import shlex
    import shutil
    argv = shlex.split(os.environ.get("KUBE_EDITOR") or os.environ.get("EDITOR") or "vi")
    if not argv or shutil.which(argv[0]) is None:
        raise KubeError(f"error: no editor {argv[0] if argv else ''!r} found: set KUBE_EDITOR or EDITOR (sudo drops "
                        "them: sudo EDITOR=nano netlab edit ...)")
    return argv


@click.command()
@click.argument("args", nargs=-1, required=True)
@namespace_option
@lab_option
@kubectl_errors
def edit(args: tuple[str, ...], namespace: str, lab: str | None) -> None:
    """Edit an object in your editor, like kubectl edit TYPE NAME ($KUBE_EDITOR, else $EDITOR, else vi).

    What you change is applied as `patch` applies a merge patch: checked as `apply` checks a file, to the object
    as it is when you save. A refused edit opens the editor again with why at the top, as kubectl edit does;
    saved unchanged then, the refusal stands (one line naming the field and the fix, exit 2, nothing written;
    your edited copy is kept and named). Saving it unchanged, or empty, the first time changes nothing."""
    import os
    import subprocess
    import tempfile

    from ..controllers.patch import merge_diff
    from ..errors import SpecError
    from ..live import manifests
    from ..store.api import StoreError
    from ..spec.parse import load_document
    from .common import warn_ignored
    found = refs(args)
    if len(found) != 1:
        raise KubeError("error: netlab edits one object at a time; give one TYPE/NAME")
    kind, name = found[0]
    t = kubeutil.open_target(lab)
    shown = {k: v for k, v in kubeutil.get_or_builtin(t.store, kind, namespace, name).items() if k != "status"}
    argv = _editor()
    with tempfile.NamedTemporaryFile("w", prefix=f"netlab-edit-{name}-", suffix=".yaml", delete=False) as f:
        path = f.name
    content, refused = manifests.manifest_text(shown), None   # (refused: the last refused text and its error)
    for _ in range(EDIT_ROUNDS):
        with open(path, "w") as f:
            f.write(EDIT_HEADER + (_refusal_comment(refused[1]) if refused else "") + content)
        if subprocess.run([*argv, path]).returncode != 0:
            raise KubeError(f"error: the editor ({argv[0]}) failed; your copy is {path}")
        with open(path) as f:
            text = "".join(line for line in f if not line.lstrip().startswith("#"))
        if refused is not None and text == refused[0]:
            break   # saved as it was refused: the refusal stands
        try:
            edited = load_document(text, path) if text.strip() else None
            if edited is None or edited == shown:
                os.unlink(path)
                out("Edit cancelled, no changes made.")
                return
            if not isinstance(edited, dict):
                raise SpecError(path, "is not an object (a YAML map)", "edit the object's fields")
            now = kubeutil.get_or_builtin(t.store, kind, namespace, name)   # as it is by now
            a = manifests.patch_object(t, now, merge_diff(shown, edited), "merge", path, on_read=warn_ignored)
        except (SpecError, manifests.Forbidden, StoreError) as e:
            content, refused = text, (text, e)   # opened again with why, as kubectl edit does
            continue
        os.unlink(path)
        out(f"{SINGULAR[kind]}/{name} edited" + (" (no change)" if a.action == "unchanged" else ""))
        return
    e = refused[1]   # (a refused edit's line names `path`, the copy kept of the changes)
    if isinstance(e, SpecError):
        raise e
    prefix = f"Error from server ({e.reason}): " if isinstance(e, StoreError) else ""
    raise KubeError(f"{prefix}{e}; your changes are kept in {path}") from None


EDIT_ROUNDS = 20   # editor sessions before a refused edit ends `edit` (a script that edits again and again)


def _refusal_comment(e: Exception) -> str:
    """Why the last save was refused, as comment lines at the top of the file opened again."""
    lines = str(e).splitlines() or [type(e).__name__]
    return ("#\n# netlab refused the last save; fix it and save again (save it unchanged, or empty, to give up):\n"
            + "".join(f"#   {line}\n" for line in lines) + "#\n")


# ------------------------------------------------------------------ wait

@click.command()
@click.argument("args", nargs=-1, required=True)
@click.option("--for", "for_", required=True, metavar="CONDITION",
              help="condition=NAME[=VALUE] (e.g. condition=Available) or delete.")
@click.option("--timeout", default="30s", show_default=True, help="How long to wait (0: check once).")
@namespace_option
@lab_option
@kubectl_errors
def wait(args: tuple[str, ...], for_: str, timeout: str, namespace: str, lab: str | None) -> None:
    """Wait for a condition of objects: wait --for=condition=Available deploy/web --timeout=60s."""
    limit = duration(timeout)
    t = kubeutil.open_target(lab)
    store = t.store
    targets = refs(args)
    verbs.wait_for({"kind": "Pod", "metadata": {"name": "-"}}, for_)  # an unknown condition is refused first
    if for_ != "delete":
        for kind, name in targets:
            get_obj(store, kind, namespace, name)
    t.wrote()  # what is waited for is the loop's doing
    clock = Clock(limit, forever_if_zero=False)
    for kind, name in targets:
        rev = store.revision()
        while True:
            obj = store.try_get(kind, ns_of(kind, namespace), name)
            met, msg = verbs.wait_for(obj, for_)
            if met:
                if for_ == "delete":
                    msg = f"{SINGULAR[kind]}/{name} condition met"
                out(msg)
                break
            if obj is None and for_ != "delete":
                raise not_found(kind, name)
            if clock.over():
                raise KubeError(f"error: timed out waiting for the condition on {kind.lower()}s/{name}")
            rev = wait_change(store, rev, clock)


# ------------------------------------------------------------------ describe

@click.command()
@click.argument("args", nargs=-1, required=True)
@namespace_option
@lab_option
@kubectl_errors
def describe(args: tuple[str, ...], namespace: str, lab: str | None) -> None:
    """Show an object in detail, ending with its events: describe deploy|pod|node|svc|ingress|netpol NAME (a
    LoadBalancer Service: its LoadBalancer Ingress and MetalLB's events, IPAllocated or AllocationFailed;
    an Ingress: its rules, each backend's endpoints or why it answers 503; a NetworkPolicy: the pods it
    selects, its ingress and egress rules (ports, peers) and policy types, as kubectl words them; no events,
    as kubectl)."""
    from ..controllers import printers
    from ..store.events import events_for
    t = kubeutil.open_target(lab)
    store = t.store
    now = time.time()
    shown = []
    for kind, name in refs(args):
        obj = get_obj(store, kind, namespace, name)
        events = events_for(store, obj)
        if kind == "Deployment":
            text = printers.describe_deployment(obj, store.list("ReplicaSet", obj["metadata"].get("namespace")),
                                                events, now)
        elif kind == "Pod":
            text = printers.describe_pod(obj, events, now)
        elif kind == "Node":
            pods = [p for p in store.list("Pod") if (p.get("spec") or {}).get("nodeName") == name]
            text = printers.describe_node(obj, pods, events, now)
        elif kind == "Service":
            from ..controllers.printsvc import describe_service
            text = describe_service(obj, kubeutil.model_service(t, obj), events, now)
        elif kind == "Ingress":
            from ..ingress.describe import describe_lab_ingress
            text = describe_lab_ingress(store, obj, events, now)
        elif kind == "NetworkPolicy":
            from ..controllers.printnetpol import describe_networkpolicy, policy_of
            text = describe_networkpolicy(obj, policy_of(obj))
        else:
            raise KubeError(f"error: netlab describes deployments, pods, nodes, services, ingresses and "
                            f"networkpolicies; for "
                            f"{SINGULAR[kind]}/{name} "
                            f"use: netlab get {kind.lower()} {name} -o yaml")
        shown.append(text)
    out("\n\n\n".join(shown))


COMMANDS = (apply, diff, replace, delete, scale, set_, patch, edit, wait, describe)

__all__ = ["COMMANDS", "read_manifests", "set_env_of", "pod_grace"]
