"""Activity timeouts and retry policies shared by the workflows."""

from dataclasses import replace
from datetime import timedelta

from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

YOUSIGN_FINAL_ERROR = "YouSignFinalError"
# A reminder YouSign may have e-mailed (its answer lost), or did e-mail (its record failed): the day is spent.
REMINDER_UNCONFIRMED = "ReminderUnconfirmed"
REMINDER_NOT_RECORDED = "ReminderNotRecorded"
# NotFound: the row is gone (e.g. a reservation undone after Temporal seemed down): no retry brings it back.
NOT_RETRYABLE = [YOUSIGN_FINAL_ERROR, "IncompleteData", "Conflict", "NotFound"]

# The database: retry until it is back, quickly at first.
DATABASE = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(
        maximum_interval=timedelta(seconds=30), non_retryable_error_types=NOT_RETRYABLE
    ),
}

# YouSign: its queue is rate-capped, so time spent waiting there is normal; give up after a week
# of outage. A 429 waits YouSign's Retry-After (the activity sets next_retry_delay).
YOUSIGN = {
    "start_to_close_timeout": timedelta(minutes=2),
    "schedule_to_close_timeout": timedelta(days=7),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=2),
        maximum_interval=timedelta(minutes=10),
        non_retryable_error_types=NOT_RETRYABLE,
    ),
}

# A bulk send paces thousands of sends over hours, days with several batches (10,000 mandates take
# 200 hours at the sandbox's 200 calls an hour): its time in the queue is no outage, so no overall
# deadline; a week of failed attempts (at most 10 minutes apart) gives up. Everything else on the
# YouSign queue (a firm's single send, expiries, archiving, the sweep; priority 3) goes first.
YOUSIGN_BULK = {
    "start_to_close_timeout": YOUSIGN["start_to_close_timeout"],
    "retry_policy": replace(YOUSIGN["retry_policy"], maximum_attempts=7 * 24 * 6),
    "priority": Priority(priority_key=4),
}

# Worth doing but not worth waiting for: the next reconciliation sweep asks again anyway, and a
# refusal is recorded without its reason rather than held back.
YOUSIGN_BEST_EFFORT = {**YOUSIGN, "schedule_to_close_timeout": timedelta(hours=1)}

# A reminder is answered to a person waiting: first in the queue, a few quick tries, then tell them.
YOUSIGN_INTERACTIVE = {
    "priority": Priority(priority_key=1),
    "start_to_close_timeout": timedelta(seconds=30),
    "schedule_to_close_timeout": timedelta(minutes=2),
    "retry_policy": RetryPolicy(maximum_attempts=3, non_retryable_error_types=NOT_RETRYABLE),
}

EMAIL = {
    "start_to_close_timeout": timedelta(seconds=60),
    "schedule_to_close_timeout": timedelta(days=1),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(minutes=10)),
}


def failure_reason(error: ActivityError) -> str:
    """Why an activity failed, in the words its last attempt gave (what a firm reads)."""
    return str(error.cause.message if isinstance(error.cause, ApplicationError) else error)
