"""Graded lab exercises: `exercises/<NN-name>/` (exercise.yaml and start.yaml) at the repository's root,
started as labs and graded on the wire by `netlab exercise`.

Pure parts: the catalogue (this module), an exercise's definition (spec.py), the placeholders and the
judging of what was observed (grade.py). The kernel part: wire.py runs the criteria in a lab's
namespaces (the probe engine, curl, the pods' resolvers, `netlab exec`); labs.py starts and resets them.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import NotFound
from .spec import Criterion, Exercise, load

__all__ = ["Criterion", "Exercise", "catalogue", "directory", "find", "load", "load_all", "names"]


def directory() -> Path:
    """Where the exercises are: $NETLAB_EXERCISES, else `exercises/` next to the netlab package."""
    env = os.environ.get("NETLAB_EXERCISES")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "exercises"


def catalogue(root: Path | None = None) -> list[Path]:
    """The exercise directories, in name order."""
    root = root or directory()
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "exercise.yaml").exists())


def names(root: Path | None = None) -> list[str]:
    return [p.name for p in catalogue(root)]


def load_all(root: Path | None = None) -> list[Exercise]:
    return [load(p) for p in catalogue(root)]


def find(name: str, root: Path | None = None) -> Exercise:
    """The exercise NAME (`01-three-links`, or without its number, `three-links`, or the number, `1`);
    an unknown name is one line listing the valid ones (exit 2)."""
    dirs = catalogue(root)
    for p in dirs:
        number, _, short = p.name.partition("-")
        if name in (p.name, short) or (name.isdigit() and int(name) == int(number)):
            return load(p)
    valid = ", ".join(p.name for p in dirs) or "none (no exercises/ directory)"
    raise NotFound(f"no exercise '{name}'; the exercises are: {valid}")
