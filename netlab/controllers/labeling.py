"""`kubectl label` and `kubectl annotate` as pure functions: the KEY=VALUE / KEY- arguments read and
checked, and an object's labels or annotations changed as kubectl changes them (an existing value is kept
unless --overwrite; KEY- removes), with kubectl's message: `labeled`, `unlabeled` or `not labeled`; always
`annotated`.

Facts from kubectl's label command (what it checks on the client, its messages) and from the API
server's validation of metadata.labels (a key is an optional DNS-subdomain prefix and '/', then a
name of at most 63 characters; a value is empty or such a name) and of metadata.annotations (a key is such a
key once lower-cased, a value any text; keys and values at most 256 KiB together). Bad arguments are netlab's bad input
(SpecError: one line naming the argument, the field and the fix; exit 2; nothing written); a value
that --overwrite would be needed for is kubectl's error (ControllerError, exit 1), as kubectl words it.
"""
from __future__ import annotations

import json

from netlab.controllers.validation import ControllerError
from netlab.errors import SpecError
from netlab.netpol.policy import NAMESPACE_NAME_LABEL   # the API server keeps it equal to the name
from netlab.spec.fields import LABEL_KEY, LABEL_VALUE
from netlab.spec.limits import BUILTIN_NAMESPACES      # always there
KEY_FIX = ("a label key is an optional DNS prefix and '/' (e.g. example.com/), then at most 63 letters, "
           "digits, '-', '_' or '.', starting and ending with a letter or digit")
VALUE_FIX = ("a label value is empty or at most 63 letters, digits, '-', '_' or '.', starting and ending "
             "with a letter or digit")


def is_setting(arg: str) -> bool:
    """Whether a command-line argument is a label change (KEY=VALUE or KEY-) rather than a resource,
    as kubectl separates them."""
    return "=" in arg or (arg.endswith("-") and len(arg) > 1)


def check_key(key: str, arg: str) -> None:
    prefix, _, name = key.rpartition("/")
    if not key or not LABEL_KEY.match(key) or len(prefix) > 253 or len(name) > 63:
        raise SpecError(f"label {arg!r}", f"metadata.labels: invalid key {key!r}", KEY_FIX)


def check_value(value: str, arg: str) -> None:
    if len(value) > 63 or not LABEL_VALUE.match(value):
        raise SpecError(f"label {arg!r}", f"metadata.labels: invalid value {value!r}", VALUE_FIX)


def _pairs(settings: list[str], what: str, check_k, check_v=None) -> tuple[dict[str, str], list[str]]:
    """(to set, keys to remove) of KEY=VALUE and KEY- arguments, each checked (`check_k`, `check_v`), as kubectl
    reads them for `what` (label: a value has no '='; annotation: the value is everything after the first)."""
    a = "an" if what[0] in "aeiou" else "a"
    add: dict[str, str] = {}
    remove: list[str] = []
    for arg in settings:
        if "=" in arg:
            key, value = arg.split("=", 1)
            if what == "label" and "=" in value:
                raise SpecError(f"label {arg!r}", "invalid label spec: more than one '='",
                                "write KEY=VALUE (a value has no '=')")
            check_k(key, arg)
            if check_v is not None:
                check_v(value, arg)
            add[key] = value
        elif arg.endswith("-"):
            key = arg[:-1]
            check_k(key, arg)
            if key not in remove:
                remove.append(key)
        else:
            raise SpecError(f"{what} {arg!r}", "unknown label spec" if what == "label" else f"invalid {what} format",
                            f"write KEY=VALUE to set {a} {what} or KEY- to remove it")
    both = [k for k in remove if k in add]
    if both:
        raise SpecError(f"{what} {both[0]!r}", f"can not both modify and remove {a} {what} in the same command",
                        "give either KEY=VALUE or KEY-")
    return add, remove


def parse(settings: list[str]) -> tuple[dict[str, str], list[str]]:
    """(labels to set, keys to remove) of KEY=VALUE and KEY- arguments; SpecError (exit 2) for a
    malformed one, an invalid key or value, or a key both set and removed."""
    return _pairs(settings, "label", check_key, check_value)


def relabel(obj: dict, add: dict[str, str], remove: list[str], overwrite: bool) -> tuple[dict | None, str]:
    """(the object's new labels, or None when nothing changes; kubectl's word for it: labeled,
    unlabeled or not labeled). ControllerError (kubectl's text, exit 1) when a key already has another
    value and not `overwrite`. A Namespace's kubernetes.io/metadata.name is the API server's: refused."""
    md = obj.get("metadata") or {}
    old = dict(md.get("labels") or {})
    if obj.get("kind") == "Namespace" and NAMESPACE_NAME_LABEL in set(add) | set(remove):
        raise SpecError(f"namespace/{md.get('name', '')}", f"label {NAMESPACE_NAME_LABEL} is set by the API server "
                        "to the namespace's name", "leave it out; select namespaces by another label")
    if not overwrite:
        clash = [(k, old[k]) for k, v in add.items() if k in old and old[k] != v]
        if clash:
            k, v = clash[0]
            raise ControllerError(f"'{k}' already has a value ({v}), and --overwrite is false")
    new = dict(old)
    new.update(add)
    for k in remove:
        new.pop(k, None)
    if new == old:
        return None, "not labeled"
    # kubectl: "unlabeled" when the object got smaller without --overwrite, else "labeled"
    smaller = len(json.dumps(new, separators=(",", ":"))) < len(json.dumps(old, separators=(",", ":")))
    return new, "unlabeled" if smaller and not overwrite else "labeled"


