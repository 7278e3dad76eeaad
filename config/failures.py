"""Failures as they go to Temporal: the SDK's conversion, each stack trace cut to what Temporal keeps."""

from __future__ import annotations

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
    """The SDK's conversion, then each stack trace cut to its innermost frames (the SDK converts an
    error's causes through `to_failure` too, so each level is cut on its way back)."""

    seal = False  # message and stack trace moved into a payload, which the codec encrypts

    def to_failure(
        self, exception: BaseException, payload_converter: PayloadConverter, failure: Failure
    ) -> None:
        super().to_failure(exception, payload_converter, failure)
        failure.stack_trace = innermost(failure.stack_trace)
        if self.seal:  # as the SDK's DefaultFailureConverterWithEncodedAttributes, after the cut
            sealed = {"message": failure.message, "stack_trace": failure.stack_trace}
            failure.encoded_attributes.CopyFrom(payload_converter.to_payloads([sealed])[0])
            failure.message = "Encoded failure"
            failure.stack_trace = ""


class CompactEncodedFailureConverter(CompactFailureConverter):
    """Message and stack trace sealed by the codec, as Temporal's encoded failure attributes."""

    seal = True
