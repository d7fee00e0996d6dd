"""Error types. Every error netlab reports to a user is one line that names the object and the fix."""


class NetlabError(Exception):
    """Base class: an error the CLI prints as one line and exits with `exit_code`."""

    exit_code = 1


class SpecError(NetlabError):
    """Bad input in a scenario or on the command line. Nothing was changed."""

    exit_code = 2

    def __init__(self, where: str, problem: str, fix: str | None = None):
        self.where, self.problem, self.fix = where, problem, fix
        msg = f"{where}: {problem}" if where else problem
        if fix:
            msg += f"; {fix}"
        super().__init__(one_line(msg))


def one_line(text: str) -> str:
    """`text` as one printable line: line breaks, control and format characters (which a scenario's
    names and paths may carry) are escaped, never printed to the user's terminal as they are."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class UsageError(NetlabError):
    """A precondition of the environment is missing (not root, a tool, a kernel feature)."""

    exit_code = 2


class KernelError(NetlabError):
    """The kernel refused an operation; the message names the object and the namespace."""

    exit_code = 1


class NotFound(NetlabError):
    """A named object (lab, pod, node, service) does not exist."""

    exit_code = 2


class SpecProblems(SpecError):
    """Several problems in the input, all found in one run: one line each, at most `limit` of them."""

    def __init__(self, problems: list[SpecError], limit: int = 20):
        self.problems = problems
        lines = [str(p) for p in problems[:limit]]
        if len(problems) > limit:
            lines.append(f"and {len(problems) - limit} more problems")
        self.where, self.problem, self.fix = "", f"{len(problems)} problems", None
        NetlabError.__init__(self, "\n".join(lines))
