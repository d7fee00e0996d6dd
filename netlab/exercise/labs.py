"""An exercise's lab: started from its start.yaml, found again, reset; and the hints a learner has seen.

A lab started for an exercise carries a marker, `<lab dir>/exercise` (the exercise's name), so `list`
shows which exercises run and `check`/`hint` find their lab without --lab. `start` never replaces a lab
that is up (whatever it holds): `reset` (down, then start) or `netlab down` is the explicit way.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ..errors import NotFound, UsageError
from .spec import Exercise

MARKER = "exercise"
HINTS = "exercise-hints"


def _lab_dir(lab: str) -> str:
    from ..dataplane import layout
    return layout.lab_dir(lab)


def default_lab(exercise: Exercise) -> str:
    """The lab name of an exercise: its start.yaml's Cluster name (ex01 ...)."""
    from ..spec.parse import load_file
    return load_file(exercise.start_file).name


def exercise_of(lab: str) -> str | None:
    try:
        with open(os.path.join(_lab_dir(lab), MARKER)) as f:
            return f.read().strip() or None
    except OSError:
        return None


def running() -> dict[str, str]:
    """{lab: exercise} for every lab up that was started for an exercise."""
    from ..dataplane import lab as labmod
    out = {}
    for lab in labmod.labs():
        name = exercise_of(lab)
        if name:
            out[lab] = name
    return out


def lab_of(exercise: Exercise, lab: str | None) -> str:
    """The lab that runs `exercise`: --lab, else the one marked with it, else its default name if up."""
    from ..dataplane import lab as labmod
    up = labmod.labs()
    if lab:
        if lab not in up:
            raise NotFound(f"lab '{lab}' is not up; start the exercise with: sudo netlab exercise start "
                           f"{exercise.name} --lab {lab}")
        held = exercise_of(lab)
        if held is not None and held != exercise.name:
            raise UsageError(f"lab {lab} runs exercise {held}, not {exercise.name}; start {exercise.name} in a lab "
                             f"of its own: sudo netlab exercise start {exercise.name}")
        return lab
    marked = sorted(n for n, e in running().items() if e == exercise.name)
    if len(marked) == 1:
        return marked[0]
    if len(marked) > 1:
        raise UsageError(f"exercise {exercise.name} runs in several labs ({', '.join(marked)}); choose one with --lab")
    name = default_lab(exercise)
    if name in up:
        return name
    raise NotFound(f"exercise {exercise.name} is not started; start it with: "
                   f"sudo netlab exercise start {exercise.name}")


def start(exercise: Exercise, lab: str | None, say=print) -> str:
    """Bring the exercise's starting scenario up as lab `lab` (default: its own name), run its setup
    steps and mark the lab. Refuses, before any change, when a lab of that name is up."""
    from ..dataplane import lab as labmod
    from ..spec.parse import load_text
    text = exercise.start_file.read_text()
    sc = load_text(text, str(exercise.start_file))
    name = lab or sc.name
    if name in labmod.labs():
        held = exercise_of(name)
        what = f"exercise {held}" if held else "a lab that is not an exercise"
        raise UsageError(f"lab {name} is up ({what}); start replaces nothing: run 'sudo netlab exercise reset "
                         f"{exercise.name}{f' --lab {name}' if lab else ''}' to start the exercise over in it, or "
                         f"'sudo netlab down {name}' first")
    labmod.require_root("start an exercise's lab")
    sc.name = name
    from .. import lab_spec
    try:
        lab_spec.up(sc, text)
    except UsageError as e:   # refused before any change: e.g. a proxy mode this kernel cannot run
        raise UsageError(f"exercise {exercise.name} cannot start here: {e}") from None
    labmod.mark_last_up(name)
    from ..dataplane import state
    state.write_private(os.path.join(_lab_dir(name), MARKER), exercise.name + "\n")
    for step in exercise.setup:
        say(f"setup: netlab {' '.join(step)}")
        r = subprocess.run([sys.executable, "-m", "netlab", *step, "--lab", name], capture_output=True, text=True)
        if r.returncode != 0:
            raise UsageError(f"setup step 'netlab {' '.join(step)}' failed: "
                             f"{(r.stderr.strip().splitlines() or ['exit ' + str(r.returncode)])[-1]}")
    return name


def reset(exercise: Exercise, lab: str | None, say=print) -> str:
    """Take the exercise's lab down (if up) and start it again."""
    from ..dataplane import lab as labmod
    labmod.require_root("reset an exercise's lab")
    try:
        name = lab_of(exercise, lab)
    except NotFound:
        name = lab or default_lab(exercise)
    if name in labmod.labs():
        labmod.down(name)
        say(f"lab {name} removed")
    return start(exercise, name, say)


# ------------------------------------------------------------------ hints

def _hint_file(exercise: Exercise, lab: str | None) -> Path:
    """Where the count of hints shown is kept: in the exercise's lab while it is up (a reset starts from
    the first hint again), else in the user's state directory."""
    if lab is not None:
        return Path(_lab_dir(lab)) / HINTS
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "netlab" / "exercise-hints" / exercise.name


def next_hints(exercise: Exercise, lab: str | None, show_all: bool) -> tuple[list[tuple[int, str]], bool]:
    """The hints to show now ((number, text) pairs) and whether they are all revealed now."""
    path = _hint_file(exercise, lab)
    try:
        shown = int(path.read_text().strip())
    except (OSError, ValueError):
        shown = 0
    total = len(exercise.hints)
    if show_all:
        upto = total
        out = list(enumerate(exercise.hints, 1))
    else:
        upto = min(shown + 1, total)
        out = [(upto, exercise.hints[upto - 1])]
    if upto != shown:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{upto}\n")
    return out, upto >= total
