"""CronJob schedules: standard cron syntax evaluated by `cronsim` (a small, maintained library with no
dependencies of its own, used by Healthchecks.io; it follows cronie's semantics, DST included).

Why cronsim and not croniter: croniter depends on python-dateutil and changed hands in 2024-2025 after
its maintainer announced its end; cronsim is one pure-Python module, released regularly (2.8 in 2026),
and needs nothing else. What it does not read, the descriptors Kubernetes' cron parser (robfig/cron
ParseStandard) accepts, is expanded here: @yearly/@annually, @monthly, @weekly, @daily/@midnight,
@hourly. `@every` is refused (Kubernetes' validation accepts it, but it is not standard cron).
As the API server does on create, a schedule naming TZ= or CRON_TZ= is refused: the time zone is
spec.timeZone (an IANA name); without it the schedule is read in UTC (Kubernetes: the controller
manager's local time zone; a lab's is UTC).
"""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
               "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
FIX = {"schedule": "write five fields (minute hour day-of-month month day-of-week), e.g. '*/5 * * * *', "
                   "or @hourly, @daily, @weekly, @monthly, @yearly",
       "timeZone": "use an IANA time zone name such as Etc/UTC or Europe/Paris, or leave timeZone out"}


def expression(schedule: str) -> str:
    """The five-field expression of a schedule (descriptors expanded); ValueError when it is not one."""
    s = " ".join(schedule.split())
    if "TZ" in s:
        raise ValueError("cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
    if s.startswith("@"):
        if s.lower() not in DESCRIPTORS:
            raise ValueError(f"unsupported schedule descriptor {s!r}")
        return DESCRIPTORS[s.lower()]
    return s


def zone(tz: str | None):
    if tz is None:
        return timezone.utc
    if not tz or tz.startswith("/") or ".." in tz:
        raise ValueError(f"unknown time zone {tz!r}")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {tz!r}") from None


def check(schedule: str, tz: str | None) -> None:
    """ValueError (the API server's words where it has some) for a schedule or time zone it refuses."""
    expr = expression(schedule)
    z = zone(tz)
    try:
        next(CronSim(expr, datetime.now(z)))
    except CronSimError as e:
        raise ValueError(f"unparseable schedule {schedule!r}: {e}") from None
    except StopIteration:
        raise ValueError(f"schedule {schedule!r} never fires") from None


def next_after(schedule: str, tz: str | None, t: float) -> float | None:
    """The first scheduled time strictly after `t` (epoch seconds), or None."""
    z = zone(tz)
    start = datetime.fromtimestamp(t, z)
    try:
        return next(CronSim(expression(schedule), start)).timestamp()
    except (StopIteration, CronSimError, ValueError):
        return None


def times_between(schedule: str, tz: str | None, after: float, until: float, limit: int = 101) -> list[float]:
    """Scheduled times in (after, until], at most `limit` of them (the earliest)."""
    z = zone(tz)
    out: list[float] = []
    try:
        for dt in CronSim(expression(schedule), datetime.fromtimestamp(after, z)):
            t = dt.timestamp()
            if t > until or len(out) >= limit:
                break
            if t > after:
                out.append(t)
    except (CronSimError, ValueError):
        return []
    return out
