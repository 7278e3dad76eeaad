"""How fast YouSign may be called, from its per-minute and per-hour limits."""

from collections.abc import Iterable
from datetime import datetime, timedelta

# Most YouSign requests one activity can make (activities/yousign.py holds each to it); the worker
# divides the allowed request rate by it to cap the task queue's activity rate.
MAX_CALLS_PER_ACTIVITY = 4


def sustainable_request_rate(per_minute: int, per_hour: int) -> float:
    """Requests per second that stay under both limits however long the load lasts."""
    if per_minute <= 0 or per_hour <= 0:
        raise ValueError("YouSign limits must be positive")
    return min(per_minute / 60, per_hour / 3600)


# The queue's limiter is a token bucket holding two: after an idle moment it lets two activities
# through at once (measured: 0.21 s apart against 1.21 s, bench/bulk_send.py a), so a window can
# hold one activity more than its length times the rate, and one more again where the flow runs
# exactly at that rate. Keep both out of every window: one whole activity less, and just under.
BURST_ACTIVITIES = 1
UNDER_THE_LIMIT = 0.99


def activity_rate_limit(per_minute: int, per_hour: int, max_calls_per_activity: int) -> float:
    """Activities per second on the YouSign task queue, for the whole cluster of workers.

    Temporal applies `max_task_queue_activities_per_second` server-side across all workers, so
    counting each activity as the most calls one makes keeps every mix of activities under the limits.
    """
    calls = max_calls_per_activity
    if calls <= 0:
        raise ValueError("an activity makes at least one call")
    steady = [(per_minute // calls - BURST_ACTIVITIES, 60), (per_hour // calls - BURST_ACTIVITIES, 3600)]
    if any(activities < 1 for activities, _ in steady):
        raise ValueError(f"YouSign limits must allow two activities of {calls} calls per window")
    return min(activities / window for activities, window in steady) * UNDER_THE_LIMIT


def remaining_time(
    activities_left: int, per_minute: int, per_hour: int, max_calls_per_activity: int
) -> float:
    """Seconds the YouSign task queue needs to hand out `activities_left` more activities at its cap."""
    return activities_left / activity_rate_limit(per_minute, per_hour, max_calls_per_activity)


def sends_until_done(own: int, others: Iterable[int]) -> int:
    """Sends the shared YouSign queue makes until a firm's `own` backlog is gone, firms with a
    backlog taking turns (Temporal's fairness keys): one of each other firm's for each of ours, as
    long as theirs lasts."""
    return own + sum(min(other, own) for other in others)


# Sends that have not moved for this long are not our pacing, which spreads them evenly (a few
# activities' turns at a very low cap at most): YouSign out of reach, or making us wait (a 429 when
# another system spends the account's hour), or the service stopped.
STALL_AFTER = timedelta(minutes=5)
STALL_AFTER_TURNS = 5


def stall_patience(per_minute: int, per_hour: int, max_calls_per_activity: int) -> timedelta:
    """How long sends may stand still before it is a stall rather than pacing."""
    turn = timedelta(seconds=1 / activity_rate_limit(per_minute, per_hour, max_calls_per_activity))
    return max(STALL_AFTER, STALL_AFTER_TURNS * turn)


def stalled_since(
    last_progress: datetime, now: datetime, per_minute: int, per_hour: int, max_calls_per_activity: int
) -> datetime | None:
    """When the sends stopped moving, if they have for longer than pacing explains; else None."""
    patience = stall_patience(per_minute, per_hour, max_calls_per_activity)
    return last_progress if now - last_progress > patience else None
