"""Manifests applied to a live lab, as `kubectl apply -f` does: read by the same strict parser as `up`,
checked against the lab, written to its store (the lab's control loop does the rest); created
(`create_manifests`), replaced (`replace_manifests`) or compared with what apply would make
(`diff_manifests`) as kubectl create / replace / diff do; and an object patched, as `kubectl patch` does
(`patch_object`: the patched object checked the same way). `dry_run` runs any of them without writing
(kubectl's --dry-run=server). Shared by `netlab apply` / `create -f` / `replace` / `diff` / `delete -f` /
`patch` / `edit` (netlab/cli/kubectl.py, create.py) and netlab.Lab.apply / replace / diff / patch
(netlab/api.py).
No root needed here: the store is what `Target` gives (tests give a store of their own)."""
from __future__ import annotations

import contextlib

from ..errors import NetlabError, SpecError
from ..store.meta import is_deleting, key_of

# metadata the API server or the controllers set: a patch that changes it is refused (resourceVersion is a
# precondition instead, as the API server takes it)
SERVER_META = ("uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds",
               "ownerReferences", "finalizers", "generateName")


class Forbidden(NetlabError):
    """The API server refuses the change itself (a Pod's spec): kubectl's line, exit 1."""

    exit_code = 1


class Target:
    """The lab a verb acts on: its name and store; `wrote()` after a write starts its control loop
    if it is not running (the loop reacts to the store)."""

    def __init__(self, name: str, store, ensure=None, scenario: str | None = None):
        self.name, self.store, self._ensure, self._scenario = name, store, ensure, scenario
        self._admit = None

    def wrote(self) -> None:
        if self._ensure is not None:
            self._ensure(self.name)

    def scenario_text(self) -> str:
        """The scenario the lab was last brought up from (its Cluster document is the lab's)."""
        if self._scenario is not None:
            return self._scenario
        from ..dataplane import state
        return (state.load(self.name) or {}).get("scenario") or ""

    def service_allocator(self, networking):
        """How a Service is written to the store (live.objects.apply_objects' `allocate`): with the ClusterIP
        and node ports the API server would give it, the lab's earlier ones (its state.json on this machine, if
        any) kept for the Services the store has without them."""
        from ..model import svcalloc
        if self._scenario is not None:
            return svcalloc.allocator(networking)
        from ..dataplane import state
        return svcalloc.allocator(networking, (state.load(self.name) or {}).get("services"))

    def pod_admission(self):
        """How a Pod is written to the store (live.objects.apply_objects' `admit`): with the tolerations the
        API server's DefaultTolerationSeconds admission gives it, the lab's defaultTolerationSeconds. Read
        once a command (the lab's state.json, 10 MB at 10,000 pods): `replace` asks for it per object."""
        if self._admit is None:
            from .sync import pod_admission
            self._admit = pod_admission(self.scenario_text())
        return self._admit

    def proxy_mode(self) -> str | None:
        """The lab's kube-proxy mode as it was brought up (`up --proxy-mode` may differ from its Cluster
        document); None when the lab has no state (the Cluster document's then)."""
        if self._scenario is not None:
            return None
        from ..dataplane import state
        return (state.load(self.name) or {}).get("proxyMode")


def _documents(inputs: list[tuple[str, str]]):
    """(source, document) of every map the inputs hold, a List's items each on its own; a text that is not
    YAML is skipped (the strict parser names the problem)."""
    import yaml
    for text, src in inputs:
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError:
            continue
        for d in docs:
            items = d["items"] if isinstance(d, dict) and d.get("kind") == "List" and isinstance(d.get("items"), list) \
                else [d]
            yield from ((src, i) for i in items if isinstance(i, dict))


