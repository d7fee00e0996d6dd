"""`netlab exercise`: graded lab exercises (list, start, check, hint, reset); netlab/exercise/ does the work."""
from __future__ import annotations

import sys

import click

LAB = click.option("--lab", metavar="NAME", help="The exercise's lab (default: the lab started for it, named "
                                                 "after it: ex01 ...).")


@click.group()
def exercise() -> None:
    """Graded exercises on Kubernetes networking, each a lab to repair.

    \b
    Start one, read its task, change the lab with netlab's verbs (apply, label, scale, set, rollout,
    delete, node stop ...), then check: each criterion is graded on the wire (real packets, curl,
    DNS lookups and programs run in the pods), never by how the lab got there.

    \b
      netlab exercise list
      sudo netlab exercise start 01-three-links
      sudo netlab exercise check 01-three-links      # exit 0 when solved; -o junit for CI
      sudo netlab exercise hint 01-three-links       # the next hint each time; --all for all of them
      sudo netlab exercise reset 01-three-links      # down and start again
    """


@exercise.command("list")
def list_() -> None:
    """The exercises: name, title, and the lab running it."""
    from ..exercise import load_all
    exercises = load_all()
    running: dict[str, list[str]] = {}
    try:
        from ..exercise.labs import running as running_labs
        for lab, name in running_labs().items():
            running.setdefault(name, []).append(lab)
    except (OSError, PermissionError):   # not root: the labs' directories are not readable
        pass
    rows = [(e.name, f"running (lab {','.join(running[e.name])})" if e.name in running else "-", e.title)
            for e in exercises]
    width = max((len(r[0]) for r in rows), default=4)
    swidth = max([len("STATUS")] + [len(r[1]) for r in rows])
    click.echo(f"{'NAME'.ljust(width)}  {'STATUS'.ljust(swidth)}  TITLE")
    for name, status, title in rows:
        click.echo(f"{name.ljust(width)}  {status.ljust(swidth)}  {title}")


@exercise.command()
@click.argument("name")
@LAB
def start(name: str, lab: str | None) -> None:
    """Bring up the exercise's starting scenario as a lab and print its task.

    A lab of that name that is up is never replaced: `reset` (or `netlab down`) does that."""
    from ..exercise import find, labs
    ex = find(name)
    started = labs.start(ex, lab, say=lambda line: click.echo(line))
    _show_task(ex, started)


@exercise.command()
@click.argument("name")
@LAB
def reset(name: str, lab: str | None) -> None:
    """Take the exercise's lab down and start it again from its starting scenario (hints start over)."""
    from ..exercise import find, labs
    ex = find(name)
    started = labs.reset(ex, lab, say=lambda line: click.echo(line))
    _show_task(ex, started)


def _show_task(ex, lab: str) -> None:
    click.echo(f"\n{ex.name}: {ex.title} (lab {lab})\n")
    click.echo(ex.task)
    click.echo(f"The starting scenario: {ex.start_file}")
    click.echo(f"Grade it: sudo netlab exercise check {ex.name}   A hint: sudo netlab exercise hint {ex.name}")


@exercise.command()
@click.argument("name")
@LAB
@click.option("-o", "--output", type=click.Choice(["text", "junit"]), default="text", show_default=True,
              help="junit: JUnit XML on stdout (a testcase per criterion).")
def check(name: str, lab: str | None, output: str) -> None:
    """Grade the exercise on the wire: one line per criterion, PASS or FAIL with what was observed.

    A rollout_under_load criterion (exercise 08) rolls the Deployment it names itself, under load, and
    counts the requests that fail. Exit status 0 when every criterion passes, 1 otherwise."""
    from ..dataplane import lab as labmod
    from ..exercise import find, grade, labs, wire
    ex = find(name)
    labmod.require_root("grade an exercise inside its lab's namespaces")
    where = labs.lab_of(ex, lab)
    verdicts = wire.check(where, ex)
    if output == "junit":
        click.echo(grade.junit(ex.name, verdicts), nl=False)
    else:
        click.echo(grade.report(ex.name, where, verdicts), nl=False)
    sys.exit(0 if all(v.ok for v in verdicts) else 1)


@exercise.command()
@click.argument("name")
@LAB
@click.option("--all", "show_all", is_flag=True, help="Every hint at once.")
def hint(name: str, lab: str | None, show_all: bool) -> None:
    """Reveal the exercise's next hint (each call one more; --all: all of them)."""
    from ..errors import NotFound
    from ..exercise import find, labs
    ex = find(name)
    import os
    try:
        where = labs.lab_of(ex, lab) if os.geteuid() == 0 else None
    except NotFound:
        where = None    # not started (or not root): hints are counted in the user's state directory
    shown, last = labs.next_hints(ex, where, show_all)
    for n, text in shown:
        click.echo(f"hint {n}/{len(ex.hints)}: {text}")
    if last and not show_all:
        click.echo("(that was the last hint)")
