"""Run Graphviz's `dot` on DOT text (the svg, png and html formats); a missing `dot` is a usage error."""
from __future__ import annotations

import shutil
import subprocess

from ..errors import NetlabError, UsageError

TIMEOUT = 60.0


def run_dot(text: str, fmt: str) -> bytes:
    """`dot -T<fmt>` of `text`: its output."""
    exe = shutil.which("dot")
    if exe is None:
        raise UsageError("graphviz is not installed: run scripts/setup (or apt-get install graphviz)")
    try:
        done = subprocess.run([exe, f"-T{fmt}"], input=text.encode(), capture_output=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise NetlabError(f"graphviz's dot -T{fmt} did not finish in {TIMEOUT:.0f} s") from None
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip().splitlines()
        raise NetlabError(f"graphviz's dot -T{fmt} failed: {err[0] if err else f'exit {done.returncode}'}")
    return done.stdout