def scan(inputs: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], set[str], dict]:
    """(source, name) of the Cluster documents of the inputs, the Namespaces they declare and the
    file of each named object."""
    clusters, namespaces, origin = [], set(), {}
    for src, d in _documents(inputs):
        md = d.get("metadata") if isinstance(d.get("metadata"), dict) else {}
        if isinstance(d.get("kind"), str) and isinstance(md.get("name"), str):
            origin.setdefault(key_of({"kind": d["kind"], "metadata": md}), src)
        if d.get("kind") == "Cluster":
            clusters.append((src, str(md.get("name") or "")))
        elif d.get("kind") == "Namespace" and isinstance(md.get("name"), str):
            namespaces.add(md["name"])
    return clusters, namespaces, origin


def read_manifests(inputs: list[tuple[str, str]], target, verb: str = "apply") -> tuple[list[dict], object]:
    """The objects of the inputs ((text, source) each, as spec.sources.read_inputs reads -f), parsed by
    the same strict parser as `up` (so what `up` refuses is refused here, with the same lines), checked
    against the lab (its Cluster document and the Namespaces its store has) and validated as the API
    server would (Deployments, probes). Returns (objects to write, the scenario). Raises SpecError
    before anything is written."""
    import yaml

    from ..controllers.validation import validate_deployment, validate_pod_spec
    from ..live.objects import BUILTIN_NAMESPACES, scenario_objects, with_defaults
    from ..live.objects import manifest as objects_manifest
    from ..live.sync import cluster_document
    from ..spec.parse import load_texts
    clusters, declared, origin = scan(inputs)
    if clusters and verb in ("apply", "replace"):
        src, name = clusters[0]
        raise SpecError(f"{src}: Cluster {name}".rstrip(), "a Cluster document cannot be "
                        + ("applied to" if verb == "apply" else "replaced in") + " a running lab "
                        "(nodes and networking change only through `up`)",
                        f"remove it from the input, or bring the lab up from it: sudo netlab up -f {src} "
                        f"--lab {target.name}")
    # what the input may refer to: the lab's Cluster document (its nodes) and the store's Namespaces
    context = []
    cdoc = cluster_document(target.scenario_text())
    if cdoc is not None and not clusters:
        context.append(cdoc)
    live_ns = {n["metadata"]["name"] for n in target.store.list("Namespace")}
    context += [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
                for n in sorted(live_ns - declared - set(BUILTIN_NAMESPACES))]
    from ..lb.shorthand import documents_of   # (the lab's own pools, made from its Cluster document)
    own = {key_of(d) for d in documents_of(cdoc)}
    # MetalLB's webhook checks a pool against the pools the cluster has (overlaps)
    context += [objects_manifest(p) for p in target.store.list("IPAddressPool")
                if key_of(p) not in origin and key_of(p) not in own]
    n_context = len(context) - (1 if cdoc is not None and not clusters else 0)
    texts = ([(yaml.safe_dump_all(context), f"<lab {target.name}>")] if context else []) + inputs
    sc = load_texts(texts, inputs[0][1] if len(inputs) == 1 else None)
    mine = {key_of(d) for d in sc.documents[n_context:]} - own
    objs = [o for o in scenario_objects(sc)
            if key_of(o) in mine or (o["kind"] == "Namespace" and o["metadata"]["name"] not in live_ns)]
    for o in objs:
        problems = []
        if o["kind"] == "Deployment":
            problems = validate_deployment(with_defaults(o))
        elif o["kind"] == "Pod":
            kind, ns, name = key_of(o)
            problems = validate_pod_spec(with_defaults(o).get("spec") or {}, f'Pod "{name}" in namespace "{ns}"')
        if problems:
            raise SpecError(origin.get(key_of(o), ""), problems[0])
    # the containers' programs, checked as `up` and `validate` check them (one check, the same lines):
    # a pod the lab's control loop could not run is refused here, before anything is written
    from ..model.preflight import check_commands, check_host_commands, check_proxy_mode
    check_commands(sc)
    check_host_commands(sc)
    check_proxy_mode(sc, target.proxy_mode())
    return objs, sc


