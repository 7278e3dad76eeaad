"""Rule violations: each names the field it is about, so every edge can report it precisely."""


class RuleViolation(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Conflict(Exception):
    """The request is valid but the resource's current state forbids it (HTTP 409)."""


class NotFound(Exception):
    """No such resource for this firm (HTTP 404)."""
