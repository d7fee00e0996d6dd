"""Manifests applied to a live lab, as `kubectl apply -f` does: read by the same strict parser as `up`,
checked against the lab, written to its store (the lab's control loop does the rest). Shared by
`netlab apply` / `netlab delete -f` (netlab/cli/kubectl.py) and netlab.Lab.apply (netlab/api.py).
No root needed here: the store is what `Target` gives (tests give a store of their own)."""
from __future__ import annotations

from ..errors import SpecError
from ..store.meta import key_of


class Target:
    """The lab a verb acts on: its name and store; `wrote()` after a write starts its control loop
    if it is not running (the loop reacts to the store)."""

    def __init__(self, name: str, store, ensure=None, scenario: str | None = None):
        self.name, self.store, self._ensure, self._scenario = name, store, ensure, scenario

    def wrote(self) -> None:
        if self._ensure is not None:
            self._ensure(self.name)

    def scenario_text(self) -> str:
        """The scenario the lab was last brought up from (its Cluster document is the lab's)."""
        if self._scenario is not None:
            return self._scenario
        from ..dataplane import state
        return (state.load(self.name) or {}).get("scenario") or ""

    def proxy_mode(self) -> str | None:
        """The lab's kube-proxy mode as it was brought up (`up --proxy-mode` may differ from its Cluster
        document); None when the lab has no state (the Cluster document's then)."""
        if self._scenario is not None:
            return None
        from ..dataplane import state
        return (state.load(self.name) or {}).get("proxyMode")


def scan(inputs: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], set[str], dict]:
    """(source, name) of the Cluster documents of the inputs, the Namespaces they declare and the
    file of each named object; a text that is not YAML is left to the strict parser, which names
    the problem."""
    import yaml
    clusters, namespaces, origin = [], set(), {}
    for text, src in inputs:
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError:
            continue
        flat = []
        for d in docs:
            if isinstance(d, dict) and d.get("kind") == "List" and isinstance(d.get("items"), list):
                flat += d["items"]
            else:
                flat.append(d)
        for d in flat:
            if not isinstance(d, dict):
                continue
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
    if clusters and verb == "apply":
        src, name = clusters[0]
        raise SpecError(f"{src}: Cluster {name}".rstrip(), "a Cluster document cannot be applied to a running lab "
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


WORKLOADS = ("Deployment", "ReplicaSet", "StatefulSet", "Pod")


def _template_runs(spec: dict) -> bool:
    """Whether a pod of this spec runs a program of its own (a process a pod), as the parser decides it: a
    container with a command or args that is not an image the built-in server plays (agnhost, nginx, ...)
    nor agnhost's netexec command line."""
    from ..spec.kinds.pod import netexec_ports
    from ..workload import images
    for c in spec.get("containers") or []:
        command, args = [str(x) for x in c.get("command") or []], [str(x) for x in c.get("args") or []]
        if not (command or args):
            continue
        env = {str(e.get("name")): str(e.get("value", "")) for e in c.get("env") or [] if isinstance(e, dict)}
        try:
            got = images.recognise(c.get("image"), command, args, env)
            if got is None and netexec_ports(command + args) is not None:
                continue
        except Exception:   # noqa: BLE001 - validated when it was stored; counted as a program if not
            return True
        if got is None or got.command is not None:
            return True
    return False


def pods_added(store, obj: dict) -> tuple[int, bool]:
    """(how many more pods `obj` asks for than its stored version, whether they run a program)."""
    kind, ns, name = key_of(obj)
    if kind not in WORKLOADS:
        return 0, False
    cur = store.try_get(kind, ns, name)
    if kind == "Pod":
        return (0 if cur is not None else 1), _template_runs(obj.get("spec") or {})

    def replicas(o) -> int:
        r = (o.get("spec") or {}).get("replicas")
        return 1 if r is None else int(r)
    have = 0 if cur is None else replicas(cur)
    spec = (((obj.get("spec") or {}).get("template") or {}).get("spec")) or {}
    return max(0, replicas(obj) - have), _template_runs(spec)


def check_room(target, adds: list[tuple[str, int, bool]]) -> None:
    """Refuse more pods than this machine holds, as `up` refuses such a scenario (spec/capacity.py's limits,
    the lab's own namespaces and memory credited back): `adds` is (what, more pods, whether they run a
    program) per object; the error names the object whose pods cross the binding limit, exit 2, before
    anything is written. (`apply` and `scale`: a live lab's Deployment grown past the machine would
    otherwise have its controllers make pods until the kernel refused.)"""
    from ..dataplane import machine
    from ..store.meta import is_deleting
    adds = [a for a in adds if a[1] > 0]
    if not adds:
        return
    pods = sum(1 for p in target.store.list("Pod") if not is_deleting(p))
    more = sum(n for _, n, _ in adds)
    total = pods + more
    over = machine.limits().pods_over(target.name, total, len(target.store.list("Node")),
                                      sum(n for _, n, runs in adds if runs) / total)
    if over is None:
        return
    running = pods
    for what, n, _ in adds:
        running += n
        if running > over.value:
            raise SpecError(what, f"{n} more pods bring lab {target.name} to {total} pods, but {over.text('pods')}",
                            over.fix.replace("use fewer pods", "use fewer replicas"))
    raise SpecError(adds[-1][0], f"brings lab {target.name} to {total} pods, but {over.text('pods')}", over.fix)


def apply_manifests(target: Target, inputs: list[tuple[str, str]], prune: bool = False,
                    selector: str | None = None, on_read=None) -> list:
    """`kubectl apply` of the inputs ((text, source) each) to the lab's store in one transaction; returns
    live.objects.Applied for each object. Fields set by other verbs that the input never set are kept.
    `prune`: then delete the objects an earlier apply made (and no controller owns) that the input no
    longer has, only those matching `selector` when given. `on_read(scenario)` is called once the input
    is read and checked (the CLI warns about ignored fields). Bad input raises SpecError before anything
    is written. The lab's control loop does the rest (`target.wrote()` makes sure it runs)."""
    from ..spec.podparts import check_references, stored_sources
    from .objects import apply_objects
    objs, sc = read_manifests(inputs, target)
    check_references(objs, stored_sources(target.store))   # before anything is written
    check_room(target, [(f"{o['kind']} {key_of(o)[1]}/{key_of(o)[2]}", more, runs)
                        for o in objs for more, runs in [pods_added(target.store, o)]])
    if on_read is not None:
        on_read(sc)
    applied = apply_objects(target.store, objs, prune=prune, selector=selector, graceful_pods=True)
    target.wrote()
    return applied
