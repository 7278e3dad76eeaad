"""Failures as Temporal keeps them: an activity's last failure only up to a few KiB (bigger ones
show as "Failure exceeds size limit." in the UI), so during an outage the reason must fit."""

from uuid import uuid4

import asyncpg
import pytest

from config.failures import CUT
from config.settings import Settings
from config.temporal import data_converter
from store import mandates


async def test_a_database_outage_fails_an_activity_with_a_failure_temporal_keeps():
    from temporalio.api.failure.v1 import Failure

    nowhere = await asyncpg.create_pool("postgresql://mandates@127.0.0.1:1/mandates", min_size=0)
    try:
        with pytest.raises(OSError) as refused:
            await mandates.get_mandate(nowhere, uuid4())
    finally:
        await nowhere.close()
    error = refused.value
    key = "k1:" + "A" * 43 + "="  # a 32-byte key, as PAYLOAD_ENCRYPTION_KEYS holds them
    for settings in (Settings(payload_encryption_keys=key, payload_encryption_key_id="k1"), Settings()):
        converter = data_converter(settings)
        failure = Failure()
        await converter.encode_failure(error, failure)
        assert failure.ByteSize() < 2048, failure.ByteSize()  # the server warns from 2 KiB on
        decoded = await converter.decode_failure(failure)
        assert decoded.type == "ConnectionRefusedError"
        # Where it was raised is kept: the innermost frames, asyncpg's connect among them.
        assert decoded.failure.stack_trace.startswith(CUT) and "asyncpg" in decoded.failure.stack_trace
        assert decoded.message == str(error)
        # With keys, message and trace travel in a payload (which the worker's codec encrypts).
        sealed = settings.payload_encryption_keys is not None
        assert (failure.message == "Encoded failure" and not failure.stack_trace) is sealed
