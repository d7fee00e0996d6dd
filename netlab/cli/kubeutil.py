"""What kubectl's verbs on a live lab share: the lab they act on (its store), resource names as
kubectl spells them, kubectl's error lines and exit codes, durations, waiting on the store.

A verb never touches the kernel: it reads and writes the lab's store and then makes sure the lab's
control loop runs (`Target.wrote`), which does the rest. Tests replace `open_target` with a store
of their own (tests/unit/test_kubectl_cli.py), so everything here but `_real_target` needs no root.
"""
from __future__ import annotations

import contextlib
import functools
import re
import sys
import time

import click

from ..errors import NetlabError, SpecError
from ..kindnames import KINDS, PLURAL, SINGULAR  # noqa: F401 - kubectl's names of kinds (re-exported)
from ..live.manifests import Target  # (the verbs and tests use kubeutil.Target)

CLUSTER_SCOPED = ("Node", "Namespace", "IngressClass")


class KubeError(NetlabError):
    """An error printed as kubectl prints it (the whole line is given), exit status 1."""

    exit_code = 1


def not_found(kind: str, name: str) -> KubeError:
    return KubeError(f'Error from server (NotFound): {PLURAL.get(kind, kind.lower())} "{name}" not found')


class NamesNotFound(KubeError):
    """kubectl get's NotFound lines (one per line) of names of which none was found: nothing to show of the kind."""


def not_found_names(kind: str, names, found, missing: list[str] | None) -> None:
    """kubectl get's NotFound line for each of `names` not in `found`: raised together (NamesNotFound, exit 1)
    when none of them was found or `missing` is None (a caller that stops at the first), else added to
    `missing`, for the caller to print after what it found (kubectl's `get svc web nope`: web's row, then the
    error)."""
    lines = [str(not_found(kind, n)) for n in names if n not in found]
    if not lines:
        return
    if missing is None:
        raise NamesNotFound(lines[0])
    if len(lines) == len(names):
        raise NamesNotFound("\n".join(lines))
    missing.extend(lines)


def create_new(target, objs: list[dict], source: str) -> None:
    """kubectl create of objects made on the command line (`create deployment`, `expose`, `run`): kubectl's
    AlreadyExists (exit 1) if a name is taken, else written as `apply` writes them (its checks and allocations;
    nothing written if one is refused). `source` names them in an error."""
    import json
    from ..live import manifests
    for o in objs:
        kind, name = o["kind"], o["metadata"]["name"]
        if target.store.try_get(kind, ns_of(kind, o["metadata"].get("namespace", "default")), name) is not None:
            raise KubeError(f'Error from server (AlreadyExists): {PLURAL.get(kind, kind.lower())} "{name}" '
                            "already exists")
    manifests.apply_manifests(target, [("\n---\n".join(json.dumps(o) for o in objs), source)])


def output_option(command):
    return click.option("-o", "--output", type=click.Choice(["yaml", "json", "name"]),
                        help="Print the objects made (yaml, json: with --dry-run=client, a manifest to save and "
                             "apply) or their names, not kubectl's lines.")(command)


def make(lab: str | None, objs: list[dict], source: str, dry_run: str, output: str | None, lines: list[str],
         target=None) -> None:
    """What `create deployment`, `run` and `expose` do with the objects they made: create them (create_new), or
    with --dry-run=server check everything in a dry run of the lab's store, or with --dry-run=client nothing at
    all (no lab needed, as kubectl's client dry run needs no cluster); then print kubectl's `lines` (ending as a
    dry run's do), or with `output` the objects (as stored, or as made for a client dry run) or their names."""
    from .. import output as fmt
    from ..store.meta import key_of
    shown = objs
    if dry_run != "client":
        t = target if target is not None else open_target(lab)
        with dry_run_if(t, dry_run):
            create_new(t, objs, source)
            shown = [t.store.get(*key_of(o)) for o in objs]
    if output is None:
        for line in lines:
            out(line + DRY_RUN_SUFFIX[dry_run])
    elif output == "name":
        for o in shown:
            out(f"{SINGULAR.get(o['kind'], o['kind'].lower())}/{o['metadata']['name']}")
    else:
        click.echo(fmt.dump(shown[0] if len(shown) == 1 else fmt.as_list(shown), output), nl=False)


def kind_of(word: str) -> str:
    kind = KINDS.get(word.lower())
    if kind is None:
        raise KubeError(f'error: the server doesn\'t have a resource type "{word}"')
    return kind


def refs(args: tuple[str, ...] | list[str]) -> list[tuple[str, str]]:
    """(kind, name) of kubectl's resource arguments: `TYPE/NAME ...` or `TYPE NAME ...`."""
    if not args:
        raise click.UsageError("give a resource: TYPE/NAME or TYPE NAME (e.g. deploy/web)")
    if all("/" in a for a in args):
        out = []
        for a in args:
            word, _, name = a.partition("/")
            if not name:
                raise click.UsageError(f"{a!r}: give TYPE/NAME, e.g. deploy/web")
            out.append((kind_of(word), name))
        return out
    if any("/" in a for a in args):
        raise KubeError("error: there is no need to specify a resource type as a separate argument when passing "
                        "arguments in resource/name form (e.g. 'kubectl get resource/<resource_name>' instead of "
                        "'kubectl get resource resource/<resource_name>'")
    kind = kind_of(args[0])
    if len(args) == 1:
        raise KubeError(f"error: resource(s) were provided, but no name was specified; give {args[0]} NAME")
    return [(kind, n) for n in args[1:]]


