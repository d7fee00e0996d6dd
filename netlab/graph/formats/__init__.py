"""The formats of `netlab graph`, one module each (a registry: netlab/registry.py). Each module defines
`FORMAT = Format(name, order, render, suffixes, ...)` (netlab.graph.model.Format) whose
`render(graph, path)` returns the text (or, `binary`, the bytes) of the picture; adding a format is adding
a file here."""
from __future__ import annotations

from ...registry import discover
from ..model import Format

FORMATS: dict[str, Format] = discover(__name__, __path__, "FORMAT", Format, "graph formats")
