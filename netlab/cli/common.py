"""What the commands share: reading the scenario inputs, the progress line, the ignored-fields warning."""
from __future__ import annotations

import sys
from importlib import resources

import click

def scenario_inputs(command):
    """SCENARIO and `-f FILE|DIR|-` (several), as `kubectl apply -f` takes them: up, render, validate."""
    command = click.option("-f", "--filename", "files", multiple=True, metavar="FILE",
                           help="A scenario file, a directory (its *.yaml, *.yml, *.json files in name order) or - "
                                "(stdin); may be given several times, as with kubectl apply -f.")(command)
    return click.argument("scenario", required=False)(command)


def default_scenario_text() -> tuple[str, str]:
    return resources.files("netlab").joinpath("data/default.yaml").read_text(), "<default>"


def scenario_paths(scenario: str | None, files: tuple[str, ...] = ()) -> list[str]:
    """The positional SCENARIO and the -f options, in that order."""
    return ([scenario] if scenario else []) + list(files)


def load_scenario(paths: str | list[str] | None, lab: str | None):
    """The scenario of the inputs (none: the built-in default lab) and the text `up` stores for it."""
    from ..spec.fields import check_name
    from ..spec.parse import MAX_LAB_NAME, load_text
    from ..spec.sources import load_inputs
    from ..dataplane import machine   # what this machine holds: read once, the parser checks against it
    limits = machine.limits()
    if isinstance(paths, str):
        paths = [paths]
    if paths:
        scenario, text = load_inputs(paths, limits)
    else:
        text, source = default_scenario_text()
        scenario = load_text(text, source, limits)
    if lab:
        check_name(lab, "--lab", "value", max_len=MAX_LAB_NAME)
        scenario.name = lab
    return scenario, text


def scenario_or_stored(paths: list[str], lab: str | None, command: str):
    """The scenario `up` and `render` work on: that of the inputs; with none, the one lab `lab`
    (default: the built-in default lab's name) was last built from, when that lab exists; else the
    built-in default lab. Returns (scenario, its text, the proxy mode the lab was built with or None,
    whether it is the stored one)."""
    import os

    from ..errors import UsageError
    if paths:
        return (*load_scenario(paths, lab), None, False)
    from ..dataplane import lab as labmod
    name = lab or load_scenario(None, None)[0].name
    if name not in labmod.labs():
        return (*load_scenario(None, lab), None, False)
    stored = labmod.stored_scenario(name)
    sudo = "sudo " if command == "up" else ""
    if stored is None and os.geteuid() != 0:
        raise UsageError(f"lab {name} exists, and the scenario it was built from is in its state, which only root "
                         f"can read: run sudo netlab {command} --lab {name} (or give the file: "
                         f"{sudo}netlab {command} -f SCENARIO --lab {name})")
    if stored is None:
        raise UsageError(f"lab {name} exists but its state does not record the scenario it was built "
                         f"from; give it: {sudo}netlab {command} -f SCENARIO --lab {name} (or remove the lab: "
                         f"sudo netlab down {name})")
    from ..spec.parse import load_text
    text, source, mode = stored
    sc = load_text(text, source)
    sc.name = name
    return sc, text, mode, True


class Progress:
    """One updating line on a terminal (stderr); silent elsewhere."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.shown = False

    def __call__(self, what: str, done: int, total: int) -> None:
        if self.tty:
            sys.stderr.write(f"\r\033[K  {what} {done}/{total}")
            sys.stderr.flush()
            self.shown = True

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self.shown = False


def warn_ignored(scenario) -> None:
    if scenario.ignored:
        shown = scenario.ignored[:8]
        more = f" (and {len(scenario.ignored) - 8} more)" if len(scenario.ignored) > 8 else ""
        click.echo(f"netlab: ignoring fields netlab does not emulate: {'; '.join(shown)}{more}", err=True)
    for what, items in (("storing objects netlab does not use yet", getattr(scenario, "inert", [])),
                        ("ignoring add-ons' objects netlab does not emulate (stored only)",
                         getattr(scenario, "addons", []))):
        if items:
            more = f" (and {len(items) - 8} more)" if len(items) > 8 else ""
            click.echo(f"netlab: {what}: {'; '.join(items[:8])}{more}", err=True)
