"""Failures as they go to Temporal: the SDK's conversion, each stack trace cut to what Temporal keeps."""

from __future__ import annotations

from typing import Any

from temporalio.api.failure.v1 import Failure
from temporalio.converter import DefaultFailureConverter, PayloadConverter

# Characters of a stack trace kept: its innermost frames, where the error was raised. Temporal keeps
# an activity's last failure only up to a few KiB; past that the UI shows "Failure exceeds size
# limit." and nothing else (asyncpg's refused connection alone is 3.8 KB with its stack).
MAX_STACK_TRACE = 1200
CUT = "(outer frames cut)\n"


def innermost(stack_trace: str, limit: int = MAX_STACK_TRACE) -> str:
    if len(stack_trace) <= limit:
        return stack_trace
    tail = stack_trace[-limit:]
    return CUT + tail[tail.find("\n") + 1 :]  # from a whole line on


class CompactFailureConverter(DefaultFailureConverter):
    def _error_to_failure(self, error: Any, payload_converter: PayloadConverter, failure: Failure) -> None:
        # Called for the error and each of its causes, before the message and stack are encoded.
        super()._error_to_failure(error, payload_converter, failure)
        failure.stack_trace = innermost(failure.stack_trace)


class CompactEncodedFailureConverter(CompactFailureConverter):
    """As the SDK's DefaultFailureConverterWithEncodedAttributes: message and stack sealed by the codec."""

    def __init__(self) -> None:
        super().__init__(encode_common_attributes=True)