def pods_added(store, obj: dict) -> int:
    """How many more pods `obj` (a Pod, Deployment, ReplicaSet or StatefulSet) asks for than its stored version."""
    kind, ns, name = key_of(obj)
    cur = store.try_get(kind, ns, name)
    if kind == "Pod":
        return 0 if cur is not None else 1

    def replicas(o) -> int:
        r = (o.get("spec") or {}).get("replicas")
        return 1 if r is None else int(r)
    return max(0, replicas(obj) - (0 if cur is None else replicas(cur)))


def stored_template(obj: dict, what: str):
    """The pod template of a stored Deployment, ReplicaSet or StatefulSet (`what` names it), parsed as `up`
    and `apply` parse one (spec.kinds.pod.template_of); None when the parser refuses it (`set image` can
    make such a template: check_machine counts it as running a program)."""
    from ..spec.kinds.pod import template_of
    spec = obj.get("spec") or {}
    template = spec.get("template") or {}
    claims = tuple(c["metadata"]["name"] for c in spec.get("volumeClaimTemplates") or []
                   if isinstance(c, dict) and isinstance(c.get("metadata"), dict)
                   and isinstance(c["metadata"].get("name"), str))
    try:
        return template_of(template.get("spec") or {}, (template.get("metadata") or {}).get("labels") or {}, what,
                           claims=claims)
    except SpecError:
        return None


def workloads(target, objs: list[dict], sc) -> list[tuple[str, str, int, object]]:
    """check_room's `workloads` for manifests read as `objs` into the scenario `sc`: the workloads' templates
    as the parser read them (scenario_workloads names them "Kind ns/name"), in the order of the input, each
    with the pods it adds to the lab's."""
    from ..spec.parse import scenario_workloads
    parsed = {at: (field, template) for at, field, _, template in scenario_workloads(sc)}
    out = []
    for o in objs:
        at = "{} {}/{}".format(*key_of(o))
        if at in parsed:
            field, template = parsed[at]
            out.append((at, field, pods_added(target.store, o), template))
    return out


def check_room(target, workloads: list[tuple[str, str, int, object]]) -> None:
    """Refuse more pods than this machine holds, as `up` refuses such a scenario (spec.parse.check_machine:
    spec/capacity.py's limits, the lab's own namespaces and memory credited back, the pods it has counted):
    `workloads` is (what, field, more pods, parsed pod template) per object; the error names the object
    whose pods cross the binding limit, exit 2, before anything is written. (`apply` and `scale`: a live
    lab's Deployment grown past the machine would otherwise have its controllers make pods until the
    kernel refused.)"""
    if not any(n > 0 for _, _, n, _ in workloads):
        return
    from ..dataplane import machine
    from ..spec.parse import check_machine
    pods = sum(1 for p in target.store.list("Pod") if not is_deleting(p))
    check_machine(target.name, len(target.store.list("Node")), workloads, machine.limits(), live_pods=pods)


def apply_manifests(target: Target, inputs: list[tuple[str, str]], prune: bool = False,
                    selector: str | None = None, on_read=None) -> list:
    """`kubectl apply` of the inputs ((text, source) each) to the lab's store in one transaction; returns
    live.objects.Applied for each object. Fields set by other verbs that the input never set are kept.
    `prune`: then delete the objects an earlier apply made (and no controller owns) that the input no
    longer has, only those matching `selector` when given. `on_read(scenario)` is called once the input
    is read and checked (the CLI warns about ignored fields). Bad input raises SpecError before anything
    is written. The lab's control loop does the rest (`target.wrote()` makes sure it runs)."""
    from .objects import apply_objects
    objs, sc = _checked(target, inputs, on_read)
    applied = apply_objects(target.store, objs, prune=prune, selector=selector, graceful_pods=True,
                            allocate=target.service_allocator(sc.networking),
                            admit=target.pod_admission())
    target.wrote()
    return applied


