"""Command-line flags read as Go programs read them, and agnhost netexec's flags.

Pure functions, standard library only (the built-in server imports this module too).

`parse(argv, flags)` follows the rules of Go's `flag` package:

* `-name`, `--name` (one or two dashes are the same), `-name=value`, `--name=value`;
* a non-boolean flag without `=value` takes the next argument as its value, whatever it looks like
  (`--udp-port -1` sets -1); with no next argument it is an error ("flag needs an argument");
* a boolean flag is set to true by `-name` and only takes a value as `-name=value`
  (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False);
* `--` ends the flags and is dropped; `-` alone or any argument not starting with `-` ends them and
  is kept; everything after the end is returned as the positional arguments;
* `---name`, `-=x` are bad syntax, an undefined flag is an error ("flag provided but not defined"),
  `-h`/`-help` asks for help (an error here: the program would print its usage and exit);
* a flag given twice keeps its last value; integers are read as Go's strconv.ParseInt with base 0
  (`0x1f`, `0o17`, `017`, `0b101`, `1_000`, a sign).

agnhost itself parses with cobra/pflag, which agrees with the above for every spelling netexec's
users write (`--http-port=8080`, `--http-port 8080`); pflag would refuse the single-dash long form
(`-http-port=80`) that Go's flag package, and netlab, accept.

`netexec_args(argv)` reads `[agnhost] netexec FLAGS` (what a Kubernetes e2e pod's command + args
say) into the ports netlab's built-in server serves for it. Per flag (agnhost's defaults):

* `--http-port` (8080): served, HTTP on TCP.
* `--udp-port` (8081): served, the UDP commands; -1 turns UDP off.
* `--sctp-port` (-1): refused unless -1: netlab has no SCTP.
* `--tls-cert-file`, `--tls-private-key-file` (""): refused unless empty: no HTTPS is emulated.
* `--http-override` (""): refused unless empty: not emulated (every pod of a node shares one server
  whose behaviour this flag would change for one pod).
* `--udp-listen-addresses` (""): refused unless empty: the UDP socket listens on every address.
* `--delay-shutdown` (0): on SIGTERM (the kubelet's, when the pod is deleted: netlab/live/terminate.py)
  the pod keeps serving this many seconds, then its "container" exits (code 0); without it, the
  "container" exits at once on SIGTERM (code 143, as a process killed by the signal). Negative values
  count as 0, as agnhost only delays for a positive value.
* anything else, and positional arguments (netexec takes none), is an error.
"""

from __future__ import annotations

BOOL, INT, STRING = "bool", "int", "string"


class FlagError(ValueError):
    """A command line Go's flag package (or the program) would refuse; str() is the one-line reason."""


_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def parse_bool(text: str) -> bool:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("parse error")


def parse_int(text: str, bits: int = 64) -> int:
    """strconv.ParseInt(text, 0, bits): optional sign, base from the prefix (0x, 0o, 0b, 0), and `_`
    only between digits (or after the prefix), as in a Go integer literal."""
    s = text[1:] if text[:1] in ("+", "-") else text
    neg = text[:1] == "-"
    if not _underscores_ok(s):
        raise ValueError("parse error")
    s = s.replace("_", "")
    base, digits = 10, s
    if s[:2].lower() in ("0x", "0o", "0b"):
        base, digits = {"x": 16, "o": 8, "b": 2}[s[1].lower()], s[2:]
    elif len(s) > 1 and s[0] == "0":
        base, digits = 8, s[1:]
    if not digits or any(c not in "0123456789abcdef"[:base] for c in digits.lower()):
        raise ValueError("parse error")
    value = -int(digits, base) if neg else int(digits, base)
    if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
        raise ValueError("value out of range")
    return value


def _underscores_ok(s: str) -> bool:
    """Each `_` follows a digit (the base prefix counts as one) and is followed by a digit."""
    if "_" not in s:
        return True
    saw, i = "^", 0
    hexa = False
    if len(s) >= 2 and s[0] == "0" and s[1].lower() in "box":
        i, saw, hexa = 2, "0", s[1].lower() == "x"
    for c in s[i:]:
        if c.isdigit() or (hexa and c.lower() in "abcdef"):
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


