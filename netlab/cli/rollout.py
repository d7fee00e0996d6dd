"""`netlab rollout status|history|undo|restart|pause|resume deploy/NAME` (status also ds/NAME): kubectl's
rollout verbs on a live lab's Deployments and DaemonSets (the decisions and messages are
netlab/controllers/verbs.py and daemonset.py; the rollout itself is the control loop's controllers')."""
from __future__ import annotations

import time

import click

from ..controllers import daemonset, statefulset, verbs
from ..controllers.validation import ControllerError
from . import kubeutil
from .kubeutil import (Clock, KubeError, duration, get_obj, kubectl_errors, lab_option, namespace_option,
                       out, refs, wait_change)


@click.group()
def rollout() -> None:
    """Manage the rollout of a Deployment (status, history, undo, restart, pause, resume); status also of a
    DaemonSet (ds/NAME)."""


def _deployments(args, namespace, store, kinds=("Deployment",)):
    found = []
    for kind, name in refs(args):
        if kind not in kinds:
            raise KubeError(f'error: no rollout for {kind.lower()}/{name}; rollout works on Deployments '
                            f'(e.g. deploy/{name})')
        found.append(get_obj(store, kind, namespace, name))
    return found


@rollout.command("status")
@click.argument("args", nargs=-1, required=True)
@click.option("-w", "--watch", type=click.BOOL, default=True, show_default=True,
              help="Wait until the rollout is done (--watch=false: print the status once).")
@click.option("--timeout", default="0s", show_default=True, help="How long to wait (0: no limit).")
@namespace_option
@lab_option
@kubectl_errors
def status(args: tuple[str, ...], watch: bool, timeout: str, namespace: str, lab: str | None) -> None:
    """Watch a rollout (deploy/NAME, sts/NAME or ds/NAME) until it completes: exit 0 when done, 1 when its
    progress deadline is exceeded or --timeout passes."""
    limit = duration(timeout)
    t = kubeutil.open_target(lab)
    store = t.store
    (d,) = _deployments(args, namespace, store, ("Deployment", "StatefulSet", "DaemonSet"))[:1]
    t.wrote()  # a rollout moves only while the lab's control loop runs
    name, kind = d["metadata"]["name"], d["kind"]
    clock = Clock(limit)
    last = None
    rev = store.revision()
    while True:
        cur = store.try_get(kind, d["metadata"].get("namespace"), name)
        if cur is None:
            raise KubeError(f'Error from server (NotFound): {kubeutil.PLURAL[kind]} "{name}" not found')
        try:
            msg, done = {"Deployment": verbs.rollout_status, "StatefulSet": statefulset.rollout_status,
                         "DaemonSet": daemonset.rollout_status}[kind](cur)
        except (ControllerError, ValueError) as e:
            raise KubeError(f"error: {e}") from None
        if msg != last:
            out(msg)
            last = msg
        if done or not watch:
            return
        if clock.over():
            raise KubeError("error: timed out waiting for the condition")
        rev = wait_change(store, rev, clock)


@rollout.command("history")
@click.argument("args", nargs=-1, required=True)
@click.option("--revision", type=int, default=0, help="Show the pod template of this revision.")
@namespace_option
@lab_option
@kubectl_errors
def history(args: tuple[str, ...], revision: int, namespace: str, lab: str | None) -> None:
    """The Deployment's revisions (one per ReplicaSet), oldest first."""
    t = kubeutil.open_target(lab)
    for d in _deployments(args, namespace, t.store):
        rss = t.store.list("ReplicaSet", d["metadata"].get("namespace"))
        if not revision:
            for line in verbs.history_lines(d, rss):
                out(line)
            out()
            continue
        hit = next((rs for r, rs in verbs.history(d, rss) if r == revision), None)
        if hit is None:
            raise KubeError(f"error: unable to find the specified revision {revision}")
        out(f"deployment.apps/{d['metadata']['name']} with revision #{revision}")
        out(template_text(hit["spec"]["template"]))


def template_text(template: dict) -> str:
    """A pod template as `kubectl rollout history --revision` shows it."""
    md, spec = template.get("metadata") or {}, template.get("spec") or {}
    lines = ["Pod Template:", "  Labels:\t" + ("\n\t".join(f"{k}={v}" for k, v in sorted((md.get("labels") or {}).items()))
                                                or "<none>")]
    if md.get("annotations"):
        lines.append("  Annotations:\t" + "\n\t".join(f"{k}: {v}" for k, v in sorted(md["annotations"].items())))
    lines.append("  Containers:")
    for c in spec.get("containers") or []:
        lines.append(f"   {c.get('name', '')}:")
        lines.append(f"    Image:\t{c.get('image', '')}")
        ports = ", ".join(f"{p['containerPort']}/{p.get('protocol', 'TCP')}" for p in c.get("ports") or [])
        lines.append(f"    Port:\t{ports or '<none>'}")
        env = c.get("env") or []
        lines.append("    Environment:\t" + ("<none>" if not env else
                                              "\n\t".join(f"{e['name']}:\t{e.get('value', '')}" for e in env)))
    return "\n".join(lines) + "\n"


@rollout.command("undo")
@click.argument("args", nargs=-1, required=True)
@click.option("--to-revision", type=int, default=0, show_default=True,
              help="The revision to go back to (0: the previous one).")
@namespace_option
@lab_option
@kubectl_errors
def undo(args: tuple[str, ...], to_revision: int, namespace: str, lab: str | None) -> None:
    """Go back to an earlier revision's pod template (a new rollout)."""
    t = kubeutil.open_target(lab)
    for d in _deployments(args, namespace, t.store):
        rss = t.store.list("ReplicaSet", d["metadata"].get("namespace"))
        new, msg = verbs.rollout_undo(d, rss, to_revision)
        if new != d:
            t.store.update(new)
            t.wrote()
        out(msg)


def _simple(verb, kinds=("Deployment",)):
    def run(args, namespace, lab):
        t = kubeutil.open_target(lab)
        for d in _deployments(args, namespace, t.store, kinds):
            new, msg = verb(d)
            t.store.update(new)
            t.wrote()
            out(msg.replace("deployment.apps/", kubeutil.SINGULAR[d["kind"]] + "/", 1))
    return run


@rollout.command("restart")
@click.argument("args", nargs=-1, required=True)
@namespace_option
@lab_option
@kubectl_errors
def restart(args: tuple[str, ...], namespace: str, lab: str | None) -> None:
    """Replace every pod of the Deployment (or StatefulSet, DaemonSet) by a rollout (a restartedAt
    annotation on the template)."""
    _simple(lambda d: verbs.rollout_restart(d, time.time()), ("Deployment", "StatefulSet", "DaemonSet"))(
        args, namespace, lab)


@rollout.command("pause")
@click.argument("args", nargs=-1, required=True)
@namespace_option
@lab_option
@kubectl_errors
def pause(args: tuple[str, ...], namespace: str, lab: str | None) -> None:
    """Stop rolling out template changes until resume."""
    _simple(lambda d: verbs.set_paused(d, True))(args, namespace, lab)


@rollout.command("resume")
@click.argument("args", nargs=-1, required=True)
@namespace_option
@lab_option
@kubectl_errors
def resume(args: tuple[str, ...], namespace: str, lab: str | None) -> None:
    """Roll out again what changed while paused."""
    _simple(lambda d: verbs.set_paused(d, False))(args, namespace, lab)
