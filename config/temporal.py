"""The Temporal client every process uses: same address, namespace and data converter everywhere."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any
from uuid import UUID

import structlog
from temporalio.client import (
    Client,
    DescribeWorkflowInput,
    FetchWorkflowHistoryEventsInput,
    Interceptor,
    OutboundInterceptor,
    SignalWorkflowInput,
    StartWorkflowInput,
)
from temporalio.common import Priority, SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from config.codec import EncryptionCodec, parse_keys
from config.failures import CompactEncodedFailureConverter, CompactFailureConverter
from config.settings import Settings

log = structlog.get_logger(__name__)

# What operators search runs by in the UI; ids and statuses only, never personal data
# (search attributes are not encrypted).
FIRM_ID = SearchAttributeKey.for_keyword("FirmId")
DOSSIER_ID = SearchAttributeKey.for_keyword("DossierId")
MANDATE_STATUS = SearchAttributeKey.for_keyword("MandateStatus")
BULK_SEND_ID = SearchAttributeKey.for_keyword("BulkSendId")
MANDATE_EXPIRES_AT = SearchAttributeKey.for_datetime("MandateExpiresAt")
SEARCH_ATTRIBUTES = (FIRM_ID, DOSSIER_ID, MANDATE_STATUS, BULK_SEND_ID, MANDATE_EXPIRES_AT)


def firm_fairness(firm_id: UUID) -> Priority:
    """A firm's runs share one fairness key, and their activities and child runs inherit it: on the
    YouSign queue every firm with a backlog gets its turn within a priority level, so a 10,000-dossier
    batch does not hold another firm's batch for a day (the server must have fairness enabled)."""
    return Priority(fairness_key=str(firm_id))


def data_converter(settings: Settings) -> DataConverter:
    """Pydantic payloads, sealed with AES-GCM (failure messages too) when keys are configured."""
    if not settings.payload_encryption_keys:
        log.warning("PAYLOAD_ENCRYPTION_KEYS is not set: Temporal payloads are stored in clear")
        return dataclasses.replace(pydantic_data_converter, failure_converter_class=CompactFailureConverter)
    codec = EncryptionCodec(
        parse_keys(settings.payload_encryption_keys.get_secret_value()), settings.payload_encryption_key_id
    )
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=CompactEncodedFailureConverter,
    )


def tls_config(settings: Settings) -> TLSConfig | bool:
    """mTLS with a client certificate, plain TLS (e.g. Temporal Cloud with an API key), or none."""
    if settings.temporal_tls_cert and settings.temporal_tls_key:
        return TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes(),
            client_private_key=settings.temporal_tls_key.read_bytes(),
        )
    return settings.temporal_tls or settings.temporal_api_key is not None


# A Temporal that hangs answers the one-shot calls with an error within this, so that the firm gets
# its 503 in seconds: with the SDK's own deadline a generate waited 66 s (its start, then the check
# whether the start happened all the same). Long polls, such as a run's result, keep theirs.
CALL_DEADLINE = timedelta(seconds=10)


def _bounded(input: Any) -> Any:
    return input if input.rpc_timeout else dataclasses.replace(input, rpc_timeout=CALL_DEADLINE)


class CallDeadlines(Interceptor):
    """CALL_DEADLINE on the starts, signals, descriptions and history reads (not long polls) that set
    no deadline of their own."""

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _CallDeadlines(next)


class _CallDeadlines(OutboundInterceptor):
    async def start_workflow(self, input: StartWorkflowInput) -> Any:
        return await super().start_workflow(_bounded(input))

    async def signal_workflow(self, input: SignalWorkflowInput) -> None:
        await super().signal_workflow(_bounded(input))

    async def describe_workflow(self, input: DescribeWorkflowInput) -> Any:
        return await super().describe_workflow(_bounded(input))

    def fetch_workflow_history_events(self, input: FetchWorkflowHistoryEventsInput) -> Any:
        return super().fetch_workflow_history_events(input if input.wait_new_event else _bounded(input))


async def connect_temporal(settings: Settings, runtime: Runtime | None = None) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        api_key=settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None,
        tls=tls_config(settings),
        runtime=runtime,
        interceptors=[CallDeadlines()],
    )
