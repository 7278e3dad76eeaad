"""How fast YouSign may be called, from its per-minute and per-hour limits."""


def sustainable_request_rate(per_minute: int, per_hour: int) -> float:
    """Requests per second that stay under both limits however long the load lasts."""
    if per_minute <= 0 or per_hour <= 0:
        raise ValueError("YouSign limits must be positive")
    return min(per_minute / 60, per_hour / 3600)


def activity_rate_limit(per_minute: int, per_hour: int, max_calls_per_activity: int) -> float:
    """Activities per second on the YouSign task queue, for the whole cluster of workers.

    Temporal applies `max_task_queue_activities_per_second` server-side across all workers, so
    dividing by the most calls one activity makes keeps every mix of activities under the limits.
    """
    if max_calls_per_activity <= 0:
        raise ValueError("an activity makes at least one call")
    return sustainable_request_rate(per_minute, per_hour) / max_calls_per_activity


def remaining_time(calls_left: int, per_minute: int, per_hour: int) -> float:
    """Seconds YouSign's limits need to let `calls_left` more requests through, at the sustained rate."""
    return calls_left / sustainable_request_rate(per_minute, per_hour)
