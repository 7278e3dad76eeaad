"""Business time rules, computed in Europe/Paris: mandate expiry and the daily reminder window."""

import calendar
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.durations import DurationTooLong, parse_iso_duration
from domain.errors import RuleViolation

PARIS = ZoneInfo("Europe/Paris")


def _require_aware(instant: datetime, name: str) -> None:
    if instant.tzinfo is None:
        raise ValueError(f"{name} must carry a timezone")


def add_calendar_months(day: date, months: int) -> date:
    """Same day `months` later, clamped to the month's end (31 January + 1 month -> 28/29 February)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


# YouSign refuses an expiration date more than a year after the request starts; ours is the day
# after the mandate's own end, which can come a day later still on the Paris calendar.
YOUSIGN_LONGEST_REQUEST = timedelta(days=365)


def check_mandate_validity(validity: str) -> str:
    """A validity YouSign can hold a request open for, whatever the day it is sent (months counted
    as 31 days, plus two days for its expiration date, the day after ours, on the Paris calendar)."""
    too_long = RuleViolation(
        "MANDATE_VALIDITY",
        f"'{validity}' is too long: YouSign keeps a request open a year at most, and a mandate"
        " must end two days before that whatever day it is sent (P11M is within)",
    )
    try:
        months, rest = parse_iso_duration(validity, "MANDATE_VALIDITY")
    except DurationTooLong:
        raise too_long from None
    if timedelta(days=31) * months + rest + timedelta(days=2) > YOUSIGN_LONGEST_REQUEST:
        raise too_long
    return validity


def mandate_expires_at(sent_at: datetime, validity: str = "P1M") -> datetime:
    """The instant a mandate sent at `sent_at` stops being signable, in UTC.

    Months are calendar months on the Paris wall clock (so DST changes do not shift the hour);
    any smaller part of the duration is then added as elapsed time.
    """
    _require_aware(sent_at, "sent_at")
    months, rest = parse_iso_duration(validity, "MANDATE_VALIDITY")
    local = sent_at.astimezone(PARIS)
    if months:
        moved = add_calendar_months(local.date(), months)
        local = datetime.combine(moved, local.timetz().replace(tzinfo=None), tzinfo=PARIS)
    return (local.astimezone(UTC) + rest).astimezone(UTC)


def paris_day(instant: datetime) -> date:
    _require_aware(instant, "instant")
    return instant.astimezone(PARIS).date()


def start_of_next_paris_day(instant: datetime) -> datetime:
    next_day = paris_day(instant) + timedelta(days=1)
    return datetime.combine(next_day, time(0), tzinfo=PARIS).astimezone(UTC)


def next_reminder_allowed_at(last_reminder_at: datetime | None) -> datetime | None:
    """At most one reminder per Paris calendar day: the next is allowed from the next midnight."""
    return None if last_reminder_at is None else start_of_next_paris_day(last_reminder_at)


def paris_wall_time(instant: datetime) -> str:
    """`2026-12-06 00:00 Paris time`: how a firm reads the reminder rule's times."""
    _require_aware(instant, "instant")
    return f"{instant.astimezone(PARIS):%Y-%m-%d %H:%M} Paris time"


def reminder_allowed(now: datetime, last_reminder_at: datetime | None) -> bool:
    allowed_from = next_reminder_allowed_at(last_reminder_at)
    return allowed_from is None or now >= allowed_from
