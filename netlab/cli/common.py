"""What the commands share: reading the scenario inputs, the progress line, the ignored-fields warning."""
from __future__ import annotations

import sys
from importlib import resources

import click

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
    if isinstance(paths, str):
        paths = [paths]
    if paths:
        scenario, text = load_inputs(paths)
    else:
        text, source = default_scenario_text()
        scenario = load_text(text, source)
    if lab:
        check_name(lab, "--lab", "value", max_len=MAX_LAB_NAME)
        scenario.name = lab
    return scenario, text


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
