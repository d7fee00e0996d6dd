"""Figures the reliability tests report at the end of a run (cycles, leaks, kill points, recoveries,
fuzz cases). Each test process (xdist workers included) sums its figures in memory; at the end of the
session every process appends them as one JSON line to the file named by NETLAB_FIGURES, and the main
process prints the totals (tests/conftest.py). scripts/soak reads the same file.
"""
from __future__ import annotations

import json
import os

ENV = "NETLAB_FIGURES"
_figures: dict[str, float] = {}


def add(key: str, n: float = 1) -> None:
    _figures[key] = _figures.get(key, 0) + n


def flush() -> None:
    path = os.environ.get(ENV)
    if path and _figures:
        with open(path, "a") as f:
            f.write(json.dumps(_figures) + "\n")
    _figures.clear()


def totals(path: str) -> dict[str, float]:
    out: dict[str, float] = {}
    try:
        with open(path) as f:
            for line in f:
                for k, v in json.loads(line).items():
                    out[k] = out.get(k, 0) + v
    except (OSError, ValueError):
        pass
    return out
