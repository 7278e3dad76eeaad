"""Clock and date helpers (timestamps as YouSign writes them: `2025-01-10T16:59:20+00:00`)."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime, time, tzinfo
from functools import lru_cache


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds")


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def is_valid_timezone(name: str) -> bool:
    # Without a tz database on the machine every name is accepted and treated as UTC.
    zones = _known_zones()
    return not zones or name in zones or name == "UTC"


def zone(name: str) -> tzinfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return UTC


def today_in(tz_name: str) -> date:
    return datetime.now(zone(tz_name)).date()


def end_of_day(day: date, tz_name: str) -> datetime:
    """YouSign shows expiration_date as the last second of that day in the request's time zone."""
    local = datetime.combine(day, time(23, 59, 59), tzinfo=zone(tz_name))
    return local.astimezone(UTC)


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise ValueError("unreachable")
