"""netlab's modules import each other without a cycle (read with ast, nothing is imported).

Every `import` and `from ... import` counts, wherever it is written (a function-level import is still
a dependency, only a later one), except under `if TYPE_CHECKING:`. Importing `a.b.c` also runs the
packages `a` and `a.b`, so those count too - except the importer's own packages, which are already
being imported when it runs. Imports made by name at run time (importlib) are not seen.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "netlab"


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The netlab modules `name` imports (directly, or the packages that importing them runs)."""
    tree = ast.parse(path.read_text(), str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]     # the package of relative imports
    targets: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            targets.update(a.name for a in node.names)
            continue
        if node.level:
            base = here[:len(here) - node.level + 1] + (node.module.split(".") if node.module else [])
        else:
            base = node.module.split(".")
        mod = ".".join(base)
        targets.add(mod)
        targets.update(f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in known)
    out = set()
    own = {".".join(name.split(".")[:i]) for i in range(1, len(name.split(".")) + 1)}
    for t in targets:
        parts = t.split(".")
        for i in range(1, len(parts) + 1):
            m = ".".join(parts[:i])
            if m in known and m not in own:
                out.add(m)
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as [a, b, ..., a], or None (iterative depth-first search)."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = {n: WHITE for n in g}
    for start in sorted(g):
        if colour[start] != WHITE:
            continue
        stack = [(start, iter(sorted(g[start])))]
        path = [start]
        colour[start] = GREY
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[node] = BLACK
                stack.pop()
                path.pop()
            elif colour[nxt] == GREY:
                return path[path.index(nxt):] + [nxt]
            elif colour[nxt] == WHITE:
                colour[nxt] = GREY
                stack.append((nxt, iter(sorted(g[nxt]))))
                path.append(nxt)
    return None


def test_the_graph_is_read_right():
    g = graph()
    assert "netlab.render.services" in g["netlab.render.kubeproxy_nftables"]
    assert "netlab.model.objects" in g["netlab.render.kubeproxy_iptables"]      # from ..model.objects import
    assert "netlab.model" in g["netlab.render.kubeproxy_iptables"]              # ... which runs the package
    assert "netlab.spec.parse" in g["netlab.cli.common"]                        # a function-level import
    assert "netlab.dataplane.lab" in g["netlab.cli.lifecycle"]                  # from ..dataplane import lab
    assert "netlab.cli.common" in g["netlab.cli"]                               # from .common import (a package)
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_netlab_has_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
