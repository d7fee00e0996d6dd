"""The shape of the house, checked: dataplane/ never parses a scenario or builds the model, namespace
names are made and parsed only in netlab/names.py, nsenter command lines are built only in
dataplane/nsenter.py."""
from __future__ import annotations

import ast
from pathlib import Path

NETLAB = Path(__file__).resolve().parents[2] / "netlab"


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            out.update(f"{'.' * node.level}{node.module or ''}:{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_dataplane_does_not_parse_scenarios_or_build_the_model():
    for path in sorted((NETLAB / "dataplane").rglob("*.py")):
        found = {i for i in _imports(path) if "spec.parse" in i or i.endswith(":load_text") or i.endswith(":build")}
        assert not found, f"{path.name} imports {found}: parse and build in netlab/lab_spec.py"


def test_namespace_names_are_only_made_and_parsed_in_names():
    for path in sorted(NETLAB.rglob("*.py")):
        if path.name == "names.py":
            continue
        text = path.read_text()
        for literal in ('".pod."', '".node."', '"nl."', "f\"{prefix}.pod.", "f\"{prefix}.node."):
            assert literal not in text, f"{path.relative_to(NETLAB)} spells {literal}: use netlab.names"


def test_nsenter_command_lines_are_built_in_one_place():
    for path in sorted((NETLAB / "dataplane").rglob("*.py")):
        if path.name == "nsenter.py":
            continue
        assert '"nsenter", f"--net=' not in path.read_text(), f"{path.name} builds an nsenter argv"
