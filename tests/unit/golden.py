"""Golden files of the renderers' tests (tests/unit/golden/*.txt).

    NETLAB_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit   # rewrite them from the current output
"""
from __future__ import annotations

import os
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"


def check(name: str, text: str, what: str) -> None:
    """Assert that `text` equals golden/NAME.txt (`what`: "rules differ", "script differs"... for the message)."""
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("NETLAB_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} is missing: run with NETLAB_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(), f"rendered {what} from {path.name} (NETLAB_UPDATE_GOLDEN=1 to accept)"