def _checked(target: Target, inputs: list[tuple[str, str]], on_read=None) -> tuple[list[dict], object]:
    """The objects of the inputs and their scenario, read and checked as `apply` checks them (the parser, the
    references, the pods this machine holds), before anything is written."""
    from ..spec.podparts import check_references, stored_sources
    objs, sc = read_manifests(inputs, target)
    check_references(objs, stored_sources(target.store))
    check_room(target, workloads(target, objs, sc))
    if on_read is not None:
        on_read(sc)
    return objs, sc


def create_manifests(target: Target, inputs: list[tuple[str, str]], save_config: bool = False,
                     on_read=None) -> tuple[list, list[str]]:
    """`kubectl create -f`: the objects of the inputs that do not exist yet, created as given (checked as `apply`
    checks them, in one transaction; without a last-applied configuration unless `save_config`); returns
    (live.objects.Applied of those created, kubectl's AlreadyExists message for each one that exists, which
    is left as it is). Bad input raises SpecError before anything is written."""
    from ..kindnames import PLURAL
    from .objects import apply_objects
    objs, sc = _checked(target, inputs, on_read)
    _, _, origin = scan(inputs)
    new, exists = [], []
    for o in objs:
        kind, ns, name = key_of(o)
        if target.store.try_get(kind, ns, name) is None:
            new.append(o)
        elif key_of(o) in origin:   # (not a Namespace read_manifests adds for the objects in it)
            exists.append(f'error when creating "{origin[key_of(o)]}": {PLURAL.get(kind, kind.lower())} "{name}" '
                          "already exists")
    created = apply_objects(target.store, new, allocate=target.service_allocator(sc.networking),
                            admit=target.pod_admission(),
                            whole=not save_config) if new else []
    if created:
        target.wrote()
    return created, exists


class _DryRun(Exception):
    """Raised in a store transaction to roll back what it wrote (`dry_run`)."""


@contextlib.contextmanager
def dry_run(target: Target):
    """A dry run of what the block writes (kubectl's --dry-run=server): it runs as it would, in one transaction
    of the lab's store that is then rolled back, and the lab's control loop is not started."""
    ensure, target._ensure = target._ensure, None
    try:
        with target.store.transaction():
            yield
            raise _DryRun
    except _DryRun:
        pass
    finally:
        target._ensure = ensure