def ns_of(kind: str, namespace: str) -> str | None:
    return None if kind in CLUSTER_SCOPED else namespace


def get_obj(store, kind: str, namespace: str, name: str) -> dict:
    obj = store.try_get(kind, ns_of(kind, namespace), name)
    if obj is None:
        raise not_found(kind, name)
    return obj


def get_or_builtin(store, kind: str, namespace: str | None, name: str) -> dict:
    """get_obj, and one of the API server's own namespaces whether or not the store holds it yet
    (labeling.stored_or_builtin): what `label`, `patch` and `edit` act on."""
    from ..controllers.labeling import stored_or_builtin
    obj = stored_or_builtin(store, kind, ns_of(kind, namespace), name)
    if obj is None:
        raise not_found(kind, name)
    return obj


# ------------------------------------------------------------------ the lab

def _real_target(lab: str | None) -> Target:
    from ..dataplane import lab as labmod
    from ..live import has_store, loop, store_for
    labmod.require_root("read and change a lab's objects")
    name = labmod.resolve_lab(lab)
    if not has_store(name):
        raise KubeError(f"error: lab {name} has no object store (it was built by an older netlab); "
                        f"bring it up again: sudo netlab up --lab {name}")
    return Target(name, store_for(name), loop.ensure)


def open_target(lab: str | None) -> Target:
    """The lab named (or the default one, see resolve_lab). Tests replace this function."""
    return _real_target(lab)


def lab_option(command):
    return click.option("--lab", metavar="NAME",
                        help="Lab to act on (default: the only lab up, else the one last brought up).")(command)


DRY_RUN_SUFFIX = {"none": "", "server": " (server dry run)", "client": " (dry run)"}


def dry_run_option(command):
    return click.option("--dry-run", "dry_run", type=click.Choice(list(DRY_RUN_SUFFIX)), default="none",
                        show_default=True,
                        help="server or client: check everything and print what would change, writing nothing (both "
                             "run netlab's own checks; each line ends as kubectl's does).")(command)


@contextlib.contextmanager
def dry_run_if(target, mode: str):
    """The block as it is (`none`), or run as a dry run of the lab's store (live.manifests.dry_run)."""
    if mode == "none":
        yield
        return
    from ..live import manifests
    with manifests.dry_run(target):
        yield


def namespace_option(command):
    return click.option("-n", "--namespace", default="default", show_default=True,
                        help="Kubernetes namespace.")(command)


# ------------------------------------------------------------------ errors, as kubectl prints them

def kubectl_errors(command):
    """Print errors as kubectl does and exit with its status: server errors `Error from server
    (Reason): ...` and verb errors `error: ...` exit 1; bad input files (netlab's rule) exit 2 with
    one line a problem."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from ..store.api import StoreError
        ctx = click.get_current_context()
        try:
            return command(*args, **kwargs)
        except KubeError as e:
            click.echo(str(e), err=True)
            ctx.exit(e.exit_code)
        except SpecError as e:
            for line in str(e).split("\n"):
                click.echo(f"error: {line}", err=True)
            ctx.exit(2)
        except StoreError as e:
            click.echo(f"Error from server ({e.reason}): {e}", err=True)
            ctx.exit(1)
        except NetlabError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(e.exit_code)
    return wrapper


# ------------------------------------------------------------------ time

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration(text: str, flag: str = "--timeout") -> float:
    """Seconds of a Go duration as kubectl takes them (`30s`, `1m30s`, `500ms`, `0`); a bare number
    is seconds."""
    t = (text or "").strip()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return float(t)
    parts = _DURATION.findall(t)
    if not t or "".join(n + u for n, u in parts) != t:
        raise click.BadParameter(f"invalid duration {text!r}; write it as 30s, 2m or 1m30s", param_hint=flag)
    return sum(float(n) * _UNITS[u] for n, u in parts)


class Clock:
    """Deadline of a verb that waits (`--timeout`; 0 means no limit, as kubectl's rollout status)."""

    def __init__(self, seconds: float, forever_if_zero: bool = True):
        self.end = None if (seconds <= 0 and forever_if_zero) else time.monotonic() + seconds

    def left(self) -> float:
        return 3600.0 if self.end is None else self.end - time.monotonic()

    def over(self) -> bool:
        return self.left() <= 0


def wait_change(store, revision: int, clock: Clock, step: float = 1.0) -> int:
    """Sleep until the store changes (any process's write), a step passes or the clock ends."""
    return store.wait(revision, max(0.0, min(step, clock.left())))


def out(line: str = "") -> None:
    click.echo(line)
    sys.stdout.flush()


def model_service(target, obj: dict):
    """The lab model's Service of a stored one (its ClusterIP, NodePorts, endpoints), or None when the
    model cannot be read here (not root, a test's target)."""
    try:
        from .. import lab_spec
        cluster, _ = lab_spec.load_cluster(target.name)
    except Exception:   # noqa: BLE001 - describe shows what the store has
        return None
    key = f"{obj['metadata'].get('namespace', 'default')}/{obj['metadata']['name']}"
    return next((s for s in cluster.services if s.key == key), None)