def parse(argv: list[str], flags: dict[str, tuple[str, object]]) -> tuple[dict[str, object], list[str]]:
    """Go flag parsing of `argv` (without the program name) against `flags` {name: (kind, default)}.

    Returns ({name: value} for every flag, the default when not given; positional arguments)."""
    values = {name: default for name, (_kind, default) in flags.items()}
    i = 0
    while i < len(argv):
        s = argv[i]
        if len(s) < 2 or s[0] != "-":
            break
        dashes = 2 if s[1] == "-" else 1
        if s == "--":
            i += 1
            break
        name = s[dashes:]
        if not name or name[0] in "-=":
            raise FlagError(f"bad flag syntax: {s}")
        i += 1
        name, has_value, value = name.partition("=")
        if name not in flags:
            if name in ("h", "help"):
                raise FlagError(f"-{name} asks for the usage: the program would print it and exit")
            raise FlagError(f"flag provided but not defined: -{name}")
        kind = flags[name][0]
        if kind == BOOL:
            if not has_value:
                values[name] = True
                continue
            try:
                values[name] = parse_bool(value)
            except ValueError as e:
                raise FlagError(f"invalid boolean value {_quote(value)} for -{name}: {e}") from None
            continue
        if not has_value:
            if i >= len(argv):
                raise FlagError(f"flag needs an argument: -{name}")
            value = argv[i]
            i += 1
        if kind == INT:
            try:
                values[name] = parse_int(value)
            except ValueError as e:
                raise FlagError(f"invalid value {_quote(value)} for flag -{name}: {e}") from None
        else:
            values[name] = value
    return values, argv[i:]


def _quote(text: str) -> str:
    """Like Go's %q for the usual cases: double quotes, backslash escapes."""
    return '"' + text.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'


# ---------------------------------------------------------------- agnhost netexec

NETEXEC_FLAGS: dict[str, tuple[str, object]] = {
    "http-port": (INT, 8080),
    "udp-port": (INT, 8081),
    "sctp-port": (INT, -1),
    "tls-cert-file": (STRING, ""),
    "tls-private-key-file": (STRING, ""),
    "http-override": (STRING, ""),
    "udp-listen-addresses": (STRING, ""),
    "delay-shutdown": (INT, 0),
}

# flag -> (the value that means "off", why another value is refused)
_REFUSED = {
    "sctp-port": (-1, "SCTP is not emulated by netlab"),
    "tls-cert-file": ("", "HTTPS is not emulated by netlab's built-in server"),
    "tls-private-key-file": ("", "HTTPS is not emulated by netlab's built-in server"),
    "http-override": ("", "is not emulated by netlab's built-in server"),
    "udp-listen-addresses": ("", "is not emulated: netlab's built-in server listens on every address"),
}


def netexec_argv(argv: list[str]) -> list[str] | None:
    """The flags of an agnhost netexec command line (`netexec ...`, `agnhost netexec ...`,
    `/agnhost netexec ...`), or None if `argv` is not one."""
    if argv[:1] in (["/agnhost"], ["agnhost"]):
        argv = argv[1:]
    if argv[:1] != ["netexec"]:
        return None
    return argv[1:]


def netexec_delay_shutdown(argv: list[str]) -> int:
    """agnhost netexec's --delay-shutdown of this command line (0 if none, or not a netexec command line)."""
    flags = netexec_argv(argv)
    if flags is None:
        return 0
    values, _ = parse(flags, NETEXEC_FLAGS)
    return max(0, values["delay-shutdown"])


def netexec_ports(argv: list[str]) -> list[tuple[int, str]] | None:
    """[(port, protocol)] that agnhost netexec with this command line serves (HTTP first), or None if
    `argv` is not a netexec command line. Raises FlagError naming the flag for what it or netlab refuses."""
    flags = netexec_argv(argv)
    if flags is None:
        return None
    values, rest = parse(flags, NETEXEC_FLAGS)
    if rest:
        raise FlagError(f"netexec takes no arguments, got {_quote(rest[0])}")
    for name, (off, why) in _REFUSED.items():
        if values[name] != off:
            raise FlagError(f"--{name}={values[name]}: {why}")
    http, udp = values["http-port"], values["udp-port"]
    if not 1 <= http <= 65535:
        raise FlagError(f"--http-port={http} is not a port (1-65535)")
    if udp != -1 and not 1 <= udp <= 65535:
        raise FlagError(f"--udp-port={udp} is not a port (1-65535, or -1 for no UDP server)")
    out = [(http, "TCP")]
    if udp != -1:
        out.append((udp, "UDP"))
    return out
