"""The one way netlab's registries find their entries: every module of a package (but those whose name
starts with "_") defines one entry under an agreed name (`MODE = ProxyMode(...)`,
`RENDERER = PolicyRenderer(...)`), found by name with pkgutil and imported with importlib, so adding an
entry is adding a file. Entries have a `name` and an `order` (listings: the default first)."""
from __future__ import annotations

import importlib
import pkgutil
from typing import Iterable, TypeVar

T = TypeVar("T")


def discover(package: str, path: Iterable[str], attr: str, cls: type[T], what: str) -> dict[str, T]:
    """name -> entry of every module of `package` (its `__path__`), in (order, name) order; a module without
    `attr` of type `cls`, or two entries with one name, is a TypeError naming `what`."""
    found = []
    for info in pkgutil.iter_modules(path):
        if info.name.startswith("_"):
            continue
        entry = getattr(importlib.import_module(f"{package}.{info.name}"), attr, None)
        if not isinstance(entry, cls):
            raise TypeError(f"{package}.{info.name} defines no {attr} = {cls.__name__}(...)")
        found.append(entry)
    found.sort(key=lambda e: (e.order, e.name))
    if len({e.name for e in found}) != len(found):
        raise TypeError(f"two {what} share a name: {[e.name for e in found]}")
    return {e.name: e for e in found}