ANNOTATIONS_MAX = 256 * 1024          # the API server's limit on an object's annotations, keys and values together
CHANGE_CAUSE = "kubernetes.io/change-cause"   # kubectl annotate replaces it without --overwrite
ANNOTATION_KEY_FIX = ("an annotation key is an optional DNS prefix and '/' (e.g. example.com/), then at most 63 "
                      "letters, digits, '-', '_' or '.', starting and ending with a letter or digit")


def check_annotation_key(key: str, arg: str) -> None:
    """The API server's check of an annotation key: a qualified name once lower-cased."""
    low = key.lower()
    prefix, _, name = low.rpartition("/")
    if not key or not LABEL_KEY.match(low) or len(prefix) > 253 or len(name) > 63:
        raise SpecError(f"annotation {arg!r}", f"metadata.annotations: invalid key {key!r}", ANNOTATION_KEY_FIX)


def parse_annotations(settings: list[str]) -> tuple[dict[str, str], list[str]]:
    """(annotations to set, keys to remove) of KEY=VALUE and KEY- arguments, as kubectl annotate reads them
    (the value is everything after the first '=': it may hold '=' and spaces, or be empty); SpecError (exit 2)
    for a malformed one, an invalid key, or a key both set and removed."""
    return _pairs(settings, "annotation", check_annotation_key)


def reannotate(obj: dict, add: dict[str, str], remove: list[str], overwrite: bool) -> dict | None:
    """The object's new annotations, or None when nothing changes. ControllerError (kubectl's text, exit 1)
    when a key already has another value and not `overwrite` (kubernetes.io/change-cause excepted, as kubectl
    does); SpecError (exit 2) when the annotations would pass the API server's 256 KiB."""
    md = obj.get("metadata") or {}
    old = dict(md.get("annotations") or {})
    if not overwrite:
        clash = [f"'{k}' already has a value ({old[k]})" for k, v in add.items()
                 if k != CHANGE_CAUSE and k in old and old[k] != v]
        if clash:
            raise ControllerError("--overwrite is false but found the following declared annotation(s): "
                                  + "; ".join(clash))
    new = dict(old)
    new.update(add)
    for k in remove:
        new.pop(k, None)
    size = sum(len(k.encode()) + len(v.encode()) for k, v in new.items())
    if size > ANNOTATIONS_MAX:
        raise SpecError(f"{str(obj.get('kind', '')).lower()}/{md.get('name', '')}",
                        f"metadata.annotations: Too long: must have at most {ANNOTATIONS_MAX} bytes, not {size}",
                        "shorten the values or remove annotations")
    return None if new == old else new


def builtin_namespace(name: str) -> dict:
    """The Namespace object of one of the API server's own namespaces, as `label` writes it to a lab's
    store the first time it is labeled (a lab's store holds only the namespaces its manifests made)."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def stored_or_builtin(store, kind: str, ns: str | None, name: str) -> dict | None:
    """The object `store` holds, else, for one of the API server's own namespaces the store does not hold yet,
    its `builtin_namespace` (the API server has it either way); None when neither."""
    obj = store.try_get(kind, ns, name)
    if obj is None and kind == "Namespace" and name in BUILTIN_NAMESPACES:
        obj = builtin_namespace(name)
    return obj


def namespace_view(obj: dict) -> dict:
    """A Namespace as the API server shows it: with the kubernetes.io/metadata.name label (its name),
    which the API server sets on every namespace and NetworkPolicies' namespaceSelectors match."""
    md = dict(obj.get("metadata") or {})
    md["labels"] = dict(md.get("labels") or {}, **{NAMESPACE_NAME_LABEL: md.get("name", "")})
    return dict(obj, metadata=md)


def namespaces_view(stored: list[dict], selector: str | None = None) -> list[dict]:
    """The lab's namespaces as `kubectl get ns` lists them: the store's and the API server's own ones
    (that the store may not have), each with its name label (namespace_view), those that `selector`
    matches, by name."""
    from netlab.store.meta import selector_matches
    have = {o["metadata"]["name"] for o in stored}
    objs = [namespace_view(o) for o in stored]
    objs += [namespace_view(dict(builtin_namespace(n), status={"phase": "Active"}))
             for n in BUILTIN_NAMESPACES if n not in have]
    objs = [o for o in objs if not selector or selector_matches(selector, o["metadata"]["labels"])]
    return sorted(objs, key=lambda o: o["metadata"]["name"])


def missing_removals(obj: dict, remove: list[str]) -> list[str]:
    """Keys to remove that the object does not have (kubectl says `label "K" not found.`)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return [k for k in remove if k not in labels]


__all__ = ["is_setting", "parse", "relabel", "parse_annotations", "reannotate", "check_annotation_key",
           "missing_removals", "check_key", "check_value", "builtin_namespace", "namespace_view", "namespaces_view",
           "BUILTIN_NAMESPACES", "NAMESPACE_NAME_LABEL", "stored_or_builtin"]
