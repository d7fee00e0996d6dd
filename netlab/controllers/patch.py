"""`kubectl patch`'s three patch types, applied to an object's manifest as the API server applies them.

- **json** (RFC 6902, a list of operations: add, remove, replace, move, copy, test): the `jsonpatch`
  library applies it (a well-kept implementation of the RFC and of JSON Pointer; nothing hand-written).
- **merge** (RFC 7386, JSON merge patch): maps merged key by key, `null` removes a key, lists replaced whole.
- **strategic** (kubectl's default, Kubernetes' strategic merge patch): a merge patch whose lists of
  objects with a merge key (containers and volumes by `name`, a container's ports by `containerPort`,
  a Service's ports by `port`, env by `name`, volumeMounts by `mountPath`, ...: the `patchMergeKey`s of
  Kubernetes' API types) are merged item by item: an item whose key the object has is merged into it, a
  new one appended, and one given with `$patch: delete` removed. `$patch: replace` replaces a map or a
  list whole. Other directives (`$retainKeys`, `$setElementOrder/...`, `$deleteFromPrimitiveList/...`)
  are refused by name: netlab does not apply them. Lists without a merge key are replaced, as Kubernetes
  replaces them.

Pure: no store, no root. netlab/cli/kubectl.py's `patch` reads the object, patches its manifest here,
then checks and writes the result as `apply` would (the strict parser, the API server's validation).
"""
from __future__ import annotations

import copy
from typing import Any

PATCH_TYPES = ("strategic", "merge", "json")

# patchMergeKey of the list fields netlab's kinds have, by field name (k8s.io/api's struct tags); `ports` is
# a container's (containerPort) or a Service's (port): see merge_key
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "volumes": "name",
    "env": "name", "imagePullSecrets": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
    "hostAliases": "ip", "topologySpreadConstraints": "topologyKey", "ownerReferences": "uid",
    "resourceClaims": "name", "schedulingGates": "name",
}
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
DIRECTIVE = "$patch"


class PatchError(ValueError):
    """The patch cannot be applied (a kubectl-style message, without the 'error: ' prefix)."""


def merge_key(path: tuple[str, ...], kind: str) -> str | None:
    """The merge key of the list at `path` (field names from the object's root, list items left out)."""
    field = path[-1]
    if field == "ports":
        if len(path) >= 2 and path[-2] in CONTAINER_LISTS:
            return "containerPort"
        if kind == "Service" and path == ("spec", "ports"):
            return "port"
        return None
    return MERGE_KEYS.get(field)


def apply_patch(obj: dict, patch: Any, ptype: str) -> dict:
    """The object with `patch` applied (a new object; `obj` is not changed). Raises PatchError."""
    if ptype not in PATCH_TYPES:
        raise PatchError(f"--type must be one of {', '.join(PATCH_TYPES)}, not {ptype!r}")
    if ptype == "json":
        return _json_patch(obj, patch)
    if not isinstance(patch, dict):
        raise PatchError(f"a {ptype} merge patch is a map (a JSON object), not {_name(patch)}")
    if ptype == "merge":
        return _merge(obj, patch)
    return _strategic(obj, patch, (), str(obj.get("kind") or ""))


def _name(v: Any) -> str:
    return {list: "a list", str: "a string", type(None): "null", bool: "a boolean"}.get(type(v), "a number")


def _json_patch(obj: dict, ops: Any) -> dict:
    import jsonpatch
    import jsonpointer
    if not isinstance(ops, list):
        raise PatchError(f"a json patch is a list of operations ([{{\"op\": ...}}]), not {_name(ops)}")
    try:
        out = jsonpatch.apply_patch(obj, ops, in_place=False)
    except jsonpatch.JsonPatchTestFailed as e:
        raise PatchError(f"testing value failed: {e}") from None
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as e:
        raise PatchError(f"the json patch cannot be applied: {e}") from None
    except (TypeError, KeyError, IndexError, ValueError) as e:   # a malformed operation (no "path", ...)
        raise PatchError(f"the json patch is not valid: {e}") from None
    if not isinstance(out, dict):
        raise PatchError("the json patch replaced the whole object; patch its fields instead")
    return out


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge(out.get(k), v)
    return out


def _strategic(target: Any, patch: dict, path: tuple[str, ...], kind: str) -> Any:
    where = ".".join(path) or "the object"
    directive = patch.get(DIRECTIVE)
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != DIRECTIVE}
    if directive == "delete":
        return None
    if directive is not None:
        raise PatchError(f"{where}: $patch: {directive!r} is not a patch directive; use replace or delete")
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$"):
            raise PatchError(f"{where}: the strategic merge directive {k} is not supported by netlab; "
                             "give the fields' new values instead (or use --type merge or json)")
        if v is None:
            out.pop(k, None)
            continue
        sub = path + (k,)
        if isinstance(v, dict):
            merged = _strategic(out.get(k), v, sub, kind)
            if merged is None:
                out.pop(k, None)
            else:
                out[k] = merged
        elif isinstance(v, list):
            out[k] = _strategic_list(out.get(k), v, sub, kind)
        else:
            out[k] = v
    return out


def _strategic_list(target: Any, patch: list, path: tuple[str, ...], kind: str) -> list:
    field = ".".join(path)
    live = list(target) if isinstance(target, list) else []
    if any(isinstance(p, dict) and p.get(DIRECTIVE) == "replace" for p in patch):
        return [copy.deepcopy({k: v for k, v in p.items() if k != DIRECTIVE}) for p in patch
                if not (isinstance(p, dict) and set(p) == {DIRECTIVE})]
    key = merge_key(path, kind)
    if key is None or not all(isinstance(p, dict) for p in patch):
        return copy.deepcopy(patch)   # no merge key: replaced whole, as Kubernetes replaces such a list
    out = [copy.deepcopy(x) for x in live]
    for item in patch:
        if key not in item:
            raise PatchError(f"{field}: an item of this list needs its merge key {key!r} "
                             f"(the item to change is found by it): {item}")
        at = next((i for i, x in enumerate(out) if isinstance(x, dict) and x.get(key) == item[key]), None)
        if item.get(DIRECTIVE) == "delete":
            if at is not None:
                out.pop(at)
            continue
        if at is None:
            new = _strategic({}, item, path, kind)
            out.append(new)
        else:
            out[at] = _strategic(out[at], item, path, kind)
    return out


def merge_diff(before: dict, after: dict) -> dict:
    """The JSON merge patch (RFC 7386) that makes `before` into `after`: a key `after` lacks is null, a map
    that changed is its own diff, any other value that changed is given whole (`edit`: what the user changed in
    the editor, applied to the object as it is by then, so that what others wrote meanwhile, a status or a
    scale, is kept, as kubectl's edit does)."""
    out: dict = {k: None for k in before if k not in after}
    for k, v in after.items():
        if k not in before:
            out[k] = copy.deepcopy(v)
        elif isinstance(v, dict) and isinstance(before[k], dict):
            sub = merge_diff(before[k], v)
            if sub:
                out[k] = sub
        elif v != before[k]:
            out[k] = copy.deepcopy(v)
    return out
