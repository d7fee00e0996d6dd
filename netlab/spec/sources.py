"""Where a scenario comes from: the inputs of `up`, `validate` and `render`, read as `kubectl apply -f`
reads them (files, directories, `-` for standard input). Reads files; parses nothing itself."""
from __future__ import annotations

import os
import re
import shlex
import sys

from ..errors import SpecError
from .limits import MAX_BYTES
from .parse import load_text, load_texts
from .types import Scenario

SCENARIO_SUFFIXES = (".yaml", ".yml", ".json")  # what kubectl reads from a directory


def read_file(path: str) -> tuple[str, str]:
    """One input's (text, source): a file, or `-` for standard input."""
    if path == "-":
        text = sys.stdin.buffer.read(MAX_BYTES + 1)
        if len(text) > MAX_BYTES:
            raise SpecError("<stdin>", f"is more than the {MAX_BYTES} bytes a scenario may have", "split it")
        try:
            return text.decode("utf-8"), "<stdin>"
        except UnicodeDecodeError:
            raise SpecError("<stdin>", "is not UTF-8 text", "give the scenario as UTF-8 YAML") from None
    try:
        size = os.stat(path).st_size
    except OSError as e:
        raise SpecError("", f"cannot read scenario {path}: {e.strerror}", "give the path of a YAML file") from None
    if size > MAX_BYTES:
        raise SpecError(path, f"is {size} bytes, more than the {MAX_BYTES} a scenario may have", "split it")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(), path
    except UnicodeDecodeError:
        raise SpecError(path, "is not UTF-8 text", "save the scenario as UTF-8 YAML") from None
    except OSError as e:
        raise SpecError("", f"cannot read scenario {path}: {e.strerror}", "check the path") from None


def read_inputs(paths: list[str]) -> list[tuple[str, str]]:
    """(text, source) of every input, as `kubectl apply -f` takes them: files, `-` (standard input)
    and directories (their *.yaml, *.yml and *.json files, in name order, not recursing)."""
    out = []
    for path in paths:
        if path != "-" and os.path.isdir(path):
            try:
                names = sorted(n for n in os.listdir(path) if n.endswith(SCENARIO_SUFFIXES)
                               and os.path.isfile(os.path.join(path, n)))
            except OSError as e:
                raise SpecError("", f"cannot read directory {path}: {e.strerror}", "check the path") from None
            if not names:
                raise SpecError(path, "has no *.yaml, *.yml or *.json file (kubectl would say: no objects passed "
                                "to apply)", "give a directory of manifests, or run `netlab up` with no file to "
                                "build the built-in default lab")
            out += [read_file(os.path.join(path, n)) for n in names]
        else:
            out.append(read_file(path))
    if sum(p == "-" for p in paths) > 1:
        raise SpecError("-f -", "is given twice", "read standard input once")
    return out


def load_inputs(paths: list[str], limits=None) -> tuple[Scenario, str]:
    """The scenario of the inputs, and the text `up` stores for it (the inputs as one YAML stream).
    `limits`: what the machine holds (spec.capacity.MachineLimits), as `load_texts` takes them."""
    inputs = read_inputs(paths)
    if len(inputs) == 1:
        text, source = inputs[0]
        return load_text(text, source, limits), text
    for t, src in inputs[1:]:
        if re.search(r"(?m)^%", t):  # a directive must open the stream: it cannot be joined to another
            raise SpecError(src, "starts with a YAML directive (%...)", "remove it, or give this file alone")
    source = paths[0] if len(paths) == 1 else shlex.join(x for p in paths for x in ("-f", p))
    return load_texts(inputs, source, limits), "\n---\n".join(t for t, _ in inputs)
