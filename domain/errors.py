"""Rule violations: each names the field it is about, so every edge can report it precisely."""


class RuleViolation(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Conflict(Exception):
    """The request is valid but the resource's current state forbids it (HTTP 409)."""


class Unprintable(Conflict):
    """The mandate cannot be printed or sent as it is: data missing, or changed since it was made."""


class NotFound(Exception):
    """No such resource for this firm (HTTP 404)."""


class TooLarge(RuleViolation):
    """A field's content is over its size limit (HTTP 413)."""


class TooSoon(Exception):
    """Allowed again from `retry_at` (HTTP 429 with Retry-After)."""

    def __init__(self, message: str, retry_at) -> None:  # retry_at: aware datetime
        super().__init__(message)
        self.retry_at = retry_at


class Unavailable(Exception):
    """A service this one needs (Temporal, YouSign) did not answer (HTTP 503); `retry_at` when a
    retry before then cannot help (an unconfirmed reminder has spent the day)."""

    def __init__(self, message: str, retry_at=None) -> None:  # retry_at: aware datetime
        super().__init__(message)
        self.retry_at = retry_at