def diff_manifests(target: Target, inputs: list[tuple[str, str]], on_read=None) -> list[tuple]:
    """`kubectl diff -f`: what `apply` of the inputs would change, changing nothing. The apply runs as `apply`
    runs it (the same checks, merge and allocations) in a store transaction that is then rolled back; returns
    (key, the object as stored now or None, the object as the apply stored it) for each object it would create
    or change, in the input's order (an unchanged one is left out). Bad input raises SpecError."""
    from .objects import apply_objects
    objs, sc = _checked(target, inputs, on_read)
    store = target.store
    out = []
    with dry_run(target):
        before = {key_of(o): store.try_get(*key_of(o)) for o in objs}
        for a in apply_objects(store, objs, allocate=target.service_allocator(sc.networking),
                               admit=target.pod_admission()):
            key = (a.kind, a.namespace, a.name)
            if a.action != "unchanged":
                merged, live = store.try_get(*key), before.get(key)
                # a dry run writes nothing: no new resourceVersion (kubectl diff's server dry run)
                merged["metadata"].pop("resourceVersion", None)
                if live is not None and "resourceVersion" in live["metadata"]:
                    merged["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
                out.append((key, live, merged))
    return out


def manifest_text(obj: dict) -> str:
    """An object as the YAML `read_manifests` reads (fields in their order): what `patch` checks, `edit` shows."""
    import yaml
    return yaml.safe_dump(obj, sort_keys=False)


def _drop_type_dependent(new: dict, live: dict) -> None:
    """A Service patched from NodePort or LoadBalancer to ClusterIP loses the node ports it had, as the API
    server drops them (they were allocated for the old type) unless the patch itself changed them."""
    old_type = (live.get("spec") or {}).get("type", "ClusterIP")
    spec = new.get("spec") or {}
    if old_type not in ("NodePort", "LoadBalancer") or spec.get("type", "ClusterIP") != "ClusterIP":
        return

    def key(p: dict) -> tuple:
        return p.get("port"), p.get("protocol", "TCP")
    had = {key(p): p.get("nodePort") for p in (live.get("spec") or {}).get("ports") or []}
    for port in spec.get("ports") or []:
        if port.get("nodePort") is not None and had.get(key(port)) == port["nodePort"]:
            del port["nodePort"]
    if spec.get("healthCheckNodePort") == (live.get("spec") or {}).get("healthCheckNodePort"):
        spec.pop("healthCheckNodePort", None)


def _what(obj: dict) -> str:
    kind, ns, name = key_of(obj)
    return f"{kind} {ns}/{name}" if ns else f"{kind} {name}"


def check_update(live: dict, md: dict, new: dict, source: str, what: str, fix: str, given_only: bool = False,
                 admit=None) -> None:
    """What the API server refuses in an update of `live` to `new` (a manifest: live.objects.manifest), whose
    metadata as written is `md`: a stale resourceVersion (store.api.Conflict), server-set metadata changed
    (SpecError, with `fix`), a Pod's spec changed (Forbidden; compared as admitted by `admit`, the lab's
    Target.pod_admission, as the API server admits an update). `given_only` (`replace`: a file): what `md`
    leaves out is kept, not a change."""
    from ..store.api import Conflict
    from .objects import with_defaults
    kind, _, name = key_of(live)
    old = live["metadata"]
    if md.get("resourceVersion") != old.get("resourceVersion") and not (given_only and "resourceVersion" not in md):
        from ..kindnames import PLURAL
        raise Conflict(f'Operation cannot be fulfilled on {PLURAL.get(kind, kind.lower())} "{name}": the object has '
                       "been modified; please apply your changes to the latest version and try again")
    for k in SERVER_META:
        if md.get(k) != old.get(k) and not (given_only and k not in md):
            raise SpecError(source, f"changes metadata.{k} of {what}, which netlab's API server and controllers "
                            "set", fix)
    if kind == "Pod" and (admit or (lambda p: p))(with_defaults(new)).get("spec") != live.get("spec"):
        raise Forbidden(f'The Pod "{name}" is invalid: spec: Forbidden: pod updates may not change fields other '
                        "than the pod's labels and annotations in netlab (delete it and create it again, or "
                        "patch the Deployment that owns it)")


def patch_object(target: Target, live: dict, body, ptype: str, source: str, on_read=None):
    """`kubectl patch` of `live` (an object of the lab's store) with `body` (the patch as read from `source`:
    controllers/patch.py's types): the patched object is checked as `apply` checks a manifest (the strict
    parser, the API server's validation, references, the pods this machine holds) and written whole, its last
    applied configuration kept (live.objects.apply_objects' `whole`). Returns live.objects.Applied
    (configured or unchanged). Bad input raises SpecError, a stale resourceVersion store.api.Conflict, a Pod
    spec change Forbidden, all before anything is written. `on_read(scenario)` gets the patched object's
    scenario, with only what the patch adds that netlab ignores."""
    from ..controllers.patch import PatchError, apply_patch
    from .objects import apply_objects, manifest
    kind, _, name = key_of(live)
    what = _what(live)
    if kind == "Node":
        raise SpecError(source, f"{what}: a node changes through `up` (its Cluster document), not a patch",
                        f"use netlab cordon/uncordon {name} or netlab label node {name} KEY=VALUE")
    try:
        patched = apply_patch({k: v for k, v in live.items() if k != "status"}, body, ptype)
    except PatchError as e:
        raise SpecError(source, str(e), "fix the patch") from None
    if "status" in patched:
        raise SpecError(source, f"changes {what}'s status, which its controllers and kubelets write",
                        "patch its spec or metadata (netlab has no --subresource=status)")
    md = patched.get("metadata") or {}
    if (patched.get("kind"), md.get("name"), md.get("namespace")) != (kind, name, live["metadata"].get("namespace")):
        raise SpecError(source, f"changes the kind, name or namespace of {what}", "patch its other fields")
    new = manifest(patched)
    if kind == "Service":
        _drop_type_dependent(new, live)
    check_update(live, md, new, source, what, "leave it out of the patch", admit=target.pod_admission())
    objs, sc = read_manifests([(manifest_text(new), source)], target, "patch")
    from ..spec.podparts import check_references, stored_sources
    check_references(objs, stored_sources(target.store))
    if kind in ("Deployment", "ReplicaSet", "StatefulSet"):
        check_room(target, [(what, "spec.replicas", pods_added(target.store, new), stored_template(new, what))])
    if on_read is not None:
        # what the patch adds that netlab ignores (what the object had was reported when it was written)
        try:
            had = set(read_manifests([(manifest_text(manifest(live)), source)], target, "patch")[1].ignored)
        except SpecError:
            had = set()
        sc.ignored = [i for i in sc.ignored if i not in had]
        on_read(sc)
    applied = apply_objects(target.store, objs, allocate=target.service_allocator(sc.networking),
                            admit=target.pod_admission(), whole=True)
    target.wrote()
    return applied[0]


def replace_manifests(target: Target, inputs: list[tuple[str, str]], force: bool = False, on_read=None) -> list:
    """`kubectl replace -f`: each object of the inputs, which must exist, is replaced whole by the one given
    (what the file leaves out is gone, defaults filled in again; its status and the metadata the server sets
    are kept), checked as `apply` checks a manifest; a resourceVersion in the file is a precondition. The
    last applied configuration, if the object has one, becomes the file's object. `force` (`--force`): each
    object is deleted and created anew instead, so a Pod's spec may change too. All in one transaction;
    returns live.objects.Applied for each object. A missing object raises store.api.NotFoundError, bad input
    SpecError, Conflict or Forbidden, before anything is written."""
    from ..kindnames import PLURAL
    from ..spec.podparts import check_references, stored_sources
    from ..store.api import NotFoundError
    from .objects import apply_objects
    objs, sc = read_manifests(inputs, target, "replace")
    given = {}
    for src, d in _documents(inputs):
        md = d.get("metadata")
        if isinstance(d.get("kind"), str) and isinstance(md, dict) and isinstance(md.get("name"), str):
            given.setdefault(key_of({"kind": d["kind"], "metadata": md}), (src, md))
    objs = [o for o in objs if key_of(o) in given]   # (not the Namespaces read_manifests adds for them)
    lives = []
    for o in objs:
        kind, ns, name = key = key_of(o)
        src, md = given[key]
        live = target.store.try_get(kind, ns, name)
        if live is None or is_deleting(live):
            raise NotFoundError(f'error when replacing "{src}": {PLURAL.get(kind, kind.lower())} "{name}" not found')
        if kind == "Node":
            raise SpecError(src, f"Node {name}: a node changes through `up` (its Cluster document), not a replace",
                            f"use netlab cordon/uncordon {name} or netlab label node {name} KEY=VALUE")
        if not force:
            check_update(live, md, o, src, _what(live), "leave it out of the file", given_only=True,
                         admit=target.pod_admission())
        lives.append(key)
    check_references(objs, stored_sources(target.store))
    check_room(target, workloads(target, objs, sc))
    if on_read is not None:
        on_read(sc)
    allocate = target.service_allocator(sc.networking)
    with target.store.transaction():
        if force:
            for kind, ns, name in lives:
                target.store.delete(kind, ns, name, grace_seconds=0)
        applied = apply_objects(target.store, objs, allocate=allocate, whole=True, record=True,
                                admit=target.pod_admission())
    target.wrote()
    return applied
